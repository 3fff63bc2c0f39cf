"""Peak RSS that needs a process of its own: each system loaded and run alone, and conversion/loading.

In the benchmark process every system is loaded at once and torch's allocator keeps what it freed,
so a system's whole footprint can only be read in a fresh process that does nothing else.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from .memory import child_peak_rss
from .systems import load_system
from .workloads import BUILDERS, Workload, big_checkpoint_dir, big_workload

RUN_SCRIPT = Path(__file__).resolve().parents[1] / "run.py"


def probe_peak_rss(workload: Workload, rows: list[dict], args, log) -> None:
    """Each measured system's peak RSS in a process of its own, per thread count: load it, translate
    the workload's first config once, exit (``run.py --rss-probe``); and the same minus a process
    that only builds the workload (imports, tokenizer)."""
    config = workload.configs[0]
    measured = {r["system"] for r in rows if r["workload"] == workload.name}
    for threads in args.threads:
        command = [sys.executable, str(RUN_SCRIPT), "--threads", str(threads), "--workloads", workload.name,
                   *_workload_options(args)]
        baseline, _ = child_peak_rss(command + ["--rss-probe", "none"])
        for name in sorted(measured):
            log(f"[{workload.name}] peak RSS of {name} in its own process ({config.name}, {threads} threads)")
            peak_bytes, _ = child_peak_rss(command + ["--rss-probe", name])
            for row in rows:
                if (row["workload"], row["system"], row["threads"]) == (workload.name, name, threads):
                    row["peak_rss_mb"] = round(peak_bytes / 2**20, 1)
                    row["peak_rss_over_baseline_mb"] = round((peak_bytes - baseline) / 2**20, 1)


def _workload_options(args) -> list[str]:
    """The options that shape a workload, so the child builds the same one (and exports nothing new)."""
    options = ["--work-dir", str(args.work_dir), "--systems", ",".join(args.systems), "--source", str(args.source),
               "--small-checkpoint", str(args.small_checkpoint), "--batch1-sentences", str(args.batch1_sentences),
               "--big-sentences", str(args.big_sentences)]
    for flag, value in (("--smoke", args.smoke), ("--sentences", args.sentences), ("--configs", args.configs)):
        if value:
            options += [flag] if value is True else [flag, str(value)]
    return options


def rss_probe(args) -> int:
    """Child side of :func:`probe_peak_rss` (``--rss-probe NAME``; ``none``: build the workload only)."""
    from fsmt_port.translation.translator import make_batches

    workload = BUILDERS[args.workloads[0]](args, lambda message: None)
    if args.rss_probe == "none":
        return 0
    config = workload.configs[0]
    ids = workload.ids[: config.sentences]
    batches = make_batches([len(x) for x in ids], config.batch_size, None)
    system = load_system(args.rss_probe, workload)
    prepared = system.prepare(ids, batches, config)
    system.open(args.threads[0])
    system.run(prepared)
    return 0


def memory_rows(args, log) -> list[dict]:
    """Peak RSS of converting the big-shape checkpoint and of loading the converted folder."""
    ckpt_dir, name = big_checkpoint_dir(args)
    ckpt = ckpt_dir / "model.pt"
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
