"""Throughput and memory of fsmt_port against its peers, in one process, on the same inputs.

    python benchmarks/run.py              # full run (both workloads, ~30-60 min on 2 cores)
    python benchmarks/run.py --smoke      # seconds: tiny subsets, no timing claims (CI)
    python benchmarks/run.py --workloads small --configs beam5:32

Systems (all read the same converted folder; ``--systems`` picks some):

* ``fsmt_port`` fp32 (``model.generate``, the default path), ``fsmt_port-bf16``
  (``dtype=bf16``), ``fsmt_port-int8`` (``Translator(quantize="int8")``'s dynamic int8);
* ``transformers`` (its ``FSMTForConditionalGeneration`` fp32 on our folder);
* ``ct2`` / ``ct2-int8``: CTranslate2 on ``python -m fsmt_port.export_ct2``'s
  float32 export, loaded with compute type float32 / int8.

Workloads:

* ``small``: the golden small-en-de model4 (fp16 weights, run in fp32),
  ``test_2016_flickr.en`` (1000 lines), beam 1 and 5 x batch 1/32/128, fairseq
  defaults (lenpen 1, max_len_b 200).
* ``big``: the WMT19 transformer-big shape with random weights (a real 2019-layout
  fairseq checkpoint made by ``make_big_checkpoint.py``, converted by our
  converter), 32 sentences, beam 5, exactly 30 target tokens + ``</s>`` each
  (min_len = max_len_b = 30, max_len_a = 0), so every system does the same work.

Every system gets the same source ids (our tokenizer), cut into the same
length-sorted batches (``translator.make_batches``), in the same process and
thread count. Each (config, system) gets one warm-up on the first batches, then
``--repeats`` timed runs; the systems take turns within each round so load
changes on the machine hit all of them alike, and the median is reported.
Target tokens = each system's top-1 hypothesis length including ``</s>``.
Memory: ``peak RSS`` = the peak RSS of a separate process that loads only that
system and translates the config's inputs once (``--rss-probe``; the first
config of each workload; memory-mapped weights count once read); ``run peak``
= in the benchmark process, the high-water mark during the system's timed runs
minus the RSS before them (reset through ``/proc/self/clear_refs``), i.e. the
working memory of decoding. Agreement: top-1 token
sequences identical to fsmt_port's (``</s>`` and the length limit aside), and for
the small model at beam 5, detokenized top-1 identical to fairseq's golden
hypotheses. Writes ``results.json`` and ``results.md`` into ``--out-dir``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
SMALL_CHECKPOINT = FIXTURES / "small-en-de" / "model4.pt"
SOURCE = FIXTURES / "test_2016_flickr.en"
REFERENCE = FIXTURES / "test_2016_flickr.de"
GOLDEN_HYPS = FIXTURES / "small-en-de" / "test_2016_flickr.model4.hyp.de"
WORK = REPO / "benchmarks" / "_work"
SYSTEMS = ("fsmt_port", "fsmt_port-bf16", "fsmt_port-int8", "transformers", "ct2", "ct2-int8")
BASELINE = "fsmt_port"
#: The issue's measurements on this machine (fairseq hub / transformers seconds), used to place
#: fairseq relative to transformers in a run where fairseq itself is not installed.
FAIRSEQ_OVER_TRANSFORMERS = {("small", 5, 32): 13.6 / 18.2, ("big", 5, 32): 16.7 / 18.4}


# --- memory -----------------------------------------------------------------------------

def _status(field_name: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    return 0


def rss() -> int:
    return _status("VmRSS")


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0). False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak() -> int:
    return _status("VmHWM")


# --- workloads --------------------------------------------------------------------------

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
    golden: list[str] | None = None
    reference: list[str] | None = None
    notes: list[str] = field(default_factory=list)


def read_lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def _stamp(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}:{stat.st_size}:{int(stat.st_mtime)}"


def ensure_converted(checkpoint: Path, out: Path, src: str, tgt: str, log) -> Path:
    """Convert once; re-convert when the checkpoint changed (stamp file next to the folder)."""
    from fsmt_port.fairseq.convert import convert

    stamp = out.with_name(out.name + ".stamp")
    if out.is_dir() and stamp.is_file() and stamp.read_text() == _stamp(checkpoint):
        return out
    log(f"converting {checkpoint} -> {out}")
    convert(checkpoint, out, src_lang=src, tgt_lang=tgt, force=True)
    stamp.write_text(_stamp(checkpoint))
    return out


def ensure_ct2(model_dir: Path, out: Path, log) -> Path:
    from fsmt_port.export.ct2 import export_ct2

    stamp = out.with_name(out.name + ".stamp")
    source = _stamp(model_dir / "model.safetensors")
    if out.is_dir() and stamp.is_file() and stamp.read_text() == source:
        return out
    log(f"exporting {model_dir} -> {out} (CTranslate2 float32)")
    export_ct2(model_dir, out, force=True)
    stamp.write_text(source)
    return out


def small_workload(args, log) -> Workload:
    from fsmt_port.tokenization.tokenizer import FSMTTokenizer

    model_dir = ensure_converted(args.small_checkpoint, args.work_dir / "small-en-de", "en", "de", log)
    ct2_dir = ensure_ct2(model_dir, args.work_dir / "small-en-de-ct2", log) if _wants_ct2(args) else model_dir
    tokenizer = FSMTTokenizer.from_pretrained(model_dir)
    lines = read_lines(args.source)
    if args.smoke:
        lines = lines[:8]
        configs = [RunConfig("beam1 x batch4", 1, 4, len(lines)), RunConfig("beam5 x batch4", 5, 4, len(lines))]
    else:
        configs = []
        for beam in (1, 5):
            for batch in (1, 32, 128):
                n = min(len(lines), args.batch1_sentences) if batch == 1 else len(lines)
                configs.append(RunConfig(f"beam{beam} x batch{batch}", beam, batch, n))
    configs = _select(configs, args.configs)
    ids = [tokenizer.encode(line) for line in lines]
    golden = read_lines(args.golden_hyps) if args.golden_hyps and args.golden_hyps.is_file() else None
    reference = read_lines(args.reference) if args.reference and args.reference.is_file() else None
    return Workload("small", model_dir, ct2_dir, ids, configs, golden=golden, reference=reference)


def big_workload(args, log) -> Workload:
    from fsmt_port.tokenization.tokenizer import FSMTTokenizer

    if args.smoke:  # the same pipeline on a toy shape: make, convert, export, run
        ckpt_dir = args.work_dir / "big-shape-smoke-ckpt"
        shape = ["--layers", "1", "--embed-dim", "64", "--ffn-dim", "128", "--heads", "4", "--vocab", "6048",
                 "--optimizer-state", "none"]
        name, sentences, length = "big-smoke", 8, 5
    else:
        ckpt_dir = args.work_dir / "big-ckpt"
        shape, name, sentences, length = [], "big", args.big_sentences, 30
    if not (ckpt_dir / "model.pt").is_file():
        log(f"writing the random big-shape checkpoint into {ckpt_dir}")
        subprocess.run([sys.executable, str(REPO / "benchmarks" / "make_big_checkpoint.py"), "--out", str(ckpt_dir),
                        *shape], check=True)
    model_dir = ensure_converted(ckpt_dir / "model.pt", args.work_dir / name, "en", "de", log)
    ct2_dir = ensure_ct2(model_dir, args.work_dir / f"{name}-ct2", log) if _wants_ct2(args) else model_dir
    tokenizer = FSMTTokenizer.from_pretrained(model_dir)
    lines = read_lines(args.source)[:sentences]
    config = RunConfig(f"beam5 x batch{sentences}, {length} tokens", 5, sentences, sentences, fixed_length=length)
    workload = Workload("big", model_dir, ct2_dir, [tokenizer.encode(line) for line in lines], [config])
    workload.notes.append(f"{sentences} sentences (test_2016 lines 1-{sentences}), beam 5, exactly {length} "
                          "tokens + </s> per hypothesis, random weights")
    return workload


def _select(configs: list[RunConfig], wanted: str | None) -> list[RunConfig]:
    if not wanted:
        return configs
    keys = {tuple(int(x) for x in item.split(":")) for item in wanted.split(",")}
    return [c for c in configs if (c.beam, c.batch_size) in keys]


def _wants_ct2(args) -> bool:
    return any(s.startswith("ct2") for s in args.systems)


# --- systems ----------------------------------------------------------------------------

class System:
    """Load once per workload; ``prepare`` turns ids + batches into its own inputs (untimed);
    ``run`` translates them (timed) and returns raw outputs; ``tokens`` extracts top-1 ids."""

    name = ""

    def prepare(self, ids: list[list[int]], batches: list[list[int]], config: RunConfig):
        raise NotImplementedError

    def run(self, prepared):
        raise NotImplementedError

    def open(self, threads: int) -> None:
        """Untimed, before each run: torch systems re-assert the thread count (CTranslate2 resets
        the OpenMP thread count of the calling thread when it loads a model)."""
        torch.set_num_threads(threads)

    def close(self) -> None:
        """Untimed, after each run."""

    def tokens(self, raw) -> list[list[int]]:
        """Top-1 target ids per sentence in batch order, ending with </s> when one was produced."""
        raise NotImplementedError


def _pad_left(rows: list[list[int]]) -> torch.Tensor:
    from fsmt_port.translation.translator import pad_left

    return pad_left(rows)


class FsmtPort(System):
    def __init__(self, name: str, model_dir: Path) -> None:
        from fsmt_port import FSMTForConditionalGeneration
        from fsmt_port.translation.translator import quantize_int8

        self.name = name
        dtype = "bf16" if name.endswith("bf16") else "fp32"
        self.model = FSMTForConditionalGeneration.from_pretrained(model_dir, dtype=dtype, device="cpu")
        if name.endswith("int8"):
            self.model = quantize_int8(self.model)

    def prepare(self, ids, batches, config):
        kwargs = {"num_beams": config.beam, "length_penalty": 1.0, "max_len_a": 0, "max_len_b": config.max_len_b,
                  "min_len": 1}
        if config.fixed_length:
            kwargs.update(min_len=config.fixed_length, max_len_b=config.fixed_length)
        return [(_pad_left([ids[i] for i in batch]), kwargs) for batch in batches]

    def run(self, prepared):
        return [self.model.generate(src, return_dict_in_generate=True, **kwargs).hypotheses
                for src, kwargs in prepared]

    def tokens(self, raw):
        return [hypos[0].tokens.tolist() for batch in raw for hypos in batch]


class Transformers(System):
    name = "transformers"

    def __init__(self, model_dir: Path) -> None:
        import transformers

        transformers.logging.set_verbosity_error()
        self.model = transformers.FSMTForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32)
        self.model.eval()

    def prepare(self, ids, batches, config):
        kwargs = {"num_beams": config.beam, "max_length": config.max_len_b, "early_stopping": True}
        if config.beam > 1:
            kwargs["length_penalty"] = 1.0
        if config.fixed_length:  # HF lengths count the decoder start token
            kwargs.update(min_length=config.fixed_length + 1, max_length=config.fixed_length + 2)
        out = []
        for batch in batches:
            src = _pad_left([ids[i] for i in batch])
            out.append((src, src.ne(1).long(), kwargs))
        return out

    def run(self, prepared):
        with torch.inference_mode():
            return [self.model.generate(src, attention_mask=mask, **kwargs) for src, mask, kwargs in prepared]

    def tokens(self, raw):
        rows = []
        for sequences in raw:
            for row in sequences.tolist():
                row = row[1:]  # decoder start </s>
                rows.append(row[: row.index(2) + 1] if 2 in row else [t for t in row if t != 1])
        return rows


class CTranslate2(System):
    def __init__(self, name: str, ct2_dir: Path, model_dir: Path, threads: int) -> None:
        import ctranslate2

        from fsmt_port.export.ct2 import vocabulary
        from fsmt_port.tokenization.tokenizer import FSMTTokenizer

        self.name = name
        self.ct2_dir, self.threads = str(ct2_dir), threads
        self.compute_type = "int8" if name.endswith("int8") else "float32"
        self.translator = None
        tokenizer = FSMTTokenizer.from_pretrained(model_dir)
        self.src_tokens = vocabulary(tokenizer.src_dict.symbols)
        self.tgt_index = {t: i for i, t in enumerate(vocabulary(tokenizer.tgt_dict.symbols))}

    def prepare(self, ids, batches, config):
        kwargs = {"beam_size": config.beam, "length_penalty": 1.0, "max_decoding_length": config.max_len_b,
                  "return_end_token": True, "max_batch_size": 0}
        if config.fixed_length:  # CTranslate2 counts </s> as a decoding step
            kwargs.update(min_decoding_length=config.fixed_length, max_decoding_length=config.fixed_length + 1)
        return [([[self.src_tokens[t] for t in ids[i]] for i in batch], kwargs) for batch in batches]

    def open(self, threads: int) -> None:
        """Load only for the run: a live Translator keeps an OpenMP team in the libgomp that torch
        shares, and with more OpenMP threads than cores libgomp stops spin-waiting, which slows
        every torch system measured meanwhile by 10-30% (measured here)."""
        import ctranslate2

        self.translator = ctranslate2.Translator(self.ct2_dir, device="cpu", compute_type=self.compute_type,
                                                 inter_threads=1, intra_threads=self.threads)

    def close(self) -> None:
        self.translator = None
        gc.collect()

    def run(self, prepared):
        return [self.translator.translate_batch(tokens, **kwargs) for tokens, kwargs in prepared]

    def tokens(self, raw):
        return [[self.tgt_index[t] for t in result.hypotheses[0]] for batch in raw for result in batch]


def load_system(name: str, workload: Workload, threads: int) -> System:
    if name.startswith("fsmt_port"):
        return FsmtPort(name, workload.model_dir)
    if name == "transformers":
        return Transformers(workload.model_dir)
    if name.startswith("ct2"):
        return CTranslate2(name, workload.ct2_dir, workload.model_dir, threads)
    raise ValueError(f"unknown system {name!r}; expected some of {', '.join(SYSTEMS)}")


# --- measuring --------------------------------------------------------------------------

def _comparable(tokens: list[int], limit: int) -> list[int]:
    """Drop the final </s>, and cut at the length limit (systems differ in forcing </s> there)."""
    body = tokens[:-1] if tokens and tokens[-1] == 2 else tokens
    return body[:limit]


def _bleu(hyps: list[str], refs: list[str]) -> float | None:
    try:
        import sacrebleu
    except ImportError:
        return None
    return round(sacrebleu.corpus_bleu(hyps, [refs]).score, 2)


def measure(workload: Workload, systems: dict[str, System], args, log) -> list[dict]:
    from fsmt_port.tokenization.tokenizer import FSMTTokenizer
    from fsmt_port.translation.translator import make_batches

    tokenizer = FSMTTokenizer.from_pretrained(workload.model_dir)
    rows = []
    for config in workload.configs:
        ids = workload.ids[: config.sentences]
        batches = make_batches([len(x) for x in ids], config.batch_size, None)
        order = [i for batch in batches for i in batch]
        prepared = {name: s.prepare(ids, batches, config) for name, s in systems.items()}
        warm_batches = min(len(batches), args.warmup_batches)
        log(f"[{workload.name}] {config.name}: {config.sentences} sentences, {len(batches)} batches; "
            f"warm-up on {warm_batches}")
        for name, system in systems.items():  # warm-up: excluded from every number
            system.open(args.threads)
            system.run(prepared[name][:warm_batches])
            system.close()
        times: dict[str, list[float]] = {name: [] for name in systems}
        cpu: dict[str, list[float]] = {name: [] for name in systems}
        run_peak: dict[str, int] = {name: 0 for name in systems}
        outputs: dict[str, list[list[int]]] = {}
        load_before = os.getloadavg()[0]
        names = list(systems)
        for round_index in range(args.repeats):
            rotation = names[round_index % len(names):] + names[: round_index % len(names)]
            for name in rotation:
                systems[name].open(args.threads)
                gc.collect()
                reset_peak()
                before = rss()
                wall, proc = time.perf_counter(), time.process_time()
                raw = systems[name].run(prepared[name])
                times[name].append(time.perf_counter() - wall)
                cpu[name].append(time.process_time() - proc)
                run_peak[name] = max(run_peak[name], peak() - before)
                systems[name].close()
                if name not in outputs:
                    outputs[name] = systems[name].tokens(raw)
                del raw
            log(f"  round {round_index + 1}/{args.repeats}: "
                + ", ".join(f"{n} {times[n][-1]:.2f}s" for n in names))
        load_after = os.getloadavg()[0]

        limit = config.fixed_length or config.max_len_b
        base = outputs.get(BASELINE)
        base_time = statistics.median(times[BASELINE]) if BASELINE in times else None
        hf_time = statistics.median(times["transformers"]) if "transformers" in times else None
        full_small = workload.name == "small" and config.sentences == len(workload.ids)
        for name in names:
            toks = outputs[name]
            seconds = statistics.median(times[name])
            n_tokens = sum(len(t) for t in toks)
            row = {
                "workload": workload.name, "config": config.name, "beam": config.beam,
                "batch_size": config.batch_size, "sentences": config.sentences, "system": name,
                "seconds_median": round(seconds, 3), "seconds_all": [round(t, 3) for t in times[name]],
                "cpu_seconds_median": round(statistics.median(cpu[name]), 3),
                "sentences_per_s": round(config.sentences / seconds, 2),
                "target_tokens": n_tokens, "target_tokens_per_s": round(n_tokens / seconds, 1),
                "speed_vs_transformers": round(hf_time / seconds, 3) if hf_time else None,
                "fsmt_port_speedup": round(seconds / base_time, 3) if base_time else None,
                "run_peak_rss_mb": round(run_peak[name] / 2**20, 1),
                "loadavg_before_after": [round(load_before, 2), round(load_after, 2)],
            }
            if base is not None:
                same = sum(_comparable(a, limit) == _comparable(b, limit) for a, b in zip(toks, base))
                row["top1_same_as_fsmt_port"] = f"{same}/{len(toks)}"
            if full_small:
                texts = [None] * len(toks)
                for index, hyp in zip(order, toks):
                    texts[index] = tokenizer.decode(hyp)
                if workload.golden is not None and config.beam == 5 and len(workload.golden) == len(texts):
                    row["top1_same_as_fairseq"] = f"{sum(a == b for a, b in zip(texts, workload.golden))}/{len(texts)}"
                if workload.reference is not None and len(workload.reference) == len(texts):
                    row["bleu"] = _bleu(texts, workload.reference)
            rows.append(row)
        ratio = FAIRSEQ_OVER_TRANSFORMERS.get((workload.name, config.beam, config.batch_size))
        if ratio and hf_time and not args.smoke:
            seconds = hf_time * ratio
            rows.append({"workload": workload.name, "config": config.name, "beam": config.beam,
                         "batch_size": config.batch_size, "sentences": config.sentences,
                         "system": "fairseq (estimated)", "seconds_median": round(seconds, 3),
                         "sentences_per_s": round(config.sentences / seconds, 2),
                         "speed_vs_transformers": round(1 / ratio, 3),
                         "fsmt_port_speedup": round(seconds / base_time, 3) if base_time else None,
                         "note": "not run: transformers' time x the issue's fairseq/transformers ratio"})
    return rows


def run_workload(workload: Workload, args, log) -> list[dict]:
    systems: dict[str, System] = {}
    for name in args.systems:
        if name == "transformers" and not _transformers_can_run(workload.model_dir):
            log(f"[{workload.name}] skipping transformers: the model is not transformers-compatible")
            continue
        systems[name] = load_system(name, workload, args.threads)
    try:
        rows = measure(workload, systems, args, log)
    finally:
        systems.clear()
        gc.collect()
    if args.rss_probes:
        probe_peak_rss(workload, rows, args, log)
    return rows


def probe_peak_rss(workload: Workload, rows: list[dict], args, log) -> None:
    """Each system's peak RSS in a process of its own: load it, translate the workload's first
    config once, exit (``--rss-probe``); minus the same process that only imports everything."""
    config = workload.configs[0]
    common = [sys.executable, str(Path(__file__).resolve()), "--work-dir", str(args.work_dir), "--threads",
              str(args.threads), "--workloads", workload.name] + (["--smoke"] if args.smoke else [])
    baseline, _ = child_peak_rss(common + ["--rss-probe", "none"])
    for name in {r["system"] for r in rows if r["workload"] == workload.name and "seconds_all" in r}:
        log(f"[{workload.name}] peak RSS of {name} in its own process ({config.name})")
        peak_bytes, _ = child_peak_rss(common + ["--rss-probe", name])
        for row in rows:
            if row["system"] == name:
                row["peak_rss_mb"] = round(peak_bytes / 2**20, 1)
                row["peak_rss_over_baseline_mb"] = round((peak_bytes - baseline) / 2**20, 1)


def rss_probe(args) -> int:
    """Child side of :func:`probe_peak_rss`."""
    from fsmt_port.translation.translator import make_batches

    workload = {"small": small_workload, "big": big_workload}[args.workloads[0]](args, lambda message: None)
    if args.rss_probe == "none":
        return 0
    config = workload.configs[0]
    ids = workload.ids[: config.sentences]
    batches = make_batches([len(x) for x in ids], config.batch_size, None)
    system = load_system(args.rss_probe, workload, args.threads)
    prepared = system.prepare(ids, batches, config)
    system.open(args.threads)
    system.run(prepared)
    return 0


def _transformers_can_run(model_dir: Path) -> bool:
    return json.loads((model_dir / "config.json").read_text()).get("model_type") == "fsmt"


# --- conversion / loading memory ---------------------------------------------------------

def child_peak_rss(argv: list[str]) -> tuple[int, float]:
    """Peak RSS (bytes) and wall seconds of ``argv``: ``rss_translate``'s fresh-helper measurement."""
    from rss_translate import measure_in_fresh_process  # benchmarks/ is this script's folder

    result = measure_in_fresh_process(argv)
    if result["returncode"] != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} ... failed ({result['returncode']}): {result['stderr_tail']}")
    return result["peak_rss_bytes"], result["wall_s"]


def memory_rows(args, log) -> list[dict]:
    """Peak RSS of converting the big-shape checkpoint and of loading the converted folder."""
    import tempfile

    name = "big-smoke" if args.smoke else "big"
    ckpt = args.work_dir / ("big-shape-smoke-ckpt" if args.smoke else "big-ckpt") / "model.pt"
    model_dir = args.work_dir / name
    if not ckpt.is_file() or not model_dir.is_dir():
        big_workload(args, log)
    weights = (model_dir / "model.safetensors").stat().st_size
    checkpoint = ckpt.stat().st_size
    py = sys.executable
    probe = "[2]" if args.smoke else "[100, 200, 300, 2]"
    load = f"from fsmt_port import FSMTForConditionalGeneration as M; m = M.from_pretrained({str(model_dir)!r})"
    steps = [
        ("python + torch + fsmt_port imported (baseline)", [py, "-c", "import torch, fsmt_port.fairseq.convert"]),
        ("convert the fairseq checkpoint (python -m fsmt_port.fairseq.convert)", None),
        ("load the converted folder (from_pretrained)", [py, "-c", load]),
        ("load + translate one sentence (every weight read)",
         [py, "-c", load + f"; import torch; m.generate(torch.tensor([{probe}]), num_beams=5, max_len_b=5)"]),
    ]
    if args.smoke:  # the two measurements the issue asks for, nothing else
        steps = steps[1:3]
    rows = []
    with tempfile.TemporaryDirectory(dir=args.work_dir) as tmp:
        for what, argv in steps:
            if argv is None:
                argv = [py, "-m", "fsmt_port.fairseq.convert", "--fsmt-path", str(ckpt), "--output-dir", f"{tmp}/out",
                        "--src-lang", "en", "--tgt-lang", "de", "--force"]
            log(f"[memory] {what}")
            peak_bytes, seconds = child_peak_rss(argv)
            rows.append({"what": what, "peak_rss_mb": round(peak_bytes / 2**20, 1), "seconds": round(seconds, 1),
                         "peak_over_checkpoint_file": round(peak_bytes / checkpoint, 3),
                         "peak_over_model_weights": round(peak_bytes / weights, 3)})
    return [{"checkpoint": str(ckpt), "checkpoint_file_mb": round(checkpoint / 2**20, 1),
             "model_weights_mb": round(weights / 2**20, 1), "rows": rows}]


# --- report -----------------------------------------------------------------------------

def machine() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for module in ("transformers", "ctranslate2"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = None
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "platform": platform.platform(), "versions": versions}


def _fmt(value, spec: str = "") -> str:
    if value is None:
        return ""
    return format(value, spec) if spec else str(value)


def markdown(report: dict) -> str:
    lines = ["# fsmt_port benchmark", ""]
    info = report["machine"]
    lines.append(f"Machine: {info['cpu']}, {info['logical_cpus']} logical CPUs; {report['threads']} threads; "
                 + ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v) + ".")
    lines.append(f"Repeats: {report['repeats']} (median shown), warm-up excluded"
                 + ("; SMOKE RUN: tiny inputs, the numbers mean nothing" if report["smoke"] else "") + ".")
    lines.append("")
    lines.append("`x transformers` = throughput relative to transformers' FSMT (higher is faster); "
                 "`fsmt_port x` = how many times faster fsmt_port fp32 is than that system.")
    lines.append("")
    header = ("| workload | config | system | s (median) | sent/s | tgt tok/s | x transformers | fsmt_port x "
              "| top-1 = fsmt_port | top-1 = fairseq | BLEU | peak RSS MB (own process) | run peak MB |")
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    for row in report["rows"]:
        lines.append("| " + " | ".join([
            row["workload"], row["config"], row["system"], _fmt(row.get("seconds_median"), ".2f"),
            _fmt(row.get("sentences_per_s"), ".1f"), _fmt(row.get("target_tokens_per_s"), ".0f"),
            _fmt(row.get("speed_vs_transformers"), ".2f"), _fmt(row.get("fsmt_port_speedup"), ".2f"),
            _fmt(row.get("top1_same_as_fsmt_port")), _fmt(row.get("top1_same_as_fairseq")), _fmt(row.get("bleu")),
            _fmt(row.get("peak_rss_mb"), ".0f"), _fmt(row.get("run_peak_rss_mb"), ".0f")]) + " |")
    for memory in report.get("memory", []):
        lines += ["", f"Conversion and loading memory (peak RSS of a child process): checkpoint "
                      f"`{Path(memory['checkpoint']).name}` {memory['checkpoint_file_mb']:.0f} MB on disk, of which "
                      f"model weights {memory['model_weights_mb']:.0f} MB.", "",
                  "| step | peak RSS MB | / checkpoint file | / model weights | s |", "|---|---|---|---|---|"]
        for row in memory["rows"]:
            lines.append(f"| {row['what']} | {row['peak_rss_mb']:.0f} | {row['peak_over_checkpoint_file']:.2f} "
                         f"| {row['peak_over_model_weights']:.2f} | {row['seconds']:.1f} |")
    for note in report.get("notes", []):
        lines += ["", f"* {note}"]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny inputs, 1 repeat: checks the harness, not speed")
    parser.add_argument("--workloads", default="small,big,memory",
                        help="comma-separated: small, big, memory (conversion/loading RSS) (default: all)")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset of: " + ", ".join(SYSTEMS))
    parser.add_argument("--configs", help="only these beam:batch pairs of the small workload, e.g. 5:32,1:32")
    parser.add_argument("--repeats", type=int, help="timed runs per (config, system) (default 3; smoke 1)")
    parser.add_argument("--warmup-batches", type=int, help="batches in the untimed warm-up run (default 2; smoke 0)")
    parser.add_argument("--threads", type=int, help="intra-op threads for every system (default 2; smoke 1)")
    parser.add_argument("--batch1-sentences", type=int, default=250,
                        help="sentences for the batch-1 configs (default 250; 1000 = all, slow)")
    parser.add_argument("--big-sentences", type=int, default=32, help="sentences of the big workload (default 32)")
    parser.add_argument("--small-checkpoint", type=Path, default=SMALL_CHECKPOINT)
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--reference", type=Path, default=REFERENCE, help="for BLEU (small workload, all lines)")
    parser.add_argument("--golden-hyps", type=Path, default=GOLDEN_HYPS,
                        help="fairseq's beam-5 hypotheses for --source (default: the fixture copy)")
    parser.add_argument("--work-dir", type=Path, help="converted models (default benchmarks/_work; smoke: .../smoke)")
    parser.add_argument("--out-dir", type=Path, help="results.json + results.md (default: WORK_DIR/results)")
    parser.add_argument("--no-rss-probes", dest="rss_probes", action="store_false", default=None,
                        help="skip the per-system peak-RSS processes (default: run them; smoke: skip)")
    parser.add_argument("--rss-probe", help=argparse.SUPPRESS)  # internal: child of probe_peak_rss
    args = parser.parse_args(argv)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in args.systems if s not in SYSTEMS]
    if unknown:
        parser.error(f"unknown system(s) {unknown}; expected some of {', '.join(SYSTEMS)}")
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in args.workloads if w not in ("small", "big", "memory")]
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; expected some of small, big, memory")
    if args.repeats is None:
        args.repeats = 1 if args.smoke else 3
    if args.warmup_batches is None:
        args.warmup_batches = 0 if args.smoke else 2
    if args.threads is None:
        args.threads = 1 if args.smoke else 2
    if args.rss_probes is None:
        args.rss_probes = not args.smoke
    if args.work_dir is None:
        args.work_dir = WORK / "smoke" if args.smoke else WORK
    if args.out_dir is None:
        args.out_dir = args.work_dir / "results"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    if args.rss_probe:
        return rss_probe(args)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()

    def log(message: str) -> None:
        print(f"[{time.time() - started:7.1f}s] {message}", file=sys.stderr, flush=True)

    builders: dict[str, Callable] = {"small": small_workload, "big": big_workload}
    report = {"machine": machine(), "threads": args.threads, "repeats": args.repeats, "smoke": args.smoke,
              "systems": args.systems, "rows": [], "memory": [], "notes": []}
    for name in args.workloads:
        if name == "memory":
            report["memory"] += memory_rows(args, log)
            continue
        workload = builders[name](args, log)
        report["notes"] += [f"{name}: {note}" for note in workload.notes]
        report["rows"] += run_workload(workload, args, log)
        (args.out_dir / "results.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if not args.smoke:
        report["notes"].append("fairseq (estimated): fairseq is not installed here; its time is transformers' time "
                               "in this run x the issue's measured fairseq/transformers ratio on this machine "
                               "(13.6/18.2 small, 16.7/18.4 big).")
    report["notes"].append(f"batch-1 configs use the first {args.batch1_sentences} lines (length-sorted)."
                           if not args.smoke else "smoke run")
    report["wall_seconds"] = round(time.time() - started, 1)
    (args.out_dir / "results.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (args.out_dir / "results.md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))
    log(f"wrote {args.out_dir / 'results.json'} and {args.out_dir / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
