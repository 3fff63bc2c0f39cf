"""Left padding: fairseq batches sources padded on the left (``left_pad_source=True``), so the
tokenizer's batches and the translator's batches both put ``<pad>`` before the tokens."""

from __future__ import annotations

from collections.abc import Sequence


def left_pad(rows: Sequence[Sequence[int]], value: int) -> list[list[int]]:
    """Every row widened to the longest one by ``value`` on the left."""
    width = max((len(r) for r in rows), default=0)
    return [[value] * (width - len(r)) + list(r) for r in rows]
