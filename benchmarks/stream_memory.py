"""Streaming fsmt-translate: peak RSS must not grow with the input, and throughput must match whole-file mode.

For every beam size and input size, two runs of ``fsmt-translate --output``, each in a fresh process
measured by ``harness.memory.measure_in_fresh_process`` (peak RSS of that child alone):

* streaming: the default window (``--buffer-size``, see ``translation/windows.py``), committed window
  by window;
* whole file: ``--buffer-size`` = the number of lines, i.e. one window: read everything, sort
  everything, translate, write, as fsmt-translate did before it streamed.

Both outputs must be byte-identical (checked). Prints one JSON object per run, then a Markdown table
with the peak RSS of each mode and streaming's throughput relative to whole-file mode, by wall time
and by CPU time (the child's user+sys seconds; steadier when other work shares the machine).

Example (the figures in ``benchmarks/RSS.md``)::

    python benchmarks/stream_memory.py --checkpoint tests/fixtures/tiny-en-de-joint/model1.pt \\
        --lines 10000 200000 --beams 1 5 --batch-size 128 --device cuda
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rss_translate  # noqa: E402  (inputs, the fsmt-translate command, the model folder)
from harness.memory import measure_in_fresh_process  # noqa: E402  (the one peak-RSS helper)

MODES = ("streaming", "whole-file")


def run_mode(model_dir: Path, source: Path, out: Path, n_lines: int, beams: int, mode: str, common: list[str]) -> dict:
    extra = ["--num-beams", str(beams), *common]
    if mode == "whole-file":
        extra += ["--buffer-size", str(max(1, n_lines))]
    result = measure_in_fresh_process(rss_translate.translate_command(model_dir, source, out, extra))
    if result["returncode"] != 0:
        raise SystemExit(f"fsmt-translate failed ({mode}, {n_lines} lines, beam {beams}):\n{result['stderr_tail']}")
    result.update(lines=n_lines, beams=beams, mode=mode, lines_per_s=round(n_lines / result["wall_s"], 1),
                  lines_per_cpu_s=round(n_lines / result["cpu_s"], 1))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    rss_translate.add_model_options(parser)
    parser.add_argument("--lines", type=int, nargs="+", default=[10000, 200000])
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES),
                        help="streaming (default window) and/or whole-file (one window) (default: both)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--extra", default="", help="more fsmt-translate options, one string")
    parser.add_argument("--json-out", type=Path, help="also write all measurements here")
    args = parser.parse_args(argv)

    common = ["--device", args.device, *args.extra.split()]
    if args.batch_size:
        common += ["--batch-size", str(args.batch_size)]
    if args.threads:
        common += ["--threads", str(args.threads)]
    results = []
    with tempfile.TemporaryDirectory(prefix="stream_memory-") as tmp:
        tmp = Path(tmp)
        model_dir = rss_translate.model_folder(args, tmp)
        for n in args.lines:
            source = tmp / f"input.{n}.txt"
            rss_translate.build_input(source, n)
            for beams in args.beams:
                outputs = {}
                for mode in args.modes:
                    outputs[mode] = tmp / f"output.{n}.{beams}.{mode}.txt"
                    result = run_mode(model_dir, source, outputs[mode], n, beams, mode, common)
                    print(json.dumps({k: v for k, v in result.items() if k != "samples_kib"}), flush=True)
                    results.append(result)
                if len(outputs) == 2 and outputs["streaming"].read_bytes() != outputs["whole-file"].read_bytes():
                    raise SystemExit(f"streaming and whole-file outputs differ ({n} lines, beam {beams})")
                for path in outputs.values():
                    path.unlink()
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print("\n| lines | beam | streaming peak RSS (MiB) | whole-file peak RSS (MiB) | streaming lines/s | "
          "whole-file lines/s | throughput streaming / whole-file (wall) | (CPU time) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    by_key = {(r["lines"], r["beams"], r["mode"]): r for r in results}
    missing = {"peak_rss_mib": "-", "lines_per_s": "-", "lines_per_cpu_s": "-"}
    for n in args.lines:
        for beams in args.beams:
            stream = by_key.get((n, beams, "streaming"), missing)
            whole = by_key.get((n, beams, "whole-file"), missing)
            ratios = ["-" if missing in (stream, whole) else f"{stream[k] / whole[k]:.3f}x"
                      for k in ("lines_per_s", "lines_per_cpu_s")]
            print(f"| {n} | {beams} | {stream['peak_rss_mib']} | {whole['peak_rss_mib']} | {stream['lines_per_s']} | "
                  f"{whole['lines_per_s']} | {ratios[0]} | {ratios[1]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
