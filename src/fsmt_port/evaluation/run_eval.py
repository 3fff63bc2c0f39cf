"""run_eval: translate a test set, write the translations, score them with sacrebleu BLEU.

Example::

    run_eval wmt19-en-de newstest2019.en hyps.de --reference-path newstest2019.de \\
        --score-path score.json --num-beams 5 --length-penalty 1.0 --bs 32
    run_eval facebook/wmt19-en-de val.source out.txt --reference_path val.target \\
        --score_path scores.json --task translation --bs 32          # transformers' spellings, a hub id
    run_eval m1 m2 m3 m4 test.en hyps.de --reference-path test.de   # 4-model ensemble
    torchrun --nproc_per_node 4 -m fsmt_port.evaluation.run_eval wmt19-en-de test.en hyps.de --reference-path test.de

The JSON holds the BLEU, its sacrebleu signature, n_obs, runtime,
seconds_per_sample, every generation argument as used, and how the run was made.
Under torchrun the ranks take turns at windows of the input and commit them to
their own part files; rank 0 assembles the same output a single process writes.
The output is committed window by window: an interrupted run, started again with
the same settings, resumes (with other settings it starts over).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fsmt_port.cli import generation_kwargs
from fsmt_port.cli import run_cli
from fsmt_port.errors import ConfigError
from fsmt_port.evaluation.corpus import translate_corpus
from fsmt_port.translation.distributed import shutdown
from fsmt_port.translation.translator import split_constraint_lines
from fsmt_port.evaluation.options import add_eval_arguments
from fsmt_port.files import write_json
from fsmt_port.evaluation.scoring import BleuScorer
from fsmt_port.evaluation.session import start_session


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run_eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_eval_arguments(parser)
    parser.add_argument("--score-path", "--score_path", default=None, metavar="SCORE.json",
                        help="where the JSON results go (default: OUTPUT.score.json)")
    return parser


def default_score_path(output: str) -> Path:
    return Path(f"{output}.score.json")


def evaluate(args: argparse.Namespace) -> dict | None:
    """Translate, score and write; returns the results on rank 0 (None on other ranks)."""
    score_path = Path(args.score_path) if args.score_path else default_score_path(args.output)
    session = start_session(args, [args.output, score_path])
    try:
        overrides = generation_kwargs(args)
        generation = session.resolved_generation()
        sources, per_line = mode_inputs(args, session.data.sources, session.data.references)
        run = translate_corpus(session.translator, sources, session.context, output_path=args.output,
                               **session.corpus_options(), **per_line, **overrides)
        if not session.context.is_main:
            return None
        n_obs = len(run.hypotheses)
        results = {
            **BleuScorer(session.data.references).score(run.hypotheses),
            "n_obs": n_obs,
            "runtime": round(run.seconds, 3),
            "seconds_per_sample": round(run.seconds / n_obs, 5),
            **generation,
            "generation_overrides": overrides,
            "output_path": str(Path(args.output).resolve()),
            **session.metadata(),
        }
        write_json(score_path, results)
        if args.dump_args:
            print(json.dumps(results, ensure_ascii=False))
        print(f"{results['sacrebleu']}\n{n_obs} sentences in {results['runtime']:.1f} s; "
              f"wrote {args.output} and {score_path}", file=sys.stderr)
        return results
    finally:
        shutdown(session.context)


def mode_inputs(args: argparse.Namespace, sources: list[str], references: list[str]) -> tuple[list[str], dict]:
    """fairseq-generate's ``--prefix-size`` (the reference's first tokens) and fairseq-interactive's
    ``--constraints`` input (``source<TAB>constraint...``); the rest of run_eval is unchanged."""
    per_line: dict = {}
    if args.constraints:
        sources, per_line["constraint_texts"] = split_constraint_lines(sources)
    if args.prefix_size is not None:
        per_line["prefixes"], per_line["prefix_size"] = references, args.prefix_size
    if args.print_alignment:
        raise ConfigError("run_eval writes text only; get alignments with fsmt-translate --format jsonl "
                          "--print-alignment")
    return sources, per_line


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: evaluate(args), tune_memory=True)


if __name__ == "__main__":
    sys.exit(main())
