"""fp32 Linear layers on the fastest of the GEMM kernels torch ships for x86 CPUs.

torch's fp32 ``F.linear`` calls MKL. On Intel CPUs that is the fastest kernel, and fairseq's own.
On other x86 CPUs (AMD) MKL takes a generic path and CTranslate2 uses oneDNN instead; so does this
module there, on weights pre-packed into oneDNN's blocked layout, except for one-row calls
(batch-1 greedy decoding), where MKL's GEMV wins: on the weight as stored when it is wider than
tall (fc2), on a column-major copy otherwise (layers at most ``COLUMN_MAJOR_MAX_IN`` wide).

The choice comes from ``benchmarks/gemm_shapes.py --cold`` (``benchmarks/RESULTS.md``), which
streams the weights from memory as a decoding step does: with a weight reused from cache, MKL's
lower call overhead makes it look best on every small shape at few rows, which is not what a
decoder meets. Summation orders differ from MKL's row-major kernel by float rounding only: the
parity tests (teacher-forced log-probs within 1e-5 of fairseq, identical beams) pass on both.

The packed and column-major copies are made on first use and kept beside the fp32 weight (the
weight itself stays, for ``state_dict`` and tied embeddings): the weights' memory doubles on
such hosts. ``FSMT_PORT_GEMM=mkl`` turns this off, ``=onednn`` forces it on any x86 CPU,
``auto`` (the default) decides by CPU vendor.
"""

from __future__ import annotations

import functools
import os
import platform
import weakref
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fsmt_port.errors import ConfigError

GEMM_ENV = "FSMT_PORT_GEMM"
GEMM_CHOICES = ("auto", "mkl", "onednn")
#: one-row calls on layers at most this wide use MKL on a column-major copy (a few MB each)
COLUMN_MAJOR_MAX_IN = 512
#: the batch size oneDNN's weight layout is chosen for (32 sentences x beam 5)
PACKING_ROWS_HINT = 160
#: GEMMs taller than this run in blocks of this many rows (encoder outputs of big batches)
MAX_BLOCK_ROWS = 1024
#: oneDNN heights above this are padded to a multiple of it ...
ROW_BUCKET = 16
#: ... and heights above this (beam search over batches of 128: 640 rows) to a multiple of ``TALL_ROW_BUCKET``
TALL_ROWS = 256
TALL_ROW_BUCKET = 64


def cpu_vendor() -> str:
    """``GenuineIntel``, ``AuthenticAMD``, ... from /proc/cpuinfo (Linux) or the platform string; "" if unknown."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("vendor_id"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    processor = platform.processor()
    return next((v for v in ("GenuineIntel", "AuthenticAMD") if v in processor), "")


@functools.cache
def onednn_gemm_enabled() -> bool:
    """Whether fp32 Linears use oneDNN: ``FSMT_PORT_GEMM``, or by default on x86 CPUs not made by Intel."""
    choice = os.environ.get(GEMM_ENV, "auto").strip().lower() or "auto"
    if choice not in GEMM_CHOICES:
        raise ConfigError(f"environment variable {GEMM_ENV}={os.environ[GEMM_ENV]!r} is not one of "
                          f"{', '.join(GEMM_CHOICES)}; unset it or pick one")
    x86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
    if choice == "mkl" or not x86 or not torch.backends.mkldnn.is_available():
        return False
    return choice == "onednn" or cpu_vendor() not in ("GenuineIntel", "")


def mkl_layout(rows: int, in_features: int, out_features: int) -> str | None:
    """Where MKL beats packed oneDNN, the weight layout it runs on ("row"/"column"); None: oneDNN.

    One row is a GEMV bound by streaming the weight: MKL's is 1.1-2x faster than oneDNN's on
    small-en-de's and transformer-big's shapes, on the weight as stored when it is wider than tall,
    column-major otherwise (copies only up to ``COLUMN_MAJOR_MAX_IN`` wide, to bound their memory).
    From two rows on, packed oneDNN beats or ties MKL on the weight as stored.
    """
    if rows == 0:  # nothing to compute: the plain path
        return "row"
    if rows != 1:
        return None
    if in_features > out_features:
        return "row"
    return "column" if in_features <= COLUMN_MAJOR_MAX_IN else None


def _version(weight: torch.Tensor) -> int | None:
    """The in-place edit counter; None for a model built under ``torch.inference_mode``, whose tensors
    keep none (such weights are taken as never edited in place)."""
    return None if weight.is_inference() else weight._version


class _DerivedWeight:
    """A copy of a weight in another layout, valid while the weight is the same tensor, storage and version."""

    __slots__ = ("source", "version", "data_ptr", "value")

    def __init__(self, weight: torch.Tensor, make) -> None:
        self.source = weakref.ref(weight)
        self.version, self.data_ptr = _version(weight), weight.data_ptr()
        self.value = make(weight)

    def matches(self, weight: torch.Tensor) -> bool:
        return self.source() is weight and self.version == _version(weight) and self.data_ptr == weight.data_ptr()


def bucket_rows(rows: int) -> int:
    """The GEMM height a block of ``rows`` (<= ``MAX_BLOCK_ROWS``) is padded to: exact up to ``ROW_BUCKET``,
    then multiples of it up to ``TALL_ROWS``, then of ``TALL_ROW_BUCKET`` (at most 43 heights per weight shape)."""
    if rows <= ROW_BUCKET:
        return rows
    step = ROW_BUCKET if rows <= TALL_ROWS else TALL_ROW_BUCKET
    return -(-rows // step) * step


def onednn_linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None, out_features: int) -> torch.Tensor:
    """``x @ W.T + b`` on oneDNN in blocks of at most ``MAX_BLOCK_ROWS`` rows, each padded to ``bucket_rows``.

    oneDNN compiles and caches a kernel per GEMM height (~0.6 MB each, up to 1024 of them): with the
    heights beam search produces, translating 6000 lines grew the process by 130 MB more than MKL did.
    Padding bounds the heights per weight shape; the padded rows cost < ``ROW_BUCKET`` rows of work
    (< ``TALL_ROW_BUCKET`` above ``TALL_ROWS``). Beam 5 over 128 sentences (640 rows) is one call: in
    blocks of 256 rows plus ``torch.cat`` it was 5-9 % slower end to end (``benchmarks/RESULTS.md``).
    """
    rows = x.reshape(-1, x.size(-1)).contiguous()
    height = rows.size(0)
    if height <= MAX_BLOCK_ROWS and bucket_rows(height) == height:  # the common case: one call, no copies
        out = torch.ops.mkldnn._linear_pointwise(rows, packed, bias, "none", [], "")
        return out.view(*x.shape[:-1], out_features)
    blocks = []
    for block in rows.split(MAX_BLOCK_ROWS):
        height = block.size(0)
        padded = bucket_rows(height)
        if padded != height:
            block = F.pad(block, (0, 0, 0, padded - height))
        blocks.append(torch.ops.mkldnn._linear_pointwise(block, packed, bias, "none", [], "")[:height])
    out = blocks[0] if len(blocks) == 1 else torch.cat(blocks)
    return out.view(*x.shape[:-1], out_features)


_FLOAT32 = torch.float32

#: per module, outside its __dict__: deepcopy, pickling and state_dict never see these copies
_PACKED: weakref.WeakKeyDictionary[nn.Module, _DerivedWeight] = weakref.WeakKeyDictionary()
_COLUMN_MAJOR: weakref.WeakKeyDictionary[nn.Module, _DerivedWeight] = weakref.WeakKeyDictionary()


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters, same state_dict) whose CPU fp32 inference may run on oneDNN."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # called ~40 times per decoding step: each parameter read once, dtypes compared by identity
        weight, bias = self.weight, self.bias
        if (x.dtype is not _FLOAT32 or weight.dtype is not _FLOAT32 or not x.is_cpu or not onednn_gemm_enabled()
                or (torch.is_grad_enabled() and (weight.requires_grad or x.requires_grad))):
            return F.linear(x, weight, bias)
        layout = mkl_layout(x.numel() // self.in_features, self.in_features, self.out_features)
        if layout is None:
            return onednn_linear(x, _cached(_PACKED, self, weight, _pack), bias, self.out_features)
        if layout == "column" and weight.stride(0) != 1:  # not column-major already (layout.py)
            weight = _cached(_COLUMN_MAJOR, self, weight, _column_major)
        return F.linear(x, weight, bias)


def _pack(weight: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), PACKING_ROWS_HINT)


def _column_major(weight: torch.Tensor) -> torch.Tensor:
    return weight.detach().t().contiguous().t()


def _cached(cache: weakref.WeakKeyDictionary, module: nn.Module, weight: torch.Tensor, make) -> torch.Tensor:
    """``make(weight)``, computed once per module and again only when its weight changes."""
    entry = cache.get(module)
    if entry is None or not entry.matches(weight):
        entry = cache[module] = _DerivedWeight(weight, make)
    return entry.value
