"""Throughput and memory of fsmt_port against its peers, in one process, on the same inputs.

    python benchmarks/run.py              # full run at 2 threads (both workloads, ~30-60 min on 2 cores)
    python benchmarks/run.py --smoke      # seconds: tiny subsets, no timing claims (CI)
    python benchmarks/run.py --workloads small --configs 5:32 --threads 1,2 --sentences 200

Systems (all read the same converted folder; ``--systems`` picks some):

* ``fsmt_port`` fp32 (``model.generate``, the default path), ``fsmt_port-bf16``
  (``dtype=bf16``), ``fsmt_port-int8`` (``--quantize int8``: ``Int8Linear``, per-row int8 weights and activations);
* ``transformers`` (its ``FSMTForConditionalGeneration`` fp32 on our folder);
* ``ct2`` / ``ct2-int8``: CTranslate2 on ``python -m fsmt_port.export_ct2``'s
  float32 export, loaded with compute type float32 / int8.
* ``...-workers`` (``fsmt_port-workers``, ``fsmt_port-int8-workers``, ``ct2-workers``, ``ct2-int8-workers``):
  the same, with the threads spent across batches instead of inside each op: one batch per thread,
  each on one intra-op thread (``fsmt-translate --workers``; CTranslate2's ``inter_threads``, every
  batch submitted at once). At 1 thread they are the plain systems.

Workloads:

* ``small``: the golden small-en-de model4 (fp16 weights, run in fp32),
  ``test_2016_flickr.en`` (1000 lines, or the first ``--sentences``), beam 1 and 5 x
  batch 1/32/128, fairseq defaults (lenpen 1, max_len_b 200).
* ``big``: the WMT19 transformer-big shape with random weights (a real 2019-layout
  fairseq checkpoint made by ``make_big_checkpoint.py``, converted by our
  converter), 32 sentences, beam 5, exactly 30 target tokens + ``</s>`` each
  (min_len = max_len_b = 30, max_len_a = 0), so every system does the same work.

Every system gets the same source ids (our tokenizer), cut into the same
length-sorted batches (``translator.make_batches``), in the same process. Each
``--threads`` count is measured separately: every system re-asserts it before each
run (``torch.set_num_threads``; CTranslate2 loads with that many intra-op threads).
Each (config, thread count) gets one warm-up per system on the first batches, then
``--repeats`` timed runs; the systems take turns within each round so load
changes on the machine hit all of them alike, and the median is reported.
Ratios (``x transformers``, ``x ct2``, ``fsmt_port x``) compare systems within the
same config and thread count.
Target tokens = each system's top-1 hypothesis length including ``</s>``.
Memory: ``peak RSS`` = the peak RSS of a separate process that loads only that
system and translates the config's inputs once (``--rss-probe``; the first
config of each workload; memory-mapped weights count once read); ``run peak``
= in the benchmark process, the high-water mark during the system's timed runs
minus the RSS before them (reset through ``/proc/self/clear_refs``), i.e. the
working memory of decoding. Agreement: top-1 token
sequences identical to fsmt_port's (``</s>`` and the length limit aside), and, for
the small model on all 1000 lines, detokenized top-1 identical to fairseq's golden
hypotheses at beam 5, and BLEU. fairseq itself is not installed: where the issue
measured it, its time is estimated from the issue's fairseq/transformers ratio, in a
footnote under the table (``estimates`` in results.json), never as a table row.
Writes ``results.json`` and ``results.md`` into ``--out-dir``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

from harness.footprint import memory_rows, probe_peak_rss, rss_probe
from harness.measure import run_workload
from harness.report import fairseq_estimates, machine, markdown, write_json
from harness.systems import SYSTEMS
from harness.workloads import BUILDERS, GOLDEN_HYPS, REFERENCE, SMALL_CHECKPOINT, SOURCE, WORK


def thread_counts(text: str) -> list[int]:
    """``--threads 1,2``: one measured set of rows per count."""
    try:
        counts = [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected positive thread counts separated by commas, got {text!r}")
    return list(dict.fromkeys(counts))


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


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
    parser.add_argument("--threads", type=thread_counts,
                        help="intra-op threads for every system, comma-separated counts each measured separately, "
                             "e.g. 1,2 (default 2; smoke 1)")
    parser.add_argument("--sentences", type=positive_int,
                        help="only the first N lines in the small workload (default: all 1000; BLEU and agreement "
                             "with fairseq need all)")
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
        args.threads = [1] if args.smoke else [2]
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
    torch.set_num_threads(args.threads[0])
    if args.rss_probe:
        return rss_probe(args)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()

    def log(message: str) -> None:
        print(f"[{time.time() - started:7.1f}s] {message}", file=sys.stderr, flush=True)

    report = {"machine": machine(), "threads": args.threads, "repeats": args.repeats, "smoke": args.smoke,
              "systems": args.systems, "rows": [], "estimates": [], "memory": [], "notes": []}
    for name in args.workloads:
        if name == "memory":
            report["memory"] += memory_rows(args, log)
            continue
        workload = BUILDERS[name](args, log)
        report["notes"] += [f"{name}: {note}" for note in workload.notes]
        rows = run_workload(workload, args, log)
        if args.rss_probes:
            probe_peak_rss(workload, rows, args, log)
        report["rows"] += rows
        write_json(report, args.out_dir)
    if not args.smoke:  # tiny smoke inputs have nothing in common with the measurement
        report["estimates"] = fairseq_estimates(report["rows"])
    report["notes"].append(f"batch-1 configs use the first {args.batch1_sentences} lines (length-sorted)."
                           if not args.smoke else "smoke run")
    report["wall_seconds"] = round(time.time() - started, 1)
    json_path = write_json(report, args.out_dir)
    (args.out_dir / "results.md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))
    log(f"wrote {json_path} and {args.out_dir / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
