"""Start-up latency: ``fsmt-translate`` from process start to its first line of output.

    python benchmarks/startup.py [--model-dir DIR] [--repeats 5] [--threads 2] [--quantize int8]

Each run is a fresh ``python -m fsmt_port.translate MODEL`` reading one sentence from a pipe
(imports, loading, tokenizer, one beam-5 translation, first line written); the median of
``--repeats`` runs is printed as a markdown row. The first run is a warm-up (page cache).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.workloads import SMALL_CHECKPOINT, WORK, ensure_converted  # noqa: E402

SENTENCE = "A man in an orange hat starring at something .\n"


def first_line_seconds(command: list[str], env_threads: int) -> float:
    """Seconds from spawning ``command`` until it has written its first line to stdout."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True, env={**os.environ, "OMP_NUM_THREADS": str(env_threads)})
    child.stdin.write(SENTENCE)
    child.stdin.close()
    line = child.stdout.readline()
    elapsed = time.perf_counter() - start
    child.wait(timeout=300)
    if child.returncode != 0 or not line.strip():
        raise SystemExit(f"startup: {' '.join(command)} exited {child.returncode} with output {line!r}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, help="a converted folder (default: small-en-de model4, converted)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quantize", default="none", choices=["none", "int8"])
    args = parser.parse_args(argv)
    model_dir = args.model_dir or ensure_converted(SMALL_CHECKPOINT, WORK / "small-en-de", "en", "de",
                                                   lambda m: print(m, file=sys.stderr))
    command = [sys.executable, "-m", "fsmt_port.translate", str(model_dir), "--num-beams", "5", "--quiet",
               "--threads", str(args.threads), "--quantize", args.quantize]
    first_line_seconds(command, args.threads)  # warm-up: page cache, .pyc files
    times = [first_line_seconds(command, args.threads) for _ in range(args.repeats)]
    print("| command | runs | median s | min s | max s |\n|---|---:|---:|---:|---:|")
    print(f"| fsmt-translate --quantize {args.quantize} (one sentence, beam 5) | {len(times)} | "
          f"{statistics.median(times):.2f} | {min(times):.2f} | {max(times):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
