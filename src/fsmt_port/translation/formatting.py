"""Translations as output lines: text (best hypotheses) or jsonl (one object per input)."""

from __future__ import annotations

import json
from typing import Iterable, Iterator

from fsmt_port.translation.translator import Translation

FORMATS = ("text", "jsonl")

# Sources may hold U+0085/U+2028/U+2029, which json.dumps leaves raw but str.splitlines() (and old
# JavaScript) treat as line breaks: escape them so each jsonl record is one line for every reader.
_LINE_BREAKS_INSIDE_JSON = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def format_lines(results: Iterable[Translation], fmt: str, nbest: int | None) -> Iterator[str]:
    """text: the best hypothesis per line (``nbest`` lines per input when given; an empty line when
    there is none); jsonl: one object per input.

    Yields one output line at a time (with its newline), so a window's jsonl never exists twice in memory.
    """
    for result in results:
        if fmt == "jsonl":
            yield json.dumps(result.to_json(), ensure_ascii=False).translate(_LINE_BREAKS_INSIDE_JSON) + "\n"
        elif not result.hypotheses:  # constrained decoding can finish none: keep one line per input
            yield "\n"
        else:
            for h in result.hypotheses[: nbest or 1]:
                yield h.text + "\n"


def kept_hypotheses(fmt: str, nbest: int | None) -> int | None:
    """How many hypotheses per input to keep in memory: text prints ``nbest`` (default 1); jsonl all or ``nbest``."""
    return (nbest or 1) if fmt == "text" else nbest
