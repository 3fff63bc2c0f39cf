"""run_eval_search: find the generation arguments with the best BLEU on a dev set (grid search).

Example::

    run_eval_search wmt19-en-de newstest2018.en best.de --reference-path newstest2018.de \\
        --search "num_beams=5:8 length_penalty=0.6:0.8:1.0:1.1 early_stopping=true:false" --plot
    run_eval_search facebook/wmt19-en-de val.source out.txt --reference_path val.target \\
        --score_path bleu.json --bs 32 --task translation --search="num_beams=5:8 early_stopping=true:false"

Every combination of the listed values is translated (any generation argument
can be searched; fixed ones go in the usual options), scored with sacrebleu BLEU
against references whose statistics are computed once, and printed as a
table in transformers' run_eval_search form (``bleu | num_beams | ...``), best first. OUTPUT receives the best combination's
translations; RESULTS_DIR gets results.json, results.csv (and bleu_vs_args.png); ``--score-path``
gets a copy of results.json.
Each combination's translations are cached as soon as they are done, so a
rerun after an interruption only translates what is missing. ``--update-config``
writes the best values into each model folder's generation_config.json.
Works under ``torchrun`` like run_eval.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

from fsmt_port.cli import generation_kwargs
from fsmt_port.cli import run_cli
from fsmt_port.errors import ConfigError
from fsmt_port.evaluation.cache import TranslationCache, base_key_fields
from fsmt_port.evaluation.config_update import update_generation_config
from fsmt_port.evaluation.corpus import translate_corpus
from fsmt_port.translation.distributed import shutdown
from fsmt_port.evaluation.grid import as_options, describe, expand, generation_fields, parse_search
from fsmt_port.evaluation.options import add_eval_arguments
from fsmt_port.evaluation.plot import plot_bleu, require_matplotlib
from fsmt_port.evaluation.report import score_table, write_csv, write_lines
from fsmt_port.files import write_json
from fsmt_port.evaluation.scoring import BleuScorer
from fsmt_port.evaluation.session import Session, start_session

PLOT_NAME = "bleu_vs_args.png"
ROW_FIELDS = ("bleu", "hyp_len", "ref_len", "bleu_bp", "runtime", "seconds_per_sample", "cached", "cache_file")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run_eval_search", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_eval_arguments(parser)
    search = parser.add_argument_group("search")
    search.add_argument("--search", required=True, metavar='"NAME=V1:V2 ..."',
                        help='values to try, e.g. "num_beams=5:8 length_penalty=0.6:1.1 early_stopping=true:false"')
    search.add_argument("--score-path", "--score_path", default=None, metavar="SCORE.json",
                        help="also write the results JSON here (default: only RESULTS_DIR/results.json)")
    search.add_argument("--results-dir", default=None,
                        help="results.json, results.csv, the plot and cache/ (default: OUTPUT.search)")
    search.add_argument("--plot", action="store_true",
                        help=f"also write RESULTS_DIR/{PLOT_NAME} (needs matplotlib) (default: %(default)s)")
    search.add_argument("--update-config", action="store_true",
                        help="write the best values into each MODEL_DIR/generation_config.json "
                             "(default: %(default)s)")
    return parser


def search(args: argparse.Namespace) -> dict | None:
    """Run (or resume) the grid; returns the results on rank 0 (None on other ranks)."""
    grid = parse_search(args.search)
    if args.input == "-":
        raise ConfigError("run_eval_search needs INPUT as a file (it is hashed for the cache), not stdin")
    fixed = generation_kwargs(args)
    per_line = [flag for flag, given in (("--constraints", args.constraints), ("--prefix-size", args.prefix_size),
                                         ("--print-alignment", args.print_alignment)) if given is not None]
    if per_line:
        raise ConfigError(f"run_eval_search does not take {', '.join(per_line)}; use run_eval for one setting")
    both = sorted(set(grid) & set(fixed))
    if both:
        raise ConfigError(f"{', '.join(both)} is both searched and fixed by an option; drop one of them")
    if args.plot:
        require_matplotlib()
    if args.update_config:
        hub_ids = [d for d in args.model_dirs if not Path(d).is_dir()]
        if hub_ids:
            raise ConfigError(f"--update-config writes into the model folder, and {hub_ids[0]} is a hub repo id "
                              "(its cached snapshot is shared); download it to a folder (hf download ID "
                              "--local-dir DIR) and search on DIR")
    results_dir = Path(args.results_dir) if args.results_dir else Path(f"{args.output}.search")
    outputs = [args.output, results_dir / "results.json"] + ([args.score_path] if args.score_path else [])
    session = start_session(args, outputs)
    try:
        return _run_grid(session, grid, fixed, results_dir)
    finally:
        shutdown(session.context)


def _run_grid(session: Session, grid: dict, fixed: dict, results_dir: Path) -> dict | None:
    args, context = session.args, session.context
    combinations = expand(grid)
    resolved = [session.resolved_generation(**combo) for combo in combinations]  # invalid values fail now
    cache = TranslationCache(results_dir / "cache")
    base = base_key_fields(session.model_dirs, args.input, {"encoding_errors": args.encoding_errors,
                                                         "truncate": args.truncate},
                           {"dtype": args.dtype, "quantize": args.quantize,
                            "device": session.translator.models[0].device.type})
    keys = [{**base, "generation": generation} for generation in resolved]
    n_lines = len(session.data.sources)
    cached = [cache.get(k, n_lines) for k in keys] if context.is_main else [None] * len(keys)
    to_run = context.broadcast([i for i, entry in enumerate(cached) if entry is None])
    if context.is_main:
        print(f"search: {len(combinations)} combinations, {len(combinations) - len(to_run)} cached, "
              f"{len(to_run)} to translate", file=sys.stderr)
    scorer = BleuScorer(session.data.references) if context.is_main else None
    rows: list[dict] = []
    best_bleu, best_hypotheses = float("-inf"), None
    for index, combo in enumerate(combinations):
        if index in to_run:
            translations = cache.path(cache.key(keys[index])).with_suffix(".txt")  # resumable, then cached
            run = translate_corpus(session.translator, session.data.sources, context, output_path=translations,
                                   **session.corpus_options(),
                                   desc=f"[{index + 1}/{len(combinations)}] {describe(combo)}", **fixed, **combo)
            if not context.is_main:
                continue
            cache.put(keys[index], run.hypotheses, run.seconds)
            translations.unlink()
            hypotheses, seconds, was_cached = run.hypotheses, run.seconds, False
        else:
            if not context.is_main:
                continue
            hypotheses, seconds, was_cached = cached[index]["hypotheses"], cached[index]["seconds"], True
        score = scorer.score(hypotheses)
        row = {**resolved[index], **score, "runtime": round(seconds, 3),
               "seconds_per_sample": round(seconds / n_lines, 5), "cached": was_cached,
               "cache_file": str(cache.path(cache.key(keys[index])))}
        if row["bleu"] > best_bleu:  # strict: ties keep the first in grid order, as the ranking does
            best_bleu, best_hypotheses = row["bleu"], hypotheses
        rows.append(row)
    if not context.is_main:
        return None
    return _report(session, grid, fixed, rows, best_hypotheses, results_dir)


def _report(session: Session, grid: dict, fixed: dict, rows: list[dict], best_hypotheses: list[str],
            results_dir: Path) -> dict:
    args = session.args
    names = list(grid)
    ranked = sorted(rows, key=lambda r: -r["bleu"])  # stable: ties keep grid order
    best = ranked[0]
    best_values = {n: best[n] for n in names}
    results = {
        "search": args.search,
        "grid": grid,
        "signature": best["signature"],
        "n_obs": len(session.data.sources),
        "best": {**best_values, "bleu": best["bleu"], "sacrebleu": best["sacrebleu"]},
        "generation_overrides": fixed,
        "output_path": str(Path(args.output).resolve()),
        **session.metadata(),
        "results": [{k: r[k] for k in (*generation_fields(r), *ROW_FIELDS)} for r in ranked],
    }
    write_lines(args.output, best_hypotheses)
    write_json(results_dir / "results.json", results)
    if args.score_path:
        write_json(args.score_path, results)
    write_csv(results_dir / "results.csv", results["results"], [*generation_fields(best), *ROW_FIELDS])
    print(f"\n{score_table(ranked, names)}")
    if args.info:
        print(f"Info: {args.info}\n")
    print(f"best: {describe(best_values)} (BLEU {best['bleu']:.2f}, {best['signature']})")
    print(f"as options: {as_options(best_values)}")
    if args.plot:
        plot = plot_bleu(ranked, names, results_dir / PLOT_NAME, title=f"{Path(args.input).name}: {args.search}")
        print(f"plot: {plot}" if plot else "plot: no numeric argument was searched; nothing to plot",
              file=sys.stderr)
    if args.update_config:
        provenance = {"source": "run_eval_search", "search": args.search, "best": best_values,
                      "fixed_options": fixed, "data_file": str(Path(args.input).resolve()),
                      "reference_file": str(Path(args.reference_path).resolve()), "bleu": round(best["bleu"], 4),
                      "signature": best["signature"], "model_dirs": results["model_dirs"],
                      "date": datetime.date.today().isoformat()}
        for model_dir in session.model_dirs:
            print(f"updated {update_generation_config(model_dir, best_values, provenance)}", file=sys.stderr)
    print(f"wrote {args.output} (best translations) and {results_dir}/results.json, results.csv", file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: search(args), tune_memory=True)


if __name__ == "__main__":
    sys.exit(main())
