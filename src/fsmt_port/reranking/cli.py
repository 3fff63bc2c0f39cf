"""fsmt-rerank: noisy-channel reranking of n-best lists, with fairseq's ``examples/noisychannel`` options.

Generates ``--num-rescore`` hypotheses per input line with ``--gen-model``, scores each with
``--score-model1`` (and ``--score-model2``; ``--backwardsN`` marks a channel model p(source|target))
and the ``--language-model``, combines them with fairseq's ``get_score`` and writes the best
hypothesis of each line. Several folders for a role (space- or colon-separated) are an ensemble.

Examples::

    # fairseq README's example weights: channel (b1) + direct + LM
    fsmt-rerank --input test.en --output test.reranked.de --gen-model en-de \\
        --score-model1 de-en --backwards1 --score-model2 en-de --language-model lm-de \\
        --weight1 1.0 --weight2 0.929 --weight3 0.831 --lenpen 0.269 --num-rescore 50
    # tune on a dev set (random search as rerank_tune.py, plus a grid), print the table, plot it
    fsmt-rerank --input dev.en --reference dev.de --output dev.reranked.de --tune ... \\
        --tune-param lenpen weight1 weight3 --lower-bound 0 0 0 --upper-bound 2 2 2 --num-trials 1000 \\
        --search "weight3=0:0.3:0.6" --results-dir tune --plot --cache-dir rerank-cache
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import os
import sys
from pathlib import Path

import torch

from fsmt_port.cli import progress_bar, run_cli
from fsmt_port.evaluation.cache import TranslationCache
from fsmt_port.errors import ConfigError
from fsmt_port.files import ERROR_POLICIES, atomic_file, check_can_write, read_lines
from fsmt_port.reranking.combine import Weights
from fsmt_port.reranking.components import NBEST_LENGTH_PENALTY, ScoreRole
from fsmt_port.reranking.reranker import RerankSetup, compute_components, rerank

BEST_WEIGHTS = "best_weights.json"
TRIALS_CSV = "trials.csv"
PLOT_NAME = "tuning.png"


def _folders(values: list[str] | None) -> list[str] | None:
    """``a b`` or fairseq's ``a:b``: the folders of one role."""
    if not values:
        return None
    return [part for value in values for part in value.split(os.pathsep) if part]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fsmt-rerank", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    io = parser.add_argument_group("input and output")
    io.add_argument("--input", "-i", required=True, help="source sentences, one per line")
    io.add_argument("--output", "-o", required=True, help="the reranked translation of each line (atomic)")
    io.add_argument("--jsonl", help="also write every hypothesis with all its component scores (jsonl)")
    io.add_argument("--reference", help="references for --input: report BLEU; needed by --tune and weight lists")
    io.add_argument("--score-path", help="with --reference: the reranked output's BLEU as a run_eval-style JSON "
                                         "(the model card generator reads it)")
    io.add_argument("--force", action="store_true", help="overwrite existing outputs")
    io.add_argument("--cache-dir", help="keep every computed component here: reruns and tuning never "
                                        "translate or score again")
    models = parser.add_argument_group("models (converted folders; several per role = ensemble)")
    models.add_argument("--gen-model", nargs="+", required=True, help="the model(s) generating the n-best lists")
    models.add_argument("--score-model1", "-s1", nargs="+", required=True, help="first scoring model(s)")
    models.add_argument("--score-model2", "-s2", nargs="+", help="second scoring model(s)")
    models.add_argument("--backwards1", "-b1", action="store_true", help="score-model1 is a channel model p(x|y)")
    models.add_argument("--backwards2", "-b2", action="store_true", help="score-model2 is a channel model p(x|y)")
    models.add_argument("--language-model", "-lm", nargs="+", help="target-side language model folder(s)")
    models.add_argument("--source-lang", "-s", help="fairseq checkpoints (.pt) given as models are converted on the "
                                                    "fly: the source language of --input (e.g. en)")
    models.add_argument("--target-lang", "-t", help="... and the target language (e.g. de)")
    weights = parser.add_argument_group("combination (fairseq get_score)")
    weights.add_argument("--weight1", "-a", nargs="+", type=float, default=[1.0], help="weight of score-model1")
    weights.add_argument("--weight2", "-b", nargs="+", type=float, default=[1.0], help="weight of score-model2")
    weights.add_argument("--weight3", "-c", nargs="+", type=float, default=[1.0], help="weight of the LM")
    weights.add_argument("--lenpen", nargs="+", type=float, default=[1.0],
                         help="divide by (words of the hypothesis) ** lenpen. Several values per weight "
                              "are trials: the best by BLEU on --reference is used, as fairseq's rerank.py")
    weights.add_argument("--num-rescore", "-n", type=int, default=10, help="hypotheses per sentence (beam)")
    weights.add_argument("--normalize", action="store_true",
                         help="divide each score by its length (fairseq: the LM score by the source length)")
    tune = parser.add_argument_group("tuning on a dev set (--input with --reference)")
    tune.add_argument("--tune", action="store_true", help="search the weights, then rerank with the best")
    tune.add_argument("--tune-param", nargs="+", default=["lenpen"], choices=["lenpen", "weight1", "weight2",
                                                                              "weight3"])
    tune.add_argument("--lower-bound", nargs="+", type=float, default=[-0.7])
    tune.add_argument("--upper-bound", nargs="+", type=float, default=[3.0])
    tune.add_argument("--num-trials", type=int, default=1000, help="random search trials (0: grid only)")
    tune.add_argument("--seed", type=int, default=1, help="random search seed (fairseq's default 1)")
    tune.add_argument("--share-weights", action="store_true", help="weight3 takes weight2's random values")
    tune.add_argument("--search", help='a grid as well, e.g. "weight2=0:0.5:1 lenpen=0.5:1"')
    tune.add_argument("--results-dir", help=f"write {TRIALS_CSV}, {BEST_WEIGHTS} (and {PLOT_NAME}) here")
    tune.add_argument("--plot", action="store_true", help=f"plot BLEU per tuned weight ({PLOT_NAME}; matplotlib)")
    tune.add_argument("--top", type=int, default=10, help="rows of the printed table (default: %(default)s)")
    runtime = parser.add_argument_group("runtime")
    runtime.add_argument("--batch-size", "-bz", type=int, default=32, help="sentences/pairs per batch")
    runtime.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: %(default)s)")
    runtime.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16"])
    runtime.add_argument("--threads", type=int)
    runtime.add_argument("--encoding-errors", default="strict", choices=ERROR_POLICIES)
    runtime.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def trial_weights(args: argparse.Namespace) -> list[Weights]:
    """fairseq's lists: ``--weight1 a1 a2 --lenpen l1 l2`` are trials (length-1 lists repeat)."""
    lists = [args.weight1, args.weight2, args.weight3, args.lenpen]
    n = max(len(v) for v in lists)
    if any(len(v) not in (1, n) for v in lists):
        raise ConfigError("--weight1/--weight2/--weight3/--lenpen must list the same number of values (or one)")
    return [Weights(*(v[i] if len(v) > 1 else v[0] for v in lists)) for i in range(n)]


def _model_folders(values: list[str] | None, args: argparse.Namespace, backwards: bool, root: Path
                   ) -> list[str] | None:
    """Converted folders of one role; a fairseq checkpoint file (as fairseq's rerank.py takes) is converted
    first, into ``root`` (languages from --source-lang/--target-lang, swapped for a backwards model)."""
    from fsmt_port.evaluation.cache import model_fingerprint
    from fsmt_port.fairseq.convert import convert

    folders = []
    for path in _folders(values) or []:
        path = Path(path)
        if path.is_dir():
            folders.append(str(path))
            continue
        if not path.is_file():
            raise ConfigError(f"{path}: model folder (or fairseq checkpoint) not found")
        src, tgt = (args.target_lang, args.source_lang) if backwards else (args.source_lang, args.target_lang)
        fingerprint = model_fingerprint(path.parent) | {"file": path.name, "langs": [src, tgt]}
        out = root / f"{TranslationCache.key(fingerprint)[:16]}-{path.parent.name}-{path.stem}"
        if not (out / "config.json").is_file():
            convert(path, out, src_lang=src, tgt_lang=tgt, force=True)
        folders.append(str(out))
    return folders or None


def setup_from_args(args: argparse.Namespace, quiet: bool, root: Path) -> RerankSetup:
    return RerankSetup(
        gen_model=_model_folders(args.gen_model, args, False, root),
        score_model1=ScoreRole(_model_folders(args.score_model1, args, args.backwards1, root), args.backwards1),
        score_model2=ScoreRole(_model_folders(args.score_model2, args, args.backwards2, root), args.backwards2)
        if args.score_model2 else None,
        language_model=_model_folders(args.language_model, args, False, root), num_rescore=args.num_rescore,
        normalize=args.normalize,
        batch_size=args.batch_size, device=args.device, dtype=args.dtype, cache_dir=args.cache_dir,
        progress=lambda total, what: progress_bar(total, quiet, what))


def run(args: argparse.Namespace) -> dict:
    """Rerank (and tune); returns a summary (best weights, BLEU when references are given)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.score_model2 is None and args.backwards2:
        raise ConfigError("--backwards2 without --score-model2")
    trials = trial_weights(args)
    if (args.tune or len(trials) > 1) and not args.reference:
        raise ConfigError("--tune and lists of weights choose by BLEU: pass --reference with the dev references")
    if args.score_path and not args.reference:
        raise ConfigError("--score-path reports BLEU: pass --reference")
    if args.plot and not args.results_dir:
        raise ConfigError("--plot writes into --results-dir; give one")
    if args.plot:
        from fsmt_port.evaluation.plot import require_matplotlib

        require_matplotlib()
    for path in filter(None, (args.output, args.jsonl, args.score_path)):
        check_can_write(Path(path), args.force, "output file")
    sources = read_lines(args.input, errors=args.encoding_errors)
    references = read_lines(args.reference, errors=args.encoding_errors, what="reference") if args.reference else None
    if references is not None and len(references) != len(sources):
        raise ConfigError(f"--reference has {len(references)} lines but --input has {len(sources)}")
    grid = None
    if args.search:
        from fsmt_port.evaluation.grid import parse_search
        from fsmt_port.reranking.tune import FIELD_TYPES

        grid = parse_search(args.search, FIELD_TYPES, aliases={})
    with contextlib.ExitStack() as stack:
        root = Path(args.cache_dir) / "converted" if args.cache_dir else \
            Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fsmt_rerank_")))
        setup = setup_from_args(args, args.quiet, root)
        sentences = compute_components(setup, sources)

    summary: dict = {"n_sentences": len(sources), "num_rescore": args.num_rescore}
    weights = trials[0]
    if references is not None:
        from fsmt_port.evaluation.scoring import BleuScorer
        from fsmt_port.reranking import tune

        scorer = BleuScorer(references)
        if args.tune:
            trials = trials + tune.random_trials(trials[0], args.tune_param, args.lower_bound, args.upper_bound,
                                                 args.num_trials, args.seed, args.share_weights)
            if grid:
                trials += tune.grid_trials(trials[0], grid)
        with progress_bar(len(trials), args.quiet or len(trials) < 2, "trials") as bar:
            rows = tune.evaluate(sentences, trials, setup.backwards, args.normalize, scorer, bar)
        best = tune.best_row(rows)
        weights = Weights(best["weight1"], best["weight2"], best["weight3"], best["lenpen"])
        top1 = scorer.score([s["hypos"][0]["text"] for s in sentences])
        summary.update({"best": {k: best[k] for k in ("weight1", "weight2", "weight3", "lenpen", "bleu")},
                        "nbest_top1_bleu": top1["bleu"], "sacrebleu": best["sacrebleu"], "n_trials": len(rows)})
        if len(rows) > 1:
            _report(args, rows, best, top1, grid)
        else:
            print(f"reranked: {best['sacrebleu']}\nn-best top-1: {top1['sacrebleu']}", file=sys.stderr)
    chosen, scores = rerank(sentences, weights, setup.backwards, args.normalize)
    summary.setdefault("best", weights.as_dict())
    if args.score_path:
        _write_score(args, setup, weights, scorer.score([s["hypos"][c]["text"] for s, c in zip(sentences, chosen)]))
    with atomic_file(Path(args.output), force=True) as handle:
        handle.writelines(s["hypos"][c]["text"] + "\n" for s, c in zip(sentences, chosen))
    if args.jsonl:
        with atomic_file(Path(args.jsonl), force=True) as handle:
            for sentence, best_index, row in zip(sentences, chosen, scores):
                hypos = [{k: v for k, v in h.items() if k != "bpe"} | {"rerank_score": s}
                         for h, s in zip(sentence["hypos"], row)]
                handle.write(json.dumps({"id": sentence["index"], "source": sentence["source"], "chosen": best_index,
                                         "text": sentence["hypos"][best_index]["text"], "weights": weights.as_dict(),
                                         "hypotheses": hypos}, ensure_ascii=False) + "\n")
    return summary


def _write_score(args, setup: RerankSetup, weights: Weights, bleu: dict) -> None:
    """run_eval's score JSON fields plus what was reranked with what."""
    from fsmt_port.files import write_json

    write_json(args.score_path, {
        **bleu, "n_obs": len(read_lines(args.input, errors=args.encoding_errors)), "model_dirs": setup.gen_model,
        "input_path": str(args.input), "reference_path": str(args.reference), "num_beams": setup.num_rescore,
        "length_penalty": NBEST_LENGTH_PENALTY, "device": str(args.device), "dtype": args.dtype,
        "threads": args.threads, "reranking": {
            **weights.as_dict(), "normalize": setup.normalize, "num_rescore": setup.num_rescore,
            "score_model1": setup.score_model1.model_dirs, "backwards1": setup.score_model1.backwards,
            "score_model2": setup.score_model2.model_dirs if setup.score_model2 else None,
            "backwards2": setup.score_model2.backwards if setup.score_model2 else False,
            "language_model": setup.language_model}})


def _report(args, rows: list[dict], best: dict, top1: dict, grid: dict | None) -> None:
    """The table (best trials first) on stdout; trials.csv, best_weights.json and the plot in --results-dir."""
    from fsmt_port.evaluation.report import markdown_table, write_csv
    from fsmt_port.files import write_json

    ranked = sorted(rows, key=lambda r: (-r["bleu"], r["trial"]))
    columns = ["trial", "weight1", "weight2", "weight3", "lenpen", "bleu"]
    print(markdown_table(ranked[: args.top], columns, formats={c: ".4g" for c in columns[1:5]} | {"bleu": ".2f"}))
    print(f"best: weight1={best['weight1']:.6g} weight2={best['weight2']:.6g} weight3={best['weight3']:.6g} "
          f"lenpen={best['lenpen']:.6g}: {best['sacrebleu']}")
    print(f"n-best top-1 (no reranking): {top1['sacrebleu']}")
    if args.results_dir:
        out = Path(args.results_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_csv(out / TRIALS_CSV, rows, columns + ["sacrebleu"])
        write_json(out / BEST_WEIGHTS, {"weights": {k: best[k] for k in columns[1:5]}, "bleu": best["bleu"],
                                        "sacrebleu": best["sacrebleu"], "nbest_top1_bleu": top1["bleu"],
                                        "n_trials": len(rows), "grid": grid})
        if args.plot:
            from fsmt_port.evaluation.plot import plot_bleu

            tuned = list(dict.fromkeys(list(args.tune_param if args.tune else []) + list(grid or {})))
            plot_bleu(rows, tuned, out / PLOT_NAME, title=f"{Path(args.input).name}: reranking weights",
                      numeric=tuned)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: run(args), tune_memory=True)


if __name__ == "__main__":
    sys.exit(main())
