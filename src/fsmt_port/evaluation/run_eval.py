"""run_eval: translate a test set, write the translations, score them with sacrebleu BLEU.

Example::

    run_eval wmt19-en-de newstest2019.en hyps.de --reference-path newstest2019.de \\
        --score-path score.json --num-beams 5 --length-penalty 1.0 --bs 32
    run_eval m1 m2 m3 m4 test.en hyps.de --reference-path test.de   # 4-model ensemble
    torchrun --nproc_per_node 4 -m fsmt_port.evaluation.run_eval wmt19-en-de test.en hyps.de --reference-path test.de

The JSON holds the BLEU, its sacrebleu signature, n_obs, runtime,
seconds_per_sample, every generation argument as used, and how the run was made.
Under torchrun the input is sharded over the ranks; rank 0 writes the same files
a single process would.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fsmt_port.cli import generation_kwargs
from fsmt_port.cli import run_cli
from fsmt_port.evaluation.corpus import translate_corpus
from fsmt_port.evaluation.distributed import shutdown
from fsmt_port.evaluation.options import add_eval_arguments
from fsmt_port.evaluation.report import write_lines
from fsmt_port.files import write_json
from fsmt_port.evaluation.scoring import BleuScorer
from fsmt_port.evaluation.session import start_session


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run_eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_eval_arguments(parser)
    parser.add_argument("--score-path", default=None, metavar="SCORE.json",
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
        run = translate_corpus(session.translator, session.data.sources, session.context,
                               batch_size=args.batch_size, max_tokens=args.max_tokens, truncate=args.truncate,
                               quiet=args.quiet, **overrides)
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
        write_lines(args.output, run.hypotheses)
        write_json(score_path, results)
        print(f"{results['sacrebleu']}\n{n_obs} sentences in {results['runtime']:.1f} s; "
              f"wrote {args.output} and {score_path}", file=sys.stderr)
        return results
    finally:
        shutdown(session.context)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: evaluate(args), tune_memory=True)


if __name__ == "__main__":
    sys.exit(main())
