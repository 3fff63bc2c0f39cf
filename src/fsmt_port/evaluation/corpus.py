"""Lines in, detokenized best hypotheses out: sharded over ranks, OOM-safe, timed."""

from __future__ import annotations

import time
from dataclasses import dataclass

from fsmt_port.cli import progress_bar
from fsmt_port.translation.translator import Translator, encode_constraints, encode_prefixes
from fsmt_port.evaluation.distributed import DistContext
from fsmt_port.evaluation.oom import generate_with_oom_retry


@dataclass(frozen=True)
class CorpusRun:
    hypotheses: list[str]  # best hypothesis per input line, in input order (on every rank)
    seconds: float  # wall time of encode + generate + decode + gather


def translate_corpus(translator: Translator, lines: list[str], context: DistContext, *,
                     batch_size: int | None = None, max_tokens: int | None = None, truncate: bool = False,
                     quiet: bool = False, desc: str = "translating", prefixes: list[str] | None = None,
                     prefix_size: int | None = None, constraint_texts: list[list[str]] | None = None,
                     **generation_kwargs) -> CorpusRun:
    """``prefixes``/``constraint_texts``: per line, as ``Translator.translate`` takes them. A line
    without a hypothesis (constraints unmet at max_len) gives an empty translation."""
    start = time.perf_counter()

    def work(shard: list[int], first: int) -> list[str]:
        ids = translator.encode([lines[i] for i in shard], truncate=truncate, first_line=first + 1)
        per_input = {}
        if prefixes is not None:
            per_input["prefix_tokens"] = encode_prefixes(translator.tokenizer, [prefixes[i] for i in shard],
                                                         prefix_size)
        if constraint_texts is not None:
            per_input["constraint_ids"] = encode_constraints(translator.tokenizer, [constraint_texts[i] for i in shard])
        with progress_bar(len(shard), quiet or not context.is_main, desc) as bar:
            hypos = generate_with_oom_retry(translator, ids, batch_size, max_tokens, progress=bar,
                                            **per_input, **generation_kwargs)
        return [translator.tokenizer.decode(h[0].tokens.tolist()) if h else "" for h in hypos]

    hypotheses = context.run_sharded(list(range(len(lines))), work)
    return CorpusRun(hypotheses, time.perf_counter() - start)
