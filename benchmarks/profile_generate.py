"""Where fsmt_port's beam search spends its time: wall time per component, plus torch.profiler's top ops.

    python benchmarks/profile_generate.py MODEL_DIR [--sentences 1000] [--batch-size 32] [--beam 5]
        [--fixed-length 30] [--threads 2] [--torch-profiler] [--quantize int8]

Wraps the decoder's components (self-/cross-attention, FFN, output projection,
cache reorder, the top-k of the search, the encoder) with wall-clock timers
(CPU ops are synchronous, so a component's time is its ops' time plus their
Python), runs the source file's first ``--sentences`` lines in length-sorted
batches, and prints a markdown table. ``--torch-profiler`` adds the top aten
ops by self CPU time. The numbers in ``benchmarks/RESULTS.md`` come from here.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]

#: (owner, method, label): nested components are included in their parents' time.
COMPONENTS = [
    ("fsmt_port.generation.generator:SequenceGenerator", "generate", "generate (everything)"),
    ("fsmt_port.generation.ensemble:EnsembleDecoder", "step", "decoder step incl. log_softmax"),
    ("fsmt_port.modeling.transformer:Encoder", "forward", "encoder"),
    ("fsmt_port.modeling.attention:SelfAttention", "forward", "self-attention (qkv, SDPA, out; decoder and encoder)"),
    ("fsmt_port.modeling.attention:CrossAttention", "forward", "decoder cross-attention (q, SDPA, out)"),
    ("fsmt_port.modeling.layers:DecoderLayer", "ffn", "decoder FFN (fc1, relu, fc2)"),
    ("fsmt_port.modeling.transformer:Decoder", "logits", "output projection"),
    ("fsmt_port.modeling.cache:DecoderCache", "reorder", "KV cache reorder"),
    ("fsmt_port.generation.search:BeamSearch", "step", "search top-2k"),
]


def instrument() -> tuple[collections.Counter, collections.Counter]:
    import importlib

    seconds: collections.Counter = collections.Counter()
    calls: collections.Counter = collections.Counter()
    for owner, method, label in COMPONENTS:
        module, cls_name = owner.split(":")
        cls = getattr(importlib.import_module(module), cls_name)
        inner = getattr(cls, method)

        def timed(*args, _inner=inner, _label=label, **kwargs):
            start = time.perf_counter()
            try:
                return _inner(*args, **kwargs)
            finally:
                seconds[_label] += time.perf_counter() - start
                calls[_label] += 1

        setattr(cls, method, timed)
    return seconds, calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--source", type=Path, default=REPO / "tests" / "fixtures" / "test_2016_flickr.en")
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--fixed-length", type=int, help="min_len = max_len_b = N, max_len_a = 0 (big workload)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--torch-profiler", action="store_true")
    parser.add_argument("--quantize", choices=["int8"], help="profile --quantize int8 (Int8Linear) instead of fp32")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from fsmt_port import FSMTForConditionalGeneration, FSMTTokenizer
    from fsmt_port.translation.translator import make_batches, pad_left

    seconds, calls = instrument()
    model = FSMTForConditionalGeneration.from_pretrained(args.model_dir)
    if args.quantize:
        from fsmt_port.modeling.quantization import quantize_int8

        model = quantize_int8(model)
    tokenizer = FSMTTokenizer.from_pretrained(args.model_dir)
    lines = args.source.read_text(encoding="utf-8").splitlines()[: args.sentences]
    ids = [tokenizer.encode(line) for line in lines]
    batches = [pad_left([ids[i] for i in batch]) for batch in make_batches([len(x) for x in ids], args.batch_size, None)]
    kwargs = {"num_beams": args.beam}
    if args.fixed_length:
        kwargs.update(min_len=args.fixed_length, max_len_b=args.fixed_length, max_len_a=0)
    model.generate(batches[0][:2], **kwargs)  # warm-up
    seconds.clear()
    calls.clear()
    start = time.perf_counter()
    if args.torch_profiler:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for batch in batches:
                model.generate(batch, **kwargs)
    else:
        for batch in batches:
            model.generate(batch, **kwargs)
    total = time.perf_counter() - start
    print(f"{args.model_dir.name}: {len(lines)} sentences, beam {args.beam}, batches of {args.batch_size}, "
          f"{args.threads} threads: {total:.2f} s\n")
    print("| component | s | % of total | calls |\n|---|---:|---:|---:|")
    for _, _, label in COMPONENTS:
        print(f"| {label} | {seconds[label]:.2f} | {100 * seconds[label] / total:.1f} | {calls[label]} |")
    if args.torch_profiler:
        print()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    return 0


if __name__ == "__main__":
    sys.exit(main())
