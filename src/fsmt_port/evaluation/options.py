"""Command-line arguments shared by ``run_eval`` and ``run_eval_search``."""

from __future__ import annotations

import argparse

from fsmt_port.cli import add_generation_options, add_runtime_options


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """Models, data, references, plus the shared generation and runtime groups."""
    parser.add_argument("model_dirs", nargs="+", metavar="MODEL_DIR",
                        help="converted model folder(s); several = ensemble")
    parser.add_argument("input", metavar="INPUT", help="source sentences, one per line")
    parser.add_argument("output", metavar="OUTPUT",
                        help="where the detokenized translations go, one per line in input order "
                             "(written atomically, replaced if it exists)")
    evaluation = parser.add_argument_group("evaluation")
    evaluation.add_argument("--reference-path", required=True, metavar="REF",
                            help="reference translations, aligned line by line with INPUT")
    evaluation.add_argument("--info", default=None, help="free text stored in the JSON results (default: none)")
    add_generation_options(parser)
    add_runtime_options(parser)
