"""Command-line arguments shared by ``run_eval`` and ``run_eval_search``.

Both accept transformers' ``examples/legacy/seq2seq/run_eval.py`` spellings next to ours, so the porting blog's
command lines run unchanged: ``--reference_path``, ``--score_path``, ``--bs``, ``--n_obs``, ``--fp16``,
``--task translation``, ``--info [TEXT]``, ``--dump-args``, ``--device`` and ``--num_beams``-style generation
options.
"""

from __future__ import annotations

import argparse
import datetime
import re

from fsmt_port.cli import add_generation_options, add_hub_options, add_runtime_options
from fsmt_port.errors import ConfigError

#: transformers' run_eval treats any task containing "translation" (translation_en_to_de, ...) as translation.
_TRANSLATION_TASK = re.compile(r"^translation(_[A-Za-z-]+_to_[A-Za-z-]+)?$")


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """Models, data, references, plus the shared generation, runtime and hub groups."""
    parser.add_argument("model_dirs", nargs="+", metavar="MODEL",
                        help="converted model folder(s) or hub repo id(s) (org/name); several = ensemble")
    parser.add_argument("input", metavar="INPUT", help="source sentences, one per line")
    parser.add_argument("output", metavar="OUTPUT",
                        help="where the detokenized translations go, one per line in input order "
                             "(written atomically, replaced if it exists)")
    evaluation = parser.add_argument_group("evaluation")
    evaluation.add_argument("--reference-path", "--reference_path", required=True, metavar="REF",
                            help="reference translations, aligned line by line with INPUT")
    evaluation.add_argument("--n-obs", "--n_obs", type=int, default=None, metavar="N",
                            help="evaluate the first N lines only (default: all; <= 0 also means all)")
    evaluation.add_argument("--task", default="translation",
                            help="transformers' option; only translation (BLEU) is supported (default: %(default)s)")
    evaluation.add_argument("--info", nargs="?", const=_now(), default=None,
                            help="free text stored in the JSON results; without a value, the current date and "
                                 "time (default: none)")
    evaluation.add_argument("--dump-args", "--dump_args", action="store_true",
                            help="also print the scores with every generation argument on stdout (the JSON always "
                                 "has them) (default: %(default)s)")
    evaluation.add_argument("--fp16", action="store_true",
                            help="transformers' spelling of --dtype fp16 (default: %(default)s)")
    add_generation_options(parser)
    add_runtime_options(parser)
    add_hub_options(parser)


def check_eval_arguments(args: argparse.Namespace) -> None:
    """Refuse what cannot be honoured (one line); fold transformers' spellings into ours."""
    if not _TRANSLATION_TASK.match(args.task):
        raise ConfigError(f"--task {args.task!r}: fsmt_port evaluates translation only (BLEU); "
                          "give --task translation or leave it out")
    if args.fp16:
        if args.dtype not in ("fp32", "fp16"):
            raise ConfigError(f"--fp16 contradicts --dtype {args.dtype}; give one of them")
        args.dtype = "fp16"


def _now() -> str:
    return datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
