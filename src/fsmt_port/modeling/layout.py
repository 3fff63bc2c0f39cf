"""Memory layout of the Linear weights for CPU inference, chosen per shape.

``F.linear`` computes ``x @ W.T``. With ``W`` stored (out, in) row-major, as every file
has it, MKL runs its transposed-B GEMM; with ``W.T`` contiguous (``W`` column-major) it
runs the plain one. Measured on this project's AVX-512 Xeon, 1 thread (``benchmarks/RESULTS.md``):
the plain GEMM is 1.1-1.9x faster whenever a side of the weight is at most 512 (every layer
of a d_model 256/512 model, at 1-160 rows), but 3-17 % slower on transformer-big's 1024-wide
layers at 160 rows. So only layers with a side <= ``COLUMN_MAJOR_MAX_SIDE`` are relaid; the
others keep the file's (memory-mapped) tensors. Values are unchanged; only which MKL
kernel runs, i.e. the order of float sums, differs (parity tests hold).
"""

from __future__ import annotations

from torch import nn

COLUMN_MAJOR_MAX_SIDE = 512


def wants_column_major(linear: nn.Linear) -> bool:
    weight = linear.weight
    return weight.dim() == 2 and weight.is_floating_point() and min(weight.shape) <= COLUMN_MAJOR_MAX_SIDE


def relayout_linears(module: nn.Module) -> None:
    """Make the weights of the Linear layers that run faster column-major column-major, in place.

    A Linear whose weight is tied to an embedding (fairseq's shared output projection) gets its own
    column-major copy of the same values: the embedding lookup reads rows (column-major rows are
    10-40x slower to gather), the GEMM reads columns.
    """
    embedded = {id(m.weight) for m in module.modules() if isinstance(m, nn.Embedding)}
    for linear in module.modules():
        if not isinstance(linear, nn.Linear) or not wants_column_major(linear):
            continue
        weight = linear.weight
        if weight.t().is_contiguous():
            continue
        relaid = weight.detach().t().contiguous().t()
        if id(weight) in embedded:
            linear.weight = nn.Parameter(relaid, requires_grad=weight.requires_grad)
        else:
            weight.data = relaid
