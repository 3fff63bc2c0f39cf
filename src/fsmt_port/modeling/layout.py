"""Memory layout of the output projection's weight for CPU inference.

``F.linear`` computes ``x @ W.T``. With ``W`` stored (out, in) row-major, as every file has it,
MKL runs its transposed-B GEMM; with ``W.T`` contiguous (``W`` column-major) it runs the plain
one, 10-40 % faster when a side of ``W`` is at most 512 (``benchmarks/gemm_shapes.py``), and
3-17 % slower on transformer-big's 1024-wide layers at 160 rows.

Only the output projection (d_model -> vocabulary, the largest GEMM of a decoding step) is
relaid, and only for d_model <= ``COLUMN_MAJOR_MAX_IN``: every other layer keeps fairseq's own
kernel. Relaying all of small-en-de's layers was 9 % faster at 1 thread (3-7 % at 2), but the
other summation order, compounded through the layers, moved teacher-forced log-probs 1.14e-5
from fairseq's at 1 thread, over the 1e-5 parity bound; the output projection alone leaves
them where they were (9.5e-6) and gives 2-5 %.
"""

from __future__ import annotations

from torch import nn

from fsmt_port.modeling.linear import COLUMN_MAJOR_MAX_IN  # one threshold for both column-major uses

__all__ = ["COLUMN_MAJOR_MAX_IN", "relayout_output_projection"]


def relayout_output_projection(decoder: nn.Module) -> None:
    """Make ``decoder.output_projection.weight`` column-major when its input side is small enough.

    Tied to the token embedding (fairseq's shared output projection), the projection gets its own
    column-major copy of the same values: the embedding lookup reads rows (column-major rows are
    10-40x slower to gather), the GEMM reads columns. V x d_model more floats: 6 MB for small-en-de.
    """
    projection = decoder.output_projection
    weight = projection.weight
    if not weight.is_floating_point() or weight.size(1) > COLUMN_MAJOR_MAX_IN or weight.t().is_contiguous():
        return
    relaid = weight.detach().t().contiguous().t()
    if weight is decoder.embed_tokens.weight:
        projection.weight = nn.Parameter(relaid, requires_grad=weight.requires_grad)
    else:
        weight.data = relaid
