"""Where fsmt_port and CTranslate2 spend a run, side by side, sampled by Linux ``perf``.

    python benchmarks/perf_profile.py [--systems fsmt_port,ct2] [--workload small] [--config 5:32]
        [--sentences 320] [--threads 1] [--repeats 3] [--out profile.md]

Why: ``torch.profiler`` (``profile_generate.py``) sees torch's operators only, so it cannot say how
CTranslate2's time compares. ``perf record`` samples any process the same way, so both systems'
time falls into the same categories (GEMM kernels, attention, softmax, gathers, the Python
interpreter, the allocator, ...), in CPU seconds per run. That is what tells a kernel gap from an
overhead gap.

Each system runs in its own child process on the harness's batches and inputs (``harness``:
same conversion, same ``make_batches``, same decoding options as ``run.py``). The child warms up,
then switches sampling on (``perf record --control``) only around its timed runs, so loading and
tokenization are not counted. Needs Linux perf (Debian: ``apt-get install linux-perf``) and
``kernel.perf_event_paranoid`` <= 2; it samples the software ``cpu-clock`` event, which works in
virtual machines without hardware counters.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: (category, pattern on "dso;symbol"): the first match wins
CATEGORIES = [
    ("GEMM: oneDNN JIT kernels", r"^\[JIT\]"),
    ("GEMM/GEMV: MKL", r"mkl_"),
    ("numpy's OpenBLAS threads (idle spin)", r"openblas"),
    ("attention kernel (torch flash)", r"flash_attention"),
    ("softmax / log-softmax / exp", r"(?i)softmax|sleef|_exp|expf"),
    ("top-k", r"(?i)topk|adjust_heap"),
    ("copies, gathers, concat", r"(?i)memmove|memcpy|memset|index_select|gather|copy|concat|\bcat\b"),
    ("layer norm", r"(?i)layer_?norm|RowwiseMoments"),
    ("malloc / free", r"(?i)malloc|free|consolidate|unlink_chunk|mmap|munmap"),
    ("OpenMP runtime (spin-wait, barriers)", r"(?i)^lib(g|i)?omp"),
    ("Python interpreter", r"^libpython"),
    ("torch dispatch and bindings", r"^lib(torch_python|c10)|c10::impl|Dispatcher|OperatorEntry|TensorIterator|"
                                    r"TensorImpl|intrusive_ptr|FunctionSignature|PythonArgParser"),
    ("other torch kernels (element-wise, ...)", r"^libtorch"),
    ("other CTranslate2", r"^libctranslate2"),
    ("OS kernel", r"^\[kernel"),
]
OTHER = "other"
FREQUENCY = 997  # samples per second of CPU time, per thread (perf record -F)


def sample_lines(report: str):
    """(samples, dso, symbol) per line of ``perf report --sort dso,sym -n -t ';'``."""
    for line in report.splitlines():
        parts = [p.strip() for p in line.split(";")]
        if line.startswith("#") or len(parts) < 4 or not parts[0].endswith("%") or not parts[1].isdigit():
            continue
        yield int(parts[1]), parts[2], parts[3].removeprefix("[.] ").removeprefix("[k] ")


def categorize(report: str) -> dict[str, int]:
    """Samples per category."""
    counts: dict[str, int] = {}
    for samples, dso, symbol in sample_lines(report):
        key = f"{dso};{symbol}"
        category = next((name for name, pattern in CATEGORIES if re.search(pattern, key)), OTHER)
        counts[category] = counts.get(category, 0) + samples
    return counts


def top_symbols(report: str, count: int) -> list[tuple[int, str]]:
    """The ``count`` busiest symbols by samples; JIT code summed into one entry, unresolved ones by library."""
    totals: dict[str, int] = {}
    for samples, dso, symbol in sample_lines(report):
        name = "oneDNN JIT code" if dso.startswith("[JIT]") else (
            f"{dso} (no symbol)" if symbol.startswith("0x") else symbol[:90])
        totals[name] = totals.get(name, 0) + samples
    return sorted(((n, name) for name, n in totals.items()), key=lambda item: (-item[0], item[1]))[:count]


def markdown(results: dict[str, dict], title: str) -> str:
    """CPU seconds per run (samples / FREQUENCY / runs) and share per category, one column pair per system.

    With several threads, CPU seconds add up over the threads: a thread spin-waiting in OpenMP
    shows as its own category, and the total exceeds the wall time."""
    names = list(results)
    categories = [c for c, _ in CATEGORIES] + [OTHER]
    lines = [f"**{title}**", "", "| category | " + " | ".join(f"{n} CPU s | {n} %" for n in names) + " |",
             "|---|" + "---:|---:|" * len(names)]
    totals = {n: max(1, sum(results[n]["counts"].values())) for n in names}
    for category in categories:
        counts = {n: results[n]["counts"].get(category, 0) for n in names}
        if all(counts[n] / totals[n] < 0.0005 for n in names):
            continue
        cells = [cell for n in names for cell in (f"{counts[n] / FREQUENCY / results[n]['runs']:.2f}",
                                                  f"{100 * counts[n] / totals[n]:.1f}")]
        lines.append(f"| {category} | " + " | ".join(cells) + " |")
    lines.append("| **CPU total** | " + " | ".join(
        f"**{totals[n] / FREQUENCY / results[n]['runs']:.2f}** | 100" for n in names) + " |")
    lines.append("| wall time of a run | " + " | ".join(f"{results[n]['seconds']:.2f} | " for n in names) + " |")
    for name in names:
        total = totals[name]
        lines += ["", f"{name}, busiest symbols: " + "; ".join(
            f"{symbol} {100 * n / total:.1f} %" for n, symbol in results[name]["top"])]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", default="fsmt_port,ct2", help="comma-separated harness systems (run.py --help)")
    parser.add_argument("--workload", default="small", choices=("small", "big"))
    parser.add_argument("--config", default="5:32", help="beam:batch of the small workload (default 5:32; the big one has one)")
    parser.add_argument("--sentences", type=int, default=320, help="first N source lines (small workload)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs sampled per system")
    parser.add_argument("--top", type=int, default=8, help="busiest symbols listed per system")
    parser.add_argument("--work-dir", type=Path, help="converted models (default: run.py's, benchmarks/_work)")
    parser.add_argument("--out", type=Path, help="also write the markdown here")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: the sampled process
    parser.add_argument("--control", help=argparse.SUPPRESS)  # internal: perf's control and ack fifos
    return parser.parse_args(argv)


def harness_workload(args):
    """The harness's workload and run config for ``args`` (conversion and export done once, cached)."""
    import run as harness_cli  # benchmarks/ is on sys.path: this script runs from there
    from harness.workloads import BUILDERS

    options = ["--workloads", args.workload, "--systems", args.systems, "--configs", args.config,
               "--sentences", str(args.sentences)]
    if args.work_dir:
        options += ["--work-dir", str(args.work_dir)]
    harness_args = harness_cli.parse_args(options)
    workload = BUILDERS[args.workload](harness_args, lambda message: print(message, file=sys.stderr))
    return workload, workload.configs[0]


def child(args) -> int:
    """Load one system, warm up, and run it ``--repeats`` times with sampling switched on."""
    import torch

    torch.set_num_threads(args.threads)
    from fsmt_port.translation.translator import make_batches
    from harness.systems import load_system

    workload, config = harness_workload(args)
    ids = workload.ids[: config.sentences]
    batches = make_batches([len(x) for x in ids], config.batch_size, None)
    system = load_system(args.child, workload)
    prepared = system.prepare(ids, batches, config)
    system.open(args.threads)
    system.run(prepared[:2])
    control, ack = args.control.split(",")
    with open(control, "w") as ctl, open(ack) as acknowledge:
        ctl.write("enable\n")
        ctl.flush()
        acknowledge.readline()
        started = time.perf_counter()
        for _ in range(args.repeats):
            system.run(prepared)
        seconds = (time.perf_counter() - started) / args.repeats
        ctl.write("disable\n")
        ctl.flush()
        acknowledge.readline()
    system.close()
    print(json.dumps({"seconds": seconds}))
    return 0


def profile(name: str, args, work: Path) -> dict:
    """Run ``name`` in a child process under ``perf record``: its wall seconds per run, samples per category."""
    control, ack, data = work / f"{name}.ctl", work / f"{name}.ack", work / f"{name}.perf"
    os.mkfifo(control)
    os.mkfifo(ack)
    command = ["perf", "record", "-q", "-e", "cpu-clock", "-F", str(FREQUENCY), "-D", "-1", "--control",
               f"fifo:{control},{ack}", "-o", str(data), "--", sys.executable, str(Path(__file__).resolve()),
               "--child", name, "--control", f"{control},{ack}", "--systems", name, "--workload", args.workload,
               "--config", args.config, "--sentences", str(args.sentences), "--threads", str(args.threads),
               "--repeats", str(args.repeats)] + (["--work-dir", str(args.work_dir)] if args.work_dir else [])
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode != 0:
        tail = (finished.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"perf_profile: {name} failed under perf record (exit {finished.returncode}): {tail}")
    seconds = json.loads(finished.stdout.strip().splitlines()[-1])["seconds"]
    report = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--sort", "dso,sym", "--stdio",
                             "-g", "none", "-n", "-t", ";"], capture_output=True, text=True, check=True).stdout
    return {"seconds": seconds, "runs": args.repeats, "counts": categorize(report),
            "top": top_symbols(report, args.top)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child(args)
    from harness.systems import SYSTEMS

    names = [n.strip() for n in args.systems.split(",") if n.strip()]
    unknown = [n for n in names if n not in SYSTEMS]
    if unknown or not names:
        print(f"perf_profile: --systems {args.systems!r}: unknown {unknown or 'empty'}; pick from "
              f"{', '.join(SYSTEMS)}", file=sys.stderr)
        return 2
    if shutil.which("perf") is None:
        print("perf_profile: Linux perf is not installed; install it (Debian: apt-get install linux-perf) "
              "and run again", file=sys.stderr)
        return 2
    _, config = harness_workload(args)  # convert / export once here, not inside the sampled children
    results = {}
    with tempfile.TemporaryDirectory(prefix="perf_profile-") as work:
        for name in names:
            print(f"perf_profile: sampling {name} ({args.repeats} runs)", file=sys.stderr, flush=True)
            results[name] = profile(name, args, Path(work))
    title = (f"{args.workload} workload, {config.name}, {config.sentences} sentences, {args.threads} thread(s): "
             f"CPU seconds per run by category (perf cpu-clock samples)")
    text = markdown(results, title)
    print(text)
    if args.out:
        from fsmt_port.files import atomic_file

        with atomic_file(args.out) as handle:
            handle.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
