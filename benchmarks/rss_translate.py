"""Peak resident memory of ``fsmt-translate`` as the input grows (memory-leak check).

Each measurement runs ``fsmt-translate`` in its own child process on N lines made
by repeating ``tests/fixtures/test_2016_flickr.en``, and reads the child's peak
RSS with ``resource.getrusage(RUSAGE_CHILDREN)``. To keep the numbers of
different N apart (RUSAGE_CHILDREN is a maximum over every waited-for child),
every N is measured from a fresh helper process that runs exactly one
``fsmt-translate``. While the child runs, ``/proc/PID/status`` is sampled so the
report also shows whether RSS climbs during the run (a per-batch leak) or
reaches a plateau (the model, the torch allocator's cache and the results).
Both live in ``harness/memory.py``, shared with ``run.py`` and ``stream_memory.py``.

Example (the numbers in ``benchmarks/RSS.md``)::

    python benchmarks/rss_translate.py --checkpoint tests/fixtures/small-en-de/model4.pt \\
        --src-lang en --tgt-lang de --lines 1 1000 10000 --num-beams 5

    python benchmarks/rss_translate.py --model-dir converted/tiny --lines 200 2000 --num-beams 1

Prints one JSON object per measurement and a Markdown table at the end.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.memory import measure_in_fresh_process  # noqa: E402  (the one peak-RSS helper)

REPO = Path(__file__).resolve().parents[1]
FLICKR = REPO / "tests" / "fixtures" / "test_2016_flickr.en"


def build_input(path: Path, n_lines: int, source: Path = FLICKR) -> None:
    """``n_lines`` lines: the source file repeated (and cut) as needed."""
    lines = source.read_text(encoding="utf-8").splitlines()
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for i in range(n_lines):
            handle.write(lines[i % len(lines)] + "\n")


def translate_command(model_dir: Path, input_path: Path, output_path: Path, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "fsmt_port.translation.cli", str(model_dir), "--input", str(input_path),
            "--output", str(output_path), "--force", "--quiet", *extra]


def convert(checkpoint: Path, out: Path, src_lang: str, tgt_lang: str) -> None:
    subprocess.run([sys.executable, "-m", "fsmt_port.fairseq.convert", "--fsmt-path", str(checkpoint), "--output-dir",
                    str(out), "--src-lang", src_lang, "--tgt-lang", tgt_lang, "--force"], check=True)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--model-dir`` or ``--checkpoint`` (converted by :func:`model_folder`), with its languages."""
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--model-dir", type=Path, help="a converted model folder")
    where.add_argument("--checkpoint", type=Path, help="a fairseq model*.pt to convert first (temp folder)")
    parser.add_argument("--src-lang", default="en")
    parser.add_argument("--tgt-lang", default="de")


def model_folder(args: argparse.Namespace, tmp: Path) -> Path:
    """``--model-dir`` as given, or ``--checkpoint`` converted into ``tmp/model``."""
    if args.model_dir is not None:
        return args.model_dir
    convert(args.checkpoint, tmp / "model", args.src_lang, args.tgt_lang)
    return tmp / "model"


def plateau_summary(samples: list[tuple[float, int]]) -> str:
    """RSS (MiB) at 25/50/75/100 % of the run's samples: flat = no per-batch growth."""
    if len(samples) < 4:
        return "-"
    picks = [samples[min(len(samples) - 1, int(len(samples) * f))][1] for f in (0.25, 0.5, 0.75, 1.0)]
    return " / ".join(f"{kib / 1024:.0f}" for kib in picks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_options(parser)
    parser.add_argument("--lines", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--num-beams", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--format", choices=["text", "jsonl"], default="text")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--extra", default="", help="more fsmt-translate options, one string")
    parser.add_argument("--json-out", type=Path, help="also write all measurements here")
    args = parser.parse_args(argv)

    extra = ["--num-beams", str(args.num_beams), "--format", args.format]
    if args.batch_size:
        extra += ["--batch-size", str(args.batch_size)]
    if args.threads:
        extra += ["--threads", str(args.threads)]
    extra += args.extra.split()
    results = []
    with tempfile.TemporaryDirectory(prefix="rss_translate-") as tmp:
        tmp = Path(tmp)
        model_dir = model_folder(args, tmp)
        for n in args.lines:
            src = tmp / f"input.{n}.txt"
            build_input(src, n)
            result = measure_in_fresh_process(translate_command(model_dir, src, tmp / f"output.{n}.txt", extra))
            result.update(lines=n, options=" ".join(extra))
            if result["returncode"] != 0:
                print(json.dumps(result), file=sys.stderr)
                return 1
            out_lines = (tmp / f"output.{n}.txt").read_text(encoding="utf-8").count("\n")
            result["output_lines"] = out_lines
            print(json.dumps({k: v for k, v in result.items() if k != "samples_kib"}), flush=True)
            results.append(result)
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print("\n| lines | peak RSS (MiB) | RSS at 25/50/75/100 % of the run (MiB) | wall (s) |")
    print("|---:|---:|---|---:|")
    for r in results:
        print(f"| {r['lines']} | {r['peak_rss_mib']} | {plateau_summary(r['samples_kib'])} | {r['wall_s']} |")
    if len(results) >= 2:
        growth = results[-1]["peak_rss_mib"] - results[-2]["peak_rss_mib"]
        print(f"\ngrowth from {results[-2]['lines']} to {results[-1]['lines']} lines: {growth:+.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
