"""``--quantize int8``: every Linear as an int8 x int8 GEMM, CTranslate2's int8 scheme.

Weights are quantized once, symmetrically per output row; activations per call, symmetrically
per row (token): ``y = (round(x / s_x) @ round(W / s_w).T) * s_x * s_w + b``, the int32
product from ``torch._int_mm`` (oneDNN's int8 GEMM on x86, VNNI where the CPU has it). These
are plain int8 tensors and core ops: PyTorch's quantized-tensor stack (its eager dynamic
quantization, per-channel quantized tensors, fbgemm's dynamic linear op) is deprecated and
warns, and torchao's eager int8 configs run slower than fp32 on CPU without ``torch.compile``
and print warnings on import (measured: ``benchmarks/RESULTS.md``).

Per-row scales on both sides keep top-1 agreement with fp32 at CTranslate2 int8's level:
918/1000 on small-en-de, where the deprecated path's per-tensor scales reached 848.
"""

from __future__ import annotations

import torch
from torch import nn

_TINY = torch.finfo(torch.float32).tiny


def quantize_rows(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(R, C) float -> int8 values and float32 scales (R, 1), symmetric per row: |q| <= 127."""
    # abs().amax(): 12 us at 160 x 256 where vector_norm(ord=inf) takes 150 us
    scales = matrix.abs().amax(dim=-1, keepdim=True).clamp_(min=_TINY).div_(127)
    return torch.div(matrix, scales).round_().to(torch.int8), scales


class Int8Linear(nn.Module):
    """A Linear computing ``x @ W.T + b`` from int8 W (per output row) and int8 x (per row, per call)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        qweight, scales = quantize_rows(linear.weight.detach().to(torch.float32))
        self.register_buffer("weight_t", qweight.t().contiguous())  # (in, out): the GEMM's plain layout
        self.register_buffer("weight_scale", scales.view(-1))
        bias = None if linear.bias is None else linear.bias.detach().to(torch.float32)
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        qx, x_scale = quantize_rows(rows)
        # int32 -> float32 first: a mixed-dtype broadcast multiply is ~2x slower than the cast plus mul_
        out = torch._int_mm(qx, self.weight_t).to(torch.float32).mul_(x_scale)
        if self.bias is None:
            out.mul_(self.weight_scale)
        else:
            out = torch.addcmul(self.bias, out, self.weight_scale)
        return out.view(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


def quantize_int8(model: nn.Module) -> nn.Module:
    """Replace every ``nn.Linear`` of an fp32 CPU model by an ``Int8Linear``, in place; returns it."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Linear):
                setattr(module, name, Int8Linear(child))
    return model
