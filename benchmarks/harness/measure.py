"""The timed loop: every system on the same batches, taking turns, once per config and thread count.

The systems alternate within each round (rotating who goes first), so load changes on a shared
machine hit all of them alike; the median of the rounds is reported. Ratios compare systems only
within the same config and thread count.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from dataclasses import dataclass, field

from .memory import peak, reset_peak, rss
from .systems import BASELINE, CT2, System, load_system, transformers_can_run
from .workloads import RunConfig, Workload


@dataclass
class Timings:
    """What the rounds of one (config, thread count) produced, per system name."""

    seconds: dict[str, list[float]]
    cpu_seconds: dict[str, list[float]]
    run_peak: dict[str, int]  # bytes above the RSS before the run
    outputs: dict[str, list[list[int]]] = field(default_factory=dict)  # top-1 ids of the first run
    loadavg: tuple[float, float] = (0.0, 0.0)  # before, after


def run_workload(workload: Workload, args, log) -> list[dict]:
    """Load every requested system that can read the workload's model, and measure them together."""
    systems: dict[str, System] = {}
    for name in args.systems:
        if name == "transformers" and not transformers_can_run(workload.model_dir):
            log(f"[{workload.name}] skipping transformers: the model is not transformers-compatible")
            continue
        systems[name] = load_system(name, workload)
    try:
        return measure(workload, systems, args, log)
    finally:
        systems.clear()
        gc.collect()


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
        for threads in args.threads:
            log(f"[{workload.name}] {config.name}, {threads} threads: {config.sentences} sentences, "
                f"{len(batches)} batches; warm-up on {min(len(batches), args.warmup_batches)}")
            timings = time_rounds(systems, prepared, threads, args.warmup_batches, args.repeats, log)
            rows += config_rows(workload, config, threads, timings, order, tokenizer)
    return rows


def time_rounds(systems: dict[str, System], prepared: dict, threads: int, warmup_batches: int, repeats: int,
                log) -> Timings:
    """One untimed warm-up per system, then ``repeats`` rounds in which every system runs once."""
    for name, system in systems.items():  # warm-up: excluded from every number
        system.open(threads)
        system.run(prepared[name][:warmup_batches])
        system.close()
    names = list(systems)
    timings = Timings({n: [] for n in names}, {n: [] for n in names}, {n: 0 for n in names})
    load_before = os.getloadavg()[0]
    for round_index in range(repeats):
        rotation = names[round_index % len(names):] + names[: round_index % len(names)]
        for name in rotation:
            system = systems[name]
            system.open(threads)
            gc.collect()
            reset_peak()
            before = rss()
            wall, proc = time.perf_counter(), time.process_time()
            raw = system.run(prepared[name])
            timings.seconds[name].append(time.perf_counter() - wall)
            timings.cpu_seconds[name].append(time.process_time() - proc)
            timings.run_peak[name] = max(timings.run_peak[name], peak() - before)
            system.close()
            if name not in timings.outputs:
                timings.outputs[name] = system.tokens(raw)
            del raw
        log(f"  round {round_index + 1}/{repeats}: "
            + ", ".join(f"{n} {timings.seconds[n][-1]:.2f}s" for n in names))
    timings.loadavg = (load_before, os.getloadavg()[0])
    return timings


def config_rows(workload: Workload, config: RunConfig, threads: int, timings: Timings, order: list[int],
                tokenizer) -> list[dict]:
    """One row per system: speed, the ratios to its peers in the same run, agreement, BLEU, memory."""
    medians = {name: statistics.median(times) for name, times in timings.seconds.items()}
    limit = config.fixed_length or config.max_len_b
    base = timings.outputs.get(BASELINE)
    rows = []
    for name, seconds in medians.items():
        toks = timings.outputs[name]
        n_tokens = sum(len(t) for t in toks)
        row = {
            "workload": workload.name, "config": config.name, "beam": config.beam,
            "batch_size": config.batch_size, "sentences": config.sentences, "threads": threads, "system": name,
            "seconds_median": round(seconds, 3), "seconds_all": [round(t, 3) for t in timings.seconds[name]],
            "cpu_seconds_median": round(statistics.median(timings.cpu_seconds[name]), 3),
            "sentences_per_s": round(config.sentences / seconds, 2),
            "target_tokens": n_tokens, "target_tokens_per_s": round(n_tokens / seconds, 1),
            "speed_vs_transformers": _ratio(medians.get("transformers"), seconds),
            "speed_vs_ct2": _ratio(medians.get(CT2), seconds),
            "fsmt_port_speedup": _ratio(seconds, medians.get(BASELINE)),
            "run_peak_rss_mb": round(timings.run_peak[name] / 2**20, 1),
            "loadavg_before_after": [round(value, 2) for value in timings.loadavg],
        }
        if base is not None:
            same = sum(_comparable(a, limit) == _comparable(b, limit) for a, b in zip(toks, base))
            row["top1_same_as_fsmt_port"] = f"{same}/{len(toks)}"
        if config.sentences == len(workload.ids) and (workload.golden or workload.reference):
            texts: list[str] = [""] * len(toks)
            for index, hyp in zip(order, toks):
                texts[index] = tokenizer.decode(hyp)
            if workload.golden is not None and config.beam == 5 and len(workload.golden) == len(texts):
                row["top1_same_as_fairseq"] = f"{sum(a == b for a, b in zip(texts, workload.golden))}/{len(texts)}"
            if workload.reference is not None and len(workload.reference) == len(texts):
                row["bleu"] = _bleu(texts, workload.reference)
        rows.append(row)
    return rows


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return round(numerator / denominator, 3) if numerator and denominator else None


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
