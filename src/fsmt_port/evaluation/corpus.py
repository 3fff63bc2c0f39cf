"""Lines in, detokenized best hypotheses out: windows over ranks, committed to a file, OOM-safe, timed.

The same machinery as fsmt-translate (``translation.corpus``): rank r translates windows r, r+N, ...
into its own part files and rank 0 assembles the output file, so no collective carries the results.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from fsmt_port.translation.corpus import CorpusOptions, translate_lines
from fsmt_port.translation.distributed import DistContext
from fsmt_port.translation.translator import Translation, Translator, encode_constraints, encode_prefixes
from fsmt_port.translation.windows import Window
from fsmt_port.evaluation.oom import generate_with_oom_retry


@dataclass(frozen=True)
class CorpusRun:
    hypotheses: list[str]  # best hypothesis per input line, in input order (rank 0; empty on other ranks)
    seconds: float  # wall time of encode + generate + decode + write


def translate_corpus(translator: Translator, lines: list[str], context: DistContext, *, output_path: str | Path,
                     source: str, batch_size: int | None = None, max_tokens: int | None = None,
                     truncate: bool = False, quiet: bool = False, desc: str = "translating",
                     runtime: dict | None = None, prefixes: list[str] | None = None, prefix_size: int | None = None,
                     constraint_texts: list[list[str]] | None = None, **generation_kwargs) -> CorpusRun:
    """Translate ``lines`` into ``output_path`` (best hypothesis per line); an interrupted run with the
    same settings resumes, one with other settings starts over.

    ``prefixes``/``constraint_texts``: per line, as ``Translator.translate`` takes them. A line
    without a hypothesis (constraints unmet at max_len) gives an empty translation."""
    start = time.perf_counter()

    def work(window: Window, progress) -> list[Translation]:
        rows = range(window.first, window.first + len(window.lines))
        ids = translator.encode(window.lines, truncate=truncate, first_line=window.first + 1)
        per_input = {}
        if prefixes is not None:
            per_input["prefix_tokens"] = encode_prefixes(translator.tokenizer, [prefixes[i] for i in rows],
                                                         prefix_size)
        if constraint_texts is not None:
            per_input["constraint_ids"] = encode_constraints(translator.tokenizer,
                                                             [constraint_texts[i] for i in rows])
        hypos = generate_with_oom_retry(translator, ids, batch_size, max_tokens, progress=progress,
                                        **per_input, **generation_kwargs)
        return translator.decode_results(window.lines, [h[:1] for h in hypos], window.first)

    per_line_key = {"prefix_size": prefix_size, "prefixes": _digest(prefixes), "constraints": _digest(constraint_texts)}
    options = CorpusOptions(batch_size=batch_size, max_tokens=max_tokens, truncate=truncate, force=True,
                            restart_if_changed=True, quiet=quiet, desc=desc, generation=generation_kwargs,
                            runtime={**(runtime or {}), **per_line_key})
    translate_lines(translator, lines, str(output_path), options, source=source, total=len(lines), context=context,
                    translate_window=work)
    hypotheses = Path(output_path).read_bytes().decode("utf-8").split("\n")[:-1] if context.is_main else []
    return CorpusRun(hypotheses, time.perf_counter() - start)


def _digest(per_line: list | None) -> str | None:
    """Identity of per-line decoding inputs, for the resume key (a changed reference restarts the run)."""
    if per_line is None:
        return None
    return hashlib.sha256(json.dumps(per_line, ensure_ascii=False).encode("utf-8")).hexdigest()
