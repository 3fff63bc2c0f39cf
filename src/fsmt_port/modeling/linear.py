"""fp32 Linear layers on the faster of the two GEMM libraries torch ships for x86 CPUs.

torch's fp32 ``F.linear`` calls MKL. On Intel CPUs that is the fastest kernel, and fairseq's own.
On other x86 CPUs (AMD) MKL takes a generic path: on an AMD EPYC with AVX-512, oneDNN's matmul
on a weight pre-packed into its blocked layout was 1.1-3.8× faster on small-en-de's shapes where it
is chosen and 1.0-7.6× on transformer-big's, 1 to 160 rows, 1 and 2 threads
(``benchmarks/gemm_shapes.py``, ``benchmarks/RESULTS.md``); CTranslate2 makes the same choice
(MKL on Intel, oneDNN elsewhere). The summation order differs from MKL's by float rounding only:
the parity tests (teacher-forced log-probs within 1e-5 of fairseq, identical beams) pass on both.

Tiny GEMMs stay on MKL: below ``ONEDNN_MIN_WORK`` multiply-adds oneDNN's call overhead
(~10 µs) outweighs its kernel. The packed copy is made on first use and kept beside the fp32
weight (the weight itself stays, for ``state_dict``, tied embeddings and tiny GEMMs): the
weights' memory doubles on such hosts. ``FSMT_PORT_GEMM=mkl`` turns this off, ``=onednn`` forces
it on any x86 CPU, ``auto`` (the default) decides by CPU vendor.
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
#: a weight with fewer elements goes to oneDNN only for this many rows or more
ONEDNN_MIN_WEIGHT = 2**17
ONEDNN_MIN_ROWS_SMALL_WEIGHT = 128
#: rows x weight elements below which MKL's lower call overhead wins
ONEDNN_MIN_WORK = 2**19
#: the batch size oneDNN's weight layout is chosen for (32 sentences x beam 5)
PACKING_ROWS_HINT = 160
#: GEMMs taller than this run in blocks of this many rows (encoder outputs of big batches)
MAX_BLOCK_ROWS = 256


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


def prefers_onednn(rows: int, weight_elements: int) -> bool:
    """oneDNN for every GEMM but the tiny ones (measured on small-en-de's and transformer-big's shapes)."""
    if weight_elements < ONEDNN_MIN_WEIGHT:
        return rows >= ONEDNN_MIN_ROWS_SMALL_WEIGHT
    return rows * weight_elements >= ONEDNN_MIN_WORK


class _Packed:
    """A weight in oneDNN's blocked layout, valid while the weight is the same tensor, storage and version."""

    __slots__ = ("source", "version", "data_ptr", "packed")

    def __init__(self, weight: torch.Tensor) -> None:
        self.source = weakref.ref(weight)
        self.version, self.data_ptr = weight._version, weight.data_ptr()
        self.packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), PACKING_ROWS_HINT)

    def matches(self, weight: torch.Tensor) -> bool:
        return self.source() is weight and self.version == weight._version and self.data_ptr == weight.data_ptr()


#: per module, outside its __dict__: deepcopy, pickling and state_dict never see the packed copy
_PACKED: weakref.WeakKeyDictionary[nn.Module, _Packed] = weakref.WeakKeyDictionary()


def bucket_rows(rows: int) -> int:
    """The GEMM height a block of ``rows`` (<= ``MAX_BLOCK_ROWS``) is padded to: exact up to 16, then multiples of 16."""
    return rows if rows <= 16 else -(-rows // 16) * 16


def onednn_linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None, out_features: int) -> torch.Tensor:
    """``x @ W.T + b`` on oneDNN in blocks of at most ``MAX_BLOCK_ROWS`` rows, each padded to ``bucket_rows``.

    oneDNN compiles and caches a kernel per GEMM height (~0.5 MB each, up to 1024 of them): with the
    heights beam search produces, translating 6000 lines grew the process by 130 MB more than MKL did.
    Padding to at most 31 heights per weight shape bounds that; the padded rows cost < 16 rows of work.
    """
    rows = x.reshape(-1, x.size(-1)).contiguous()
    blocks = []
    for block in rows.split(MAX_BLOCK_ROWS):
        height = block.size(0)
        padded = bucket_rows(height)
        if padded != height:
            block = F.pad(block, (0, 0, 0, padded - height))
        blocks.append(torch.ops.mkldnn._linear_pointwise(block, packed, bias, "none", [], "")[:height])
    out = blocks[0] if len(blocks) == 1 else torch.cat(blocks)
    return out.view(*x.shape[:-1], out_features)


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters, same state_dict) whose CPU fp32 inference may run on oneDNN."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight
        if (x.dtype == torch.float32 and weight.dtype == torch.float32 and x.device.type == "cpu"
                and not (torch.is_grad_enabled() and (weight.requires_grad or x.requires_grad))
                and onednn_gemm_enabled() and prefers_onednn(x.numel() // self.in_features, weight.numel())):
            packed = _PACKED.get(self)
            if packed is None or not packed.matches(weight):
                packed = _PACKED[self] = _Packed(weight)
            return onednn_linear(x, packed.packed, self.bias, self.out_features)
        return F.linear(x, weight, self.bias)
