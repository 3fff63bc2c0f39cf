"""What every command line shares: its options, its error handling, its process set-up.

* Options: generation and runtime flags spelled the same in fsmt-translate, run_eval and run_eval_search.
* ``run_cli``: one clear line and a non-zero exit on error, never a traceback.
* ``tune_malloc``: glibc malloc thresholds for decoding. It changes the whole process, so only the
  CLIs opt in (``run_cli(job, tune_memory=True)``); a library user's process is left alone.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import sys
from typing import Callable

from fsmt_port.errors import FSMTPortError
from fsmt_port.files import ERROR_POLICIES
from fsmt_port.modeling.model import DTYPE_CHOICES
from fsmt_port.translation.workers import AUTO


class _UnderscoreSpellings:
    """An argument group whose ``--dashed-options`` also answer to ``--dashed_options`` (transformers' spelling,
    e.g. ``--num_beams 5`` in transformers' run_eval.py)."""

    def __init__(self, group) -> None:  # what parser.add_argument_group returns
        self.group = group

    def add_argument(self, *names: str, **kwargs):
        aliases = ["--" + n[2:].replace("-", "_") for n in names if n.startswith("--") and "-" in n[2:]]
        return self.group.add_argument(*names, *[a for a in aliases if a not in names], **kwargs)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The positional MODEL... of every command that loads a translator (several = an ensemble)."""
    parser.add_argument("model_dirs", nargs="+", metavar="MODEL",
                        help="converted model folder(s) or hub repo id(s); several = ensemble")


def add_generation_options(parser: argparse.ArgumentParser) -> None:
    group = _UnderscoreSpellings(parser.add_argument_group("generation (defaults: the model's generation_config.json)"))
    group.add_argument("--num-beams", "--beam", type=int, help="beam size; 1 = greedy")
    group.add_argument("--length-penalty", "--lenpen", type=float,
                       help="score = sum of log-probs / length ** length_penalty (EOS counted)")
    group.add_argument("--early-stopping", type=_bool, help="true (fairseq): stop at num_beams finished hypotheses")
    group.add_argument("--no-repeat-ngram-size", type=int, help="ban repeated n-grams of this size")
    group.add_argument("--max-len-a", type=float, help="max output length = a * source length + b")
    group.add_argument("--max-len-b", type=int, help="max output length = a * source length + b")
    group.add_argument("--min-len", type=int, help="</s> is forbidden before this many tokens")
    group.add_argument("--unk-penalty", "--unkpen", type=float, help="subtracted from log p(<unk>)")
    modes = _UnderscoreSpellings(parser.add_argument_group(
        "decoding modes (fairseq's names; transformers' where it has one)"))
    modes.add_argument("--sampling", "--do-sample", action="store_const", const=True, default=None,
                       help="sample instead of beam search (each beam an independent sample)")
    modes.add_argument("--sampling-topk", "--top-k", type=int, help="sample among the k most likely tokens")
    modes.add_argument("--sampling-topp", "--top-p", type=float, help="sample in the nucleus of mass p")
    modes.add_argument("--temperature", type=float, help="divide the logits by this before the softmax")
    modes.add_argument("--seed", type=int, help="seed for sampling (fairseq's torch.manual_seed before decoding)")
    modes.add_argument("--diverse-beam-groups", "--num-beam-groups", type=int,
                       help="diverse beam search with this many groups (must divide --num-beams)")
    modes.add_argument("--diverse-beam-strength", "--diversity-penalty", type=float,
                       help="diverse beam search penalty (default 0.5)")
    modes.add_argument("--diversity-rate", type=float, help="diverse siblings search: rate * sibling rank penalty")
    modes.add_argument("--match-source-len", action="store_const", const=True, default=None,
                       help="outputs as long as their source (counting its </s>)")
    modes.add_argument("--constraints", nargs="?", const="ordered", choices=["ordered", "unordered"],
                       help="lexically constrained decoding: input lines are 'source<TAB>constraint<TAB>...' "
                            "(fairseq-interactive's format; default order: ordered)")
    modes.add_argument("--prefix-size", type=int,
                       help="force each hypothesis to start with this many target tokens of its prefix "
                            "(fsmt-translate: --prefix-file; run_eval: the reference, as fairseq-generate)")
    modes.add_argument("--print-alignment", nargs="?", const="hard", choices=["hard", "soft"],
                       help="attach alignments (hard: src-tgt token pairs; soft: weights) to each hypothesis")
    modes.add_argument("--lm-path", help="shallow fusion: a converted transformer_lm folder (fairseq --lm-path)")
    modes.add_argument("--lm-weight", type=float, help="shallow fusion weight: lprobs += w * LM log-probs")


MODE_OPTIONS = ("sampling", "sampling_topk", "sampling_topp", "temperature", "seed", "diverse_beam_groups",
                "diverse_beam_strength", "diversity_rate", "match_source_len", "constraints", "print_alignment")


def command_parser(prog: str, doc: str, example: str) -> argparse.ArgumentParser:
    """A parser whose help is the module docstring's first paragraph and a usage example."""
    return argparse.ArgumentParser(prog=prog, description=f"{doc.split(chr(10) * 2)[0]}\n\nexample:\n  {example}",
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def generation_kwargs(args: argparse.Namespace) -> dict:
    names = ("num_beams", "length_penalty", "early_stopping", "no_repeat_ngram_size", "max_len_a", "max_len_b",
             "min_len", "unk_penalty") + MODE_OPTIONS + ("lm_path", "lm_weight")
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def add_runtime_options(parser: argparse.ArgumentParser) -> None:
    """Batching, device and input handling of the batch commands (fsmt-translate, run_eval, run_eval_search)."""
    group = parser.add_argument_group("runtime")
    group.add_argument("--batch-size", "--bs", type=int, default=None,
                       help="sentences per batch (default: 32 unless --max-tokens is given)")
    group.add_argument("--max-tokens", type=int, default=None, help="padded source tokens per batch")
    add_device_options(group)
    group.add_argument("--workers", type=_workers, default=AUTO,
                       help="CPU only: decode this many batches side by side, each on --threads / N threads; same "
                            "tokens, more throughput on few cores. auto: 2 with 2+ threads, 1 for a GPU or a "
                            "seeded sampling run (default: %(default)s)")
    group.add_argument("--truncate", action="store_true",
                       help="cut inputs longer than the model's max positions instead of failing")
    group.add_argument("--encoding-errors", default="strict", choices=ERROR_POLICIES,
                       help="invalid UTF-8 in the input: fail naming the line, or replace with U+FFFD "
                            "(default: %(default)s)")
    group.add_argument("--trust-checkpoint", action="store_true",
                       help="let a pytorch_model.bin's pickle run code (only for files you trust; default: refuse)")
    group.add_argument("--quiet", action="store_true", help="no progress bar")


def add_hub_options(parser: argparse.ArgumentParser) -> None:
    """``--revision`` and ``--local-files-only``, for models given as hub repo ids (``facebook/wmt19-en-de``)."""
    group = parser.add_argument_group("hub (when a model is given as an org/name repo id)")
    group.add_argument("--revision", default=None,
                       help="branch, tag or commit of the hub repo(s) (default: main)")
    group.add_argument("--local-files-only", "--local_files_only", action="store_true",
                       help="use the local hub cache only, never the network (as HF_HUB_OFFLINE=1)")


def hub_kwargs(args: argparse.Namespace) -> dict:
    return {"revision": args.revision, "local_files_only": args.local_files_only}


def add_device_options(group) -> None:
    """Where and how the model runs; shared by the batch CLIs and fsmt-serve."""
    group.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: %(default)s)")
    group.add_argument("--dtype", default="fp32", choices=DTYPE_CHOICES,
                       help="compute dtype (default: %(default)s)")
    group.add_argument("--quantize", default="none", choices=["none", "int8"],
                       help="int8 Linear layers on CPU: per-row int8 weights and activations, not exact "
                            "(default: %(default)s)")
    group.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def parse_bool(text: str) -> bool | None:
    """``true``/``1``/``yes``/``on`` or their opposites (any case); ``None`` for anything else."""
    lowered = text.strip().lower()
    return True if lowered in TRUE_WORDS else False if lowered in FALSE_WORDS else None


def _bool(text: str) -> bool:
    value = parse_bool(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return value


def _workers(text: str) -> int | str:
    """``--workers``: "auto" or an integer (its range is checked with the device, ``translation.workers``)."""
    if text.strip().lower() == AUTO:
        return AUTO
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1 or auto, got {text!r}") from None


def progress_bar(total: int | None, quiet: bool, desc: str, unit: str = "sent"):
    """A tqdm bar on stderr, off when stderr is not a terminal or with --quiet (``total`` None: a running count)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=quiet or not sys.stderr.isatty(), file=sys.stderr)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM, with a message that says what was kept (e.g. how to resume)."""


EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def run_cli(job: Callable[[], None], tune_memory: bool = False) -> int:
    if tune_memory:
        tune_malloc()
    try:
        if tune_memory:  # decoding commands: a bad FSMT_PORT_GEMM fails before any work, not at the first layer
            from fsmt_port.modeling.linear import onednn_gemm_enabled

            onednn_gemm_enabled()
        job()
    except FSMTPortError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as err:
        print(str(err) if isinstance(err, Interrupted) else "interrupted; nothing partial was left behind",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    return 0


# Process-level tuning for CPU decoding: let glibc's malloc reuse freed memory.
#
# A decoding step allocates and frees the same few tensors of 0.1-20 MB (projections,
# FFN activations, logits). glibc serves such blocks with a fresh ``mmap`` whenever
# they exceed its (adaptive) mmap threshold and trims the heap top when it frees
# them, so every step page-faults new, cache-cold memory: ~150,000 minor faults
# per 1000 sentences of small-model beam search. Fixed high thresholds make it
# reuse the warm heap instead: 0 faults and ~5% faster decoding on the 2-core
# measuring machine (``benchmarks/RESULTS.md``). Freed memory then stays with the
# process (RSS stays at its peak) rather than going back to the OS.
#
# Applied once, by the CLIs (run_cli(..., tune_memory=True)); ``FSMT_PORT_MALLOC_TUNING=0``
# turns it off. A no-op where the C library is not glibc.

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from the heap (glibc's maximum on 64-bit is 32 MiB).
MMAP_THRESHOLD = 32 * 2**20
#: Free memory kept at the top of the heap before it is returned to the OS.
TRIM_THRESHOLD = 512 * 2**20

_applied: bool | None = None


def tune_malloc() -> bool:
    """Raise glibc's mmap/trim thresholds once per process. Returns whether tuning is in effect."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("FSMT_PORT_MALLOC_TUNING", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows): nothing to tune
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied
