"""The decoder's incremental state: one design, used by every decoding path.

* Self-attention keys/values: one row per hypothesis, in buffers that grow by
  chunks of ``CHUNK`` steps; each step writes its new key/value in place.
  ``reorder`` picks the rows of the surviving hypotheses (beam reselection and
  finished sentences leaving the batch) with one ``index_select`` per buffer.
* Cross-attention keys/values: one row per *sentence*, computed once from the
  encoder output, shared by that sentence's hypotheses; they only shrink when
  sentences finish.
"""

from __future__ import annotations

import torch


class DecoderCache:
    CHUNK = 16

    def __init__(self, memory_k: list[torch.Tensor], memory_v: list[torch.Tensor],
                 memory_mask: torch.Tensor | None, group: int) -> None:
        self.memory_k = memory_k  # per layer: (sentences, H, S, hd)
        self.memory_v = memory_v
        self.memory_mask = memory_mask  # (sentences, 1, 1, S) bool, True = attend; None = no padding
        self.group = group  # hypotheses (rows) per sentence
        self.self_k: list[torch.Tensor | None] = [None] * len(memory_k)
        self.self_v: list[torch.Tensor | None] = [None] * len(memory_k)
        self.length = 0  # target positions already cached

    def append_self(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store this step's (rows, H, T, hd) keys/values; return all cached so far."""
        start, end = self.length, self.length + k.size(2)
        self.self_k[layer] = buf_k = self._ensure(self.self_k[layer], k, end)
        self.self_v[layer] = buf_v = self._ensure(self.self_v[layer], v, end)
        buf_k[:, :, start:end] = k
        buf_v[:, :, start:end] = v
        return buf_k[:, :, :end], buf_v[:, :, :end]

    def _ensure(self, buf: torch.Tensor | None, like: torch.Tensor, end: int) -> torch.Tensor:
        if buf is not None and buf.size(2) >= end:
            return buf
        capacity = -(-end // self.CHUNK) * self.CHUNK
        rows, heads, _, head_dim = like.shape
        grown = like.new_empty(rows, heads, capacity, head_dim)
        if buf is not None:
            grown[:, :, : self.length] = buf[:, :, : self.length]
        return grown

    def advance(self, steps: int) -> None:
        self.length += steps

    def reorder(self, rows: torch.Tensor, sentences: torch.Tensor | None = None) -> None:
        """Keep hypothesis rows ``rows`` (in that order) and, if given, sentences ``sentences``."""
        for cache in (self.self_k, self.self_v):
            for layer, buf in enumerate(cache):
                if buf is not None:
                    cache[layer] = buf.index_select(0, rows)
        if sentences is not None:
            self.memory_k = [k.index_select(0, sentences) for k in self.memory_k]
            self.memory_v = [v.index_select(0, sentences) for v in self.memory_v]
            if self.memory_mask is not None:
                self.memory_mask = self.memory_mask.index_select(0, sentences)
