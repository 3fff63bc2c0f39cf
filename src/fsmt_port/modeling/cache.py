"""The decoder's incremental state: one design, used by every decoding path.

* Self-attention keys/values of every layer live in ONE time-major buffer
  ``(capacity, rows, 2 * layers, dim)``: a step writes its slot ``t`` in place,
  and attention reads ``buf[:length, :, 2l]`` / ``buf[:length, :, 2l + 1]`` as
  strided ``(rows, heads, length, head_dim)`` views (no copies).
* ``reorder`` (beam reselection, finished sentences leaving the batch) gathers
  the rows of the surviving hypotheses with ONE ``index_select`` over the
  filled prefix ``[:length]`` only, into a preallocated spare buffer; the two
  buffers then swap roles (ping-pong). Capacity grows in chunks of ``CHUNK``
  steps as part of that gather, so steady-state decoding allocates nothing and
  copies each cached value once per step, which is the least a per-row cache
  can do. An identity reorder (greedy search, or beams that kept their order)
  copies nothing.
* Cross-attention keys/values: one row per *sentence*, computed once from the
  encoder output, shared by that sentence's hypotheses; they only shrink when
  sentences finish.
* Storage reuse: a cache takes its buffers from, and ``release`` gives them back to, a
  ``StoragePool`` its decoder owns. The buffers of a transformer-big beam search are far
  above glibc's 32 MiB mmap threshold, so without reuse every ``generate`` gets fresh
  pages from the kernel and pays a page fault and a page clearing on each first write
  (9.6 s -> 8.9 s on the 32-sentence big-shape run, ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import threading

import torch


class StoragePool:
    """A decoder's spare cache storages, kept between ``generate`` calls (at most ``KEEP``, the largest).

    Memory it holds stays with the process until ``clear``; each storage is handed to one cache at
    a time, so concurrent generates on one model never share one.
    """

    KEEP = 2

    def __init__(self) -> None:
        self._free: list[torch.Tensor] = []
        self._lock = threading.Lock()

    def take(self, like: torch.Tensor, numel: int) -> torch.Tensor:
        """A 1-D storage of at least ``numel`` elements of ``like``'s dtype and device."""
        with self._lock:
            for index, storage in enumerate(self._free):
                if storage.numel() >= numel and storage.dtype == like.dtype and storage.device == like.device:
                    return self._free.pop(index)
        return like.new_empty(numel)

    def give(self, *storages: torch.Tensor | None) -> None:
        with self._lock:
            self._free.extend(s for s in storages if s is not None)
            self._free.sort(key=lambda s: s.numel(), reverse=True)
            del self._free[self.KEEP:]

    def clear(self) -> None:
        with self._lock:
            self._free.clear()


class DecoderCache:
    CHUNK = 16

    def __init__(self, memory_k: list[torch.Tensor], memory_v: list[torch.Tensor],
                 memory_mask: torch.Tensor | None, layers: int | None = None, pool: StoragePool | None = None) -> None:
        self.memory_k = memory_k  # per layer: (sentences, H, S, hd); empty for a language model
        self.memory_v = memory_v
        self.memory_mask = memory_mask  # additive (sentences, 1, 1, S), -inf at padding; None = no padding
        self.layers = len(memory_k) if layers is None else layers
        self.record_attention = False  # keep the last layer's encoder attention (alignments)
        self.attention: torch.Tensor | None = None  # (rows, T, S), mean over heads, when recorded
        self.length = 0  # target positions already cached
        self._buf: torch.Tensor | None = None  # (capacity, rows, 2 * layers, dim): a prefix of _storage
        self._storage: torch.Tensor | None = None  # 1-D
        self._spare: torch.Tensor | None = None  # 1-D storage the next reorder gathers into
        self._pool = pool or StoragePool()

    def append_self(self, layer: int, kv: torch.Tensor, heads: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Store this call's keys/values ``kv`` (rows, T, 2 * dim), [k | v]; return all cached keys and
        values of ``layer`` as (rows, heads, length + T, head_dim) views."""
        rows, steps, width = kv.shape
        dim = width // 2
        end = self.length + steps
        if self._buf is None or self._buf.size(0) < end:
            self._grow(kv, end)
        buf = self._buf
        buf[self.length: end, :, 2 * layer: 2 * layer + 2] = kv.view(rows, steps, 2, dim).transpose(0, 1)
        k = buf[:end, :, 2 * layer].view(end, rows, heads, dim // heads).permute(1, 2, 0, 3)
        v = buf[:end, :, 2 * layer + 1].view(end, rows, heads, dim // heads).permute(1, 2, 0, 3)
        return k, v

    def _capacity(self, steps: int) -> int:
        return -(-steps // self.CHUNK) * self.CHUNK

    def _grow(self, like: torch.Tensor, end: int) -> None:
        rows, _, width = like.shape
        numel = self._capacity(end) * rows * 2 * self.layers * (width // 2)
        storage = self._pool.take(like, numel)
        grown = storage[:numel].view(self._capacity(end), rows, 2 * self.layers, width // 2)
        if self._buf is not None:
            grown[: self.length] = self._buf[: self.length]
        self._pool.give(self._storage)
        self._buf, self._storage = grown, storage

    def advance(self, steps: int) -> None:
        self.length += steps

    def reorder(self, rows: torch.Tensor, sentences: torch.Tensor | None = None) -> None:
        """Keep hypothesis rows ``rows`` (in that order) and, if given, sentences ``sentences``."""
        if sentences is not None:
            self.memory_k = [k.index_select(0, sentences) for k in self.memory_k]
            self.memory_v = [v.index_select(0, sentences) for v in self.memory_v]
            if self.memory_mask is not None:
                self.memory_mask = self.memory_mask.index_select(0, sentences)
        buf = self._buf
        if buf is None or self.length == 0:
            return
        if rows.numel() == buf.size(1) and torch.equal(rows, torch.arange(rows.numel(), device=rows.device)):
            return
        # Gather the filled prefix into the spare storage, with room for the next step.
        shape = (self._capacity(self.length + 1), rows.numel(), *buf.shape[2:])
        numel = shape[0] * shape[1] * shape[2] * shape[3]
        if self._spare is None or self._spare.numel() < numel:
            self._pool.give(self._spare)
            self._spare = self._pool.take(buf, numel)
        target = self._spare[:numel].view(shape)
        # One row-gather over the flattened (time x row) axis: each copied unit is a whole
        # (2 * layers * dim) slab, about 2x faster than ``index_select`` along dim 1.
        steps, old_rows = self.length, buf.size(1)
        flat_rows = (torch.arange(steps, device=rows.device).unsqueeze(1) * old_rows + rows).view(-1)
        torch.index_select(buf[:steps].view(steps * old_rows, -1), 0, flat_rows,
                           out=target[:steps].view(steps * rows.numel(), -1))
        self._buf, self._storage, self._spare = target, self._spare, self._storage

    def release(self) -> None:
        """Give the buffers back to the decoder's pool; the cache is empty afterwards."""
        self._pool.give(self._storage, self._spare)
        self._buf = self._storage = self._spare = None
        self.length = 0
