"""What a run writes: the machine it ran on, results.json and the Markdown table of results.md.

The table holds measured rows only. fairseq is not installed here, so its time can only be
estimated from the issue's fairseq/transformers ratio; that estimate is a footnote under the table
(and ``estimates`` in results.json), never a row that could be mistaken for a measurement.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from .systems import BASELINE

#: The issue's measurements on this machine, fairseq hub and transformers seconds per (workload, beam,
#: batch, sentences): they place fairseq relative to transformers in a run where fairseq itself is not
#: installed, and only in that setting (a subset of the sentences is not what the issue timed).
FAIRSEQ_AND_TRANSFORMERS_SECONDS = {("small", 5, 32, 1000): (13.6, 18.2), ("big", 5, 32, 32): (16.7, 18.4)}


def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as handle:
            return next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


def machine() -> dict:
    import torch

    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for module in ("transformers", "ctranslate2"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = None
    return {"cpu": cpu_name(), "logical_cpus": os.cpu_count(), "platform": platform.platform(), "versions": versions}


def fairseq_estimates(rows: list[dict]) -> list[dict]:
    """fairseq's time where the issue measured it: transformers' time in this run (same config and
    thread count) x the issue's fairseq/transformers ratio."""
    estimates = []
    for row in rows:
        measured = FAIRSEQ_AND_TRANSFORMERS_SECONDS.get((row["workload"], row["beam"], row["batch_size"],
                                                         row["sentences"]))
        if row["system"] != "transformers" or measured is None:
            continue
        fairseq_s, transformers_s = measured
        seconds = row["seconds_median"] * fairseq_s / transformers_s
        same_run = (row["workload"], row["config"], row["threads"])
        base = next((r["seconds_median"] for r in rows
                     if r["system"] == BASELINE and (r["workload"], r["config"], r["threads"]) == same_run), None)
        estimates.append({"workload": row["workload"], "config": row["config"], "threads": row["threads"],
                          "system": "fairseq", "seconds": round(seconds, 3),
                          "sentences_per_s": round(row["sentences"] / seconds, 2),
                          "speed_vs_transformers": round(transformers_s / fairseq_s, 3),
                          "fsmt_port_speedup": round(seconds / base, 3) if base else None,
                          "issue_seconds": {"fairseq": fairseq_s, "transformers": transformers_s}})
    return estimates


def _fmt(value, spec: str = "") -> str:
    if value is None:
        return ""
    return format(value, spec) if spec else str(value)


COLUMNS = [  # (header, row key, format)
    ("workload", "workload", ""), ("config", "config", ""), ("threads", "threads", ""), ("system", "system", ""),
    ("s (median)", "seconds_median", ".2f"), ("sent/s", "sentences_per_s", ".1f"),
    ("tgt tok/s", "target_tokens_per_s", ".0f"), ("x transformers", "speed_vs_transformers", ".2f"),
    ("x ct2", "speed_vs_ct2", ".2f"), ("fsmt_port x", "fsmt_port_speedup", ".2f"),
    ("top-1 = fsmt_port", "top1_same_as_fsmt_port", ""), ("top-1 = fairseq", "top1_same_as_fairseq", ""),
    ("BLEU", "bleu", ""), ("peak RSS MB (own process)", "peak_rss_mb", ".0f"),
    ("run peak MB", "run_peak_rss_mb", ".0f"),
]


def markdown(report: dict) -> str:
    lines = ["# fsmt_port benchmark", ""]
    info = report["machine"]
    lines.append(f"Machine: {info['cpu']}, {info['logical_cpus']} logical CPUs; threads "
                 + ", ".join(map(str, report["threads"])) + "; "
                 + ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v) + ".")
    lines.append(f"Repeats: {report['repeats']} (median shown), warm-up excluded"
                 + ("; SMOKE RUN: tiny inputs, the numbers mean nothing" if report["smoke"] else "") + ".")
    lines.append("")
    lines.append("`x transformers` / `x ct2` = throughput relative to transformers' FSMT / CTranslate2 float32 in "
                 "the same config and thread count (higher is faster); `fsmt_port x` = how many times faster "
                 "fsmt_port fp32 is than that system.")
    lines.append("")
    lines += ["| " + " | ".join(header for header, _, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in report["rows"]:
        lines.append("| " + " | ".join(_fmt(row.get(key), spec) for _, key, spec in COLUMNS) + " |")
    for estimate in report.get("estimates", []):  # footnotes: not measured, so not in the table
        issue = estimate["issue_seconds"]
        faster = f", fsmt_port {estimate['fsmt_port_speedup']:.2f}× faster" if estimate["fsmt_port_speedup"] else ""
        lines += ["", f"{estimate['workload']}, {estimate['config']}, threads {estimate['threads']}: fairseq (not "
                      f"installed here), estimated from the issue's fairseq/transformers ratio ({issue['fairseq']} s / "
                      f"{issue['transformers']} s): ~{estimate['seconds']:.1f} s{faster}."]
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


def write_json(report: dict, out_dir: Path) -> Path:
    """results.json, rewritten after each workload so a long run that dies keeps what it measured."""
    path = out_dir / "results.json"
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return path
