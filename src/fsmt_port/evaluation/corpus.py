"""Lines in, detokenized best hypotheses out: sharded over ranks, OOM-safe, timed."""

from __future__ import annotations

import time
from dataclasses import dataclass

from fsmt_port.cli import progress_bar
from fsmt_port.translation.translator import Translator
from fsmt_port.translation.distributed import DistContext
from fsmt_port.evaluation.oom import generate_with_oom_retry


@dataclass(frozen=True)
class CorpusRun:
    hypotheses: list[str]  # best hypothesis per input line, in input order (on every rank)
    seconds: float  # wall time of encode + generate + decode + gather


def translate_corpus(translator: Translator, lines: list[str], context: DistContext, *,
                     batch_size: int | None = None, max_tokens: int | None = None, truncate: bool = False,
                     quiet: bool = False, desc: str = "translating", **generation_kwargs) -> CorpusRun:
    start = time.perf_counter()

    def work(shard: list[str], first: int) -> list[str]:
        ids = translator.encode(shard, truncate=truncate, first_line=first + 1)
        with progress_bar(len(shard), quiet or not context.is_main, desc) as bar:
            hypos = generate_with_oom_retry(translator, ids, batch_size, max_tokens, progress=bar,
                                            **generation_kwargs)
        return [translator.tokenizer.decode(h[0].tokens.tolist()) for h in hypos]

    hypotheses = context.run_sharded(lines, work)
    return CorpusRun(hypotheses, time.perf_counter() - start)
