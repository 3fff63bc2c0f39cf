"""Per-shape GEMM speed: which weight layout and which precision wins for each Linear shape.

    python benchmarks/gemm_shapes.py [--threads 1,2] [--rows 1,5,32,160]

For the Linear shapes of small-en-de (d_model 256) and transformer-big (1024), times
``F.linear`` with the file's row-major weight, with a column-major weight (what
``fsmt_port.modeling.layout`` gives the output projection when d_model <= 512), on oneDNN with a packed weight
(``fsmt_port.modeling.linear``'s choice off Intel CPUs), in bf16, and as ``Int8Linear``
(``--quantize int8``: activation quantization and dequantization included), and prints
one markdown table of microseconds per call. The choices documented in ``RESULTS.md``
come from this table.
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


def seconds_per_call(fn, budget: float = 0.3) -> float:
    """Median-free but warm: a few calls to warm up, then as many as fit in ``budget`` seconds."""
    for _ in range(3):
        fn()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < budget or calls < 5:
        fn()
        calls += 1
    return (time.perf_counter() - start) / calls


def main(argv: list[str] | None = None) -> int:
    from fsmt_port.modeling.linear import PACKING_ROWS_HINT, onednn_linear
    from fsmt_port.modeling.quantization import Int8Linear

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rows", default="1,32,160", help="GEMM rows M (160 = 32 sentences x beam 5)")
    args = parser.parse_args(argv)
    print("| threads | shape (in → out) | layer | M | fp32 row-major µs | fp32 column-major µs | "
          "fp32 oneDNN packed µs | bf16 µs | int8 µs | fastest |\n|---:|---|---|---:|---:|---:|---:|---:|---:|---|")
    with torch.inference_mode():
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            for k, n, what in SHAPES:
                linear = nn.Linear(k, n)
                column = linear.weight.detach().t().contiguous().t()
                weight_bf16, bias_bf16 = linear.weight.detach().bfloat16(), linear.bias.detach().bfloat16()
                int8 = Int8Linear(linear)
                packed = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), PACKING_ROWS_HINT)
                for rows in (int(m) for m in args.rows.split(",")):
                    x = torch.randn(rows, k)
                    x_bf16 = x.bfloat16()
                    times = {
                        "fp32 row-major": seconds_per_call(lambda: F.linear(x, linear.weight, linear.bias)),
                        "fp32 column-major": seconds_per_call(lambda: F.linear(x, column, linear.bias)),
                        "fp32 oneDNN packed": seconds_per_call(lambda: onednn_linear(x, packed, linear.bias, n)),
                        "bf16": seconds_per_call(lambda: F.linear(x_bf16, weight_bf16, bias_bf16)),
                        "int8": seconds_per_call(lambda: int8(x)),
                    }
                    best = min(times, key=times.get)
                    cells = " | ".join(f"{1e6 * t:.0f}" for t in times.values())
                    print(f"| {threads} | {k} → {n} | {what} | {rows} | {cells} | {best} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
