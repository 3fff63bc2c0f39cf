"""Command-line options shared by fsmt-translate, run_eval and run_eval_search."""

from __future__ import annotations

import argparse

from .textio import ERROR_POLICIES


def add_generation_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("generation (defaults: the model's generation_config.json)")
    group.add_argument("--num-beams", "--beam", type=int, help="beam size; 1 = greedy")
    group.add_argument("--length-penalty", "--lenpen", type=float,
                       help="score = sum of log-probs / length ** length_penalty (EOS counted)")
    group.add_argument("--early-stopping", type=_bool, help="true (fairseq): stop at num_beams finished hypotheses")
    group.add_argument("--no-repeat-ngram-size", type=int, help="ban repeated n-grams of this size")
    group.add_argument("--max-len-a", type=float, help="max output length = a * source length + b")
    group.add_argument("--max-len-b", type=int, help="max output length = a * source length + b")
    group.add_argument("--min-len", type=int, help="</s> is forbidden before this many tokens")
    group.add_argument("--unk-penalty", "--unkpen", type=float, help="subtracted from log p(<unk>)")


def generation_kwargs(args: argparse.Namespace) -> dict:
    names = ("num_beams", "length_penalty", "early_stopping", "no_repeat_ngram_size", "max_len_a", "max_len_b",
             "min_len", "unk_penalty")
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def add_runtime_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("runtime")
    group.add_argument("--batch-size", "--bs", type=int, default=None,
                       help="sentences per batch (default: 32 unless --max-tokens is given)")
    group.add_argument("--max-tokens", type=int, default=None, help="padded source tokens per batch")
    group.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: %(default)s)")
    group.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16"],
                       help="compute dtype (default: %(default)s)")
    group.add_argument("--quantize", default="none", choices=["none", "int8"],
                       help="dynamic int8 Linear layers on CPU (default: %(default)s)")
    group.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    group.add_argument("--truncate", action="store_true",
                       help="cut inputs longer than the model's max positions instead of failing")
    group.add_argument("--encoding-errors", default="strict", choices=ERROR_POLICIES,
                       help="invalid UTF-8 in the input: fail naming the line, or replace with U+FFFD "
                            "(default: %(default)s)")
    group.add_argument("--quiet", action="store_true", help="no progress bar")


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def progress_bar(total: int, quiet: bool, desc: str):
    """A tqdm bar on stderr, off when stderr is not a terminal or with --quiet."""
    import sys

    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="sent", disable=quiet or not sys.stderr.isatty(), file=sys.stderr)
