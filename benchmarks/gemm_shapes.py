"""Per-shape GEMM speed: which weight layout and which precision wins for each Linear shape.

    python benchmarks/gemm_shapes.py [--threads 1,2] [--rows 1,5,32,160] [--cold] [--models small,big]

For the Linear shapes of small-en-de (d_model 256) and transformer-big (1024), times
``F.linear`` with the file's row-major weight, with a column-major weight (what
``fsmt_port.modeling.layout`` gives the output projection when d_model <= 512), on oneDNN with a packed weight
(``fsmt_port.modeling.linear``'s choice off Intel CPUs), in bf16, and as ``Int8Linear``
(``--quantize int8``: activation quantization and dequantization included), and prints
one markdown table of microseconds per call. The choices documented in ``RESULTS.md``
come from this table.

``--cold`` times each call on the next of several copies of the weight, together larger than
the last-level cache, as a decoding step meets its weights (it streams every layer's weights
once per step); by default one weight is reused, which keeps it in cache and flatters the
small shapes' library-call overhead.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

#: (in, out, what it is)
SHAPES = [
    (256, 768, "small: fused q/k/v"),
    (256, 256, "small: attention out / q"),
    (256, 1024, "small: fc1"),
    (1024, 256, "small: fc2"),
    (256, 6048, "small: output projection"),
    (1024, 3072, "big: fused q/k/v"),
    (1024, 1024, "big: attention out / q"),
    (1024, 8192, "big: fc1"),
    (8192, 1024, "big: fc2"),
    (1024, 31232, "big: output projection"),
]


#: --cold: the weights' copies of one variant add up to at least this (above a server CPU's L3 share)
COLD_BYTES = 96 * 2**20
MAX_COPIES = 64


def seconds_per_call(fn, copies: int, budget: float = 0.3) -> float:
    """Median-free but warm: a few calls to warm up, then as many as fit in ``budget`` seconds;
    ``fn(i)`` uses copy ``i % copies`` of its weight."""
    for i in range(max(3, copies)):  # every copy once (cold: the first pass pages them in)
        fn(i % copies)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < budget or calls < 5:
        fn(calls % copies)
        calls += 1
    return (time.perf_counter() - start) / calls


def main(argv: list[str] | None = None) -> int:
    from fsmt_port.modeling.linear import PACKING_ROWS_HINT, onednn_linear
    from fsmt_port.modeling.quantization import Int8Linear

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rows", default="1,32,160", help="GEMM rows M (160 = 32 sentences x beam 5)")
    parser.add_argument("--cold", action="store_true", help="weights out of cache, as in a decoding step")
    parser.add_argument("--models", default="small,big", help="whose Linear shapes: small (d_model 256), big (1024)")
    args = parser.parse_args(argv)
    models = set(args.models.split(","))
    if not models or not models <= {"small", "big"}:
        parser.error(f"--models takes small and/or big, got {args.models!r}")
    print("| threads | shape (in → out) | layer | M | fp32 row-major µs | fp32 column-major µs | "
          "fp32 oneDNN packed µs | bf16 µs | int8 µs | fastest |\n|---:|---|---|---:|---:|---:|---:|---:|---:|---|")
    with torch.inference_mode():
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            for k, n, what in (shape for shape in SHAPES if shape[2].split(":")[0] in models):
                copies = min(MAX_COPIES, max(2, -(-COLD_BYTES // (4 * k * n)))) if args.cold else 1
                linears = [nn.Linear(k, n) for _ in range(copies)]
                columns = [linear.weight.detach().t().contiguous().t() for linear in linears]
                bf16 = [(linear.weight.detach().bfloat16(), linear.bias.detach().bfloat16()) for linear in linears]
                int8 = [Int8Linear(linear) for linear in linears]
                packed = [torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), PACKING_ROWS_HINT)
                          for linear in linears]
                for rows in (int(m) for m in args.rows.split(",")):
                    x = torch.randn(rows, k)
                    x_bf16 = x.bfloat16()
                    variants = {
                        "fp32 row-major": lambda i: F.linear(x, linears[i].weight, linears[i].bias),
                        "fp32 column-major": lambda i: F.linear(x, columns[i], linears[i].bias),
                        "fp32 oneDNN packed": lambda i: onednn_linear(x, packed[i], linears[i].bias, n),
                        "bf16": lambda i: F.linear(x_bf16, *bf16[i]),
                        "int8": lambda i: int8[i](x),
                    }
                    times = {name: seconds_per_call(fn, copies) for name, fn in variants.items()}
                    best = min(times, key=times.get)
                    cells = " | ".join(f"{1e6 * t:.0f}" for t in times.values())
                    print(f"| {threads} | {k} → {n} | {what} | {rows} | {cells} | {best} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
