"""Weight tuning on a dev set: fairseq's random search (``rerank_tune.py``) and a grid.

Both evaluate trials on the cached components only (pure arithmetic plus BLEU), and trials that
choose the same hypotheses share one BLEU computation.

Random search, as fairseq: ``random.seed(seed)``, then per trial one ``random.uniform(lower[i],
upper[i])`` per ``--tune-param`` in order; the other weights keep their given values;
``--share-weights`` copies weight2's draws into weight3. The best trial is the first with the
highest BLEU.
"""

from __future__ import annotations

import random
from dataclasses import replace

from fsmt_port.errors import ConfigError
from fsmt_port.evaluation.grid import expand
from fsmt_port.reranking.combine import Weights
from fsmt_port.reranking.reranker import rerank

TUNABLE = ("lenpen", "weight1", "weight2", "weight3")
FIELD_TYPES = {name: float for name in TUNABLE}


def random_trials(base: Weights, tune_param: list[str], lower: list[float], upper: list[float], num_trials: int,
                  seed: int = 1, share_weights: bool = False) -> list[Weights]:
    if len(lower) != len(tune_param) or len(upper) != len(tune_param):
        raise ConfigError(f"--lower-bound and --upper-bound need one value per --tune-param ({len(tune_param)}); "
                          f"got {len(lower)} and {len(upper)}")
    for name, low, high in zip(tune_param, lower, upper):
        if name not in TUNABLE:
            raise ConfigError(f"--tune-param {name!r}: expected some of {', '.join(TUNABLE)}")
        if high < low:
            raise ConfigError(f"--tune-param {name}: upper bound {high} is below lower bound {low}")
    if share_weights and "weight2" not in tune_param:
        raise ConfigError("--share-weights copies weight2's values into weight3: tune weight2")
    rng = random.Random(seed)
    trials = []
    for _ in range(num_trials):
        values = {name: rng.uniform(low, high) for name, low, high in zip(tune_param, lower, upper)}
        if share_weights:
            values["weight3"] = values["weight2"]
        trials.append(replace(base, **values))
    return trials


def grid_trials(base: Weights, grid: dict[str, list]) -> list[Weights]:
    return [replace(base, **combination) for combination in expand(grid)]


def evaluate(sentences: list[dict], trials: list[Weights], backwards, normalize: bool, bleu_scorer,
             progress=None) -> list[dict]:
    """One row per trial: its weights, BLEU fields and ``chosen`` indices; in trial order."""
    memo: dict[tuple, dict] = {}
    rows = []
    for number, weights in enumerate(trials):
        chosen, _ = rerank(sentences, weights, backwards, normalize)
        key = tuple(chosen)
        if key not in memo:
            hypotheses = [s["hypos"][c]["text"] for s, c in zip(sentences, chosen)]
            memo[key] = bleu_scorer.score(hypotheses)
        rows.append({"trial": number, **weights.as_dict(), **memo[key], "chosen": list(chosen)})
        if progress is not None:
            progress.update(1)
    return rows


def best_row(rows: list[dict]) -> dict:
    """The first row with the highest BLEU (fairseq keeps a strictly better score only)."""
    best = rows[0]
    for row in rows[1:]:
        if row["bleu"] > best["bleu"]:
            best = row
    return best
