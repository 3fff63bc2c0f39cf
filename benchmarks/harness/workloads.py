"""What the systems translate: the converted model folders, the source ids and the run configs.

Conversion and the CTranslate2 export happen once and are redone only when their input changed
(a stamp file next to each folder), so repeated runs measure decoding, not set-up.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
SMALL_CHECKPOINT = FIXTURES / "small-en-de" / "model4.pt"
SOURCE = FIXTURES / "test_2016_flickr.en"
REFERENCE = FIXTURES / "test_2016_flickr.de"
GOLDEN_HYPS = FIXTURES / "small-en-de" / "test_2016_flickr.model4.hyp.de"
WORK = REPO / "benchmarks" / "_work"

Log = Callable[[str], None]


@dataclass
class RunConfig:
    name: str  # e.g. "beam5 x batch32"
    beam: int
    batch_size: int
    sentences: int
    fixed_length: int | None = None  # exactly this many tokens + </s> (big workload)
    max_len_b: int = 200


@dataclass
class Workload:
    name: str
    model_dir: Path
    ct2_dir: Path
    ids: list[list[int]]
    configs: list[RunConfig]
    golden: list[str] | None = None  # fairseq's hypotheses, only when every source line is used
    reference: list[str] | None = None  # for BLEU, likewise
    notes: list[str] = field(default_factory=list)


def read_lines(path: Path) -> list[str]:
    """The file's lines as written (no trailing empty line, no other stripping)."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def _stamp(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}:{stat.st_size}:{int(stat.st_mtime)}"


def ensure_converted(checkpoint: Path, out: Path, src: str, tgt: str, log: Log) -> Path:
    """Convert once; re-convert when the checkpoint changed (stamp file next to the folder)."""
    from fsmt_port.fairseq.convert import convert

    stamp = out.with_name(out.name + ".stamp")
    if out.is_dir() and stamp.is_file() and stamp.read_text() == _stamp(checkpoint):
        return out
    log(f"converting {checkpoint} -> {out}")
    convert(checkpoint, out, src_lang=src, tgt_lang=tgt, force=True)
    stamp.write_text(_stamp(checkpoint))
    return out


def ensure_ct2(model_dir: Path, out: Path, log: Log) -> Path:
    """Export to CTranslate2 (float32) once; re-export when the converted weights changed."""
    from fsmt_port.export.ct2 import export_ct2

    stamp = out.with_name(out.name + ".stamp")
    source = _stamp(model_dir / "model.safetensors")
    if out.is_dir() and stamp.is_file() and stamp.read_text() == source:
        return out
    log(f"exporting {model_dir} -> {out} (CTranslate2 float32)")
    export_ct2(model_dir, out, force=True)
    stamp.write_text(source)
    return out


def wants_ct2(systems: list[str]) -> bool:
    return any(s.startswith("ct2") for s in systems)


def small_workload(args, log: Log) -> Workload:
    """The golden small-en-de model4 on test_2016 (the first ``--sentences`` lines), beam 1/5 x batch 1/32/128."""
    from fsmt_port.tokenization.tokenizer import FSMTTokenizer

    model_dir = ensure_converted(args.small_checkpoint, args.work_dir / "small-en-de", "en", "de", log)
    ct2_dir = ensure_ct2(model_dir, args.work_dir / "small-en-de-ct2", log) if wants_ct2(args.systems) else model_dir
    tokenizer = FSMTTokenizer.from_pretrained(model_dir)
    all_lines = read_lines(args.source)
    lines = all_lines[:8] if args.smoke else all_lines
    if args.sentences:
        lines = lines[: args.sentences]
    if args.smoke:
        configs = [RunConfig("beam1 x batch4", 1, 4, len(lines)), RunConfig("beam5 x batch4", 5, 4, len(lines))]
    else:
        configs = []
        for beam in (1, 5):
            for batch in (1, 32, 128):
                n = min(len(lines), args.batch1_sentences) if batch == 1 else len(lines)
                configs.append(RunConfig(f"beam{beam} x batch{batch}", beam, batch, n))
    configs = select_configs(configs, args.configs)
    ids = [tokenizer.encode(line) for line in lines]
    workload = Workload("small", model_dir, ct2_dir, ids, configs)
    if len(lines) == len(all_lines):  # agreement with fairseq and BLEU only mean something on the whole set
        workload.golden = read_lines(args.golden_hyps) if args.golden_hyps and args.golden_hyps.is_file() else None
        workload.reference = read_lines(args.reference) if args.reference and args.reference.is_file() else None
    elif not args.smoke:
        workload.notes.append(f"the first {len(lines)} of {len(all_lines)} lines (--sentences): no BLEU, "
                              "no agreement with fairseq")
    return workload


def big_workload(args, log: Log) -> Workload:
    """The WMT19 transformer-big shape with random weights, every hypothesis exactly ``length`` tokens."""
    from fsmt_port.tokenization.tokenizer import FSMTTokenizer

    ckpt_dir, name = big_checkpoint_dir(args)
    if args.smoke:  # the same pipeline on a toy shape: make, convert, export, run
        shape = ["--layers", "1", "--embed-dim", "64", "--ffn-dim", "128", "--heads", "4", "--vocab", "6048",
                 "--optimizer-state", "none"]
        sentences, length = 8, 5
    else:
        shape, sentences, length = [], args.big_sentences, 30
    if not (ckpt_dir / "model.pt").is_file():
        log(f"writing the random big-shape checkpoint into {ckpt_dir}")
        subprocess.run([sys.executable, str(REPO / "benchmarks" / "make_big_checkpoint.py"), "--out", str(ckpt_dir),
                        *shape], check=True)
    model_dir = ensure_converted(ckpt_dir / "model.pt", args.work_dir / name, "en", "de", log)
    ct2_dir = ensure_ct2(model_dir, args.work_dir / f"{name}-ct2", log) if wants_ct2(args.systems) else model_dir
    tokenizer = FSMTTokenizer.from_pretrained(model_dir)
    lines = read_lines(args.source)[:sentences]
    config = RunConfig(f"beam5 x batch{sentences}, {length} tokens", 5, sentences, sentences, fixed_length=length)
    workload = Workload("big", model_dir, ct2_dir, [tokenizer.encode(line) for line in lines], [config])
    workload.notes.append(f"{sentences} sentences (test_2016 lines 1-{sentences}), beam 5, exactly {length} "
                          "tokens + </s> per hypothesis, random weights")
    return workload


def big_checkpoint_dir(args) -> tuple[Path, str]:
    """Where the big-shape fairseq checkpoint lives, and the name of its converted folder."""
    if args.smoke:
        return args.work_dir / "big-shape-smoke-ckpt", "big-smoke"
    return args.work_dir / "big-ckpt", "big"


BUILDERS: dict[str, Callable[..., Workload]] = {"small": small_workload, "big": big_workload}


def select_configs(configs: list[RunConfig], wanted: str | None) -> list[RunConfig]:
    """Only the ``beam:batch`` pairs of ``--configs`` (all when it is empty)."""
    if not wanted:
        return configs
    keys = {tuple(int(x) for x in item.split(":")) for item in wanted.split(",")}
    return [c for c in configs if (c.beam, c.batch_size) in keys]
