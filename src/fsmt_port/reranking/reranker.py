"""Compute (or read from the cache) every component of the n-best lists, and rerank them.

The models of a role are loaded only when its scores are not cached, so a second run, or a
tuning run, on the same input never translates or scores again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fsmt_port.errors import ConfigError
from fsmt_port.reranking.combine import Weights, choose, rerank_scores
from fsmt_port.reranking.components import (NBEST_LENGTH_PENALTY, ComponentCache, ScoreRole, bitext_sums, lm_sums,
                                            models_key, nbest_lists, sources_key)


@dataclass
class RerankSetup:
    gen_model: list[str]
    score_model1: ScoreRole
    score_model2: ScoreRole | None = None
    language_model: list[str] | None = None
    num_rescore: int = 10
    normalize: bool = False
    batch_size: int = 32
    device: str | None = None
    dtype: str | None = None
    cache_dir: str | None = None
    progress: object = field(default=None, repr=False)  # (total, description) -> a tqdm-like bar

    def __post_init__(self) -> None:
        if self.num_rescore < 1:
            raise ConfigError(f"--num-rescore must be >= 1 (got {self.num_rescore})")

    @property
    def backwards(self) -> tuple[bool, bool | None]:
        return self.score_model1.backwards, None if self.score_model2 is None else self.score_model2.backwards


def _bar(setup: RerankSetup, total: int, what: str):
    import contextlib

    return setup.progress(total, what) if setup.progress else contextlib.nullcontext()


def compute_components(setup: RerankSetup, sources: list[str]) -> list[dict]:
    """The n-best lists with ``bitext1_sum``, ``bitext2_sum`` (with a second score model) and
    ``lm_sum`` (with a language model) on every hypothesis."""
    from fsmt_port.translation.translator import Translator

    cache = ComponentCache(setup.cache_dir)
    runtime = {"dtype": setup.dtype or "fp32"}
    nbest_key = {"component": "nbest", "gen_model": models_key(setup.gen_model), "sources": sources_key(sources),
                 "num_rescore": setup.num_rescore, "length_penalty": NBEST_LENGTH_PENALTY, **runtime}

    def generate():
        translator = Translator.from_pretrained(setup.gen_model, device=setup.device, dtype=setup.dtype)
        with _bar(setup, len(sources), "n-best") as bar:
            return nbest_lists(translator, sources, setup.num_rescore, setup.batch_size, bar)

    sentences = cache.cached(nbest_key, generate)
    n_hypos = sum(len(s["hypos"]) for s in sentences)
    for name, role in (("bitext1_sum", setup.score_model1), ("bitext2_sum", setup.score_model2)):
        if role is None:
            continue
        if not role.backwards and [str(d) for d in role.model_dirs] == [str(d) for d in setup.gen_model]:
            sums = [[h["forward_sum"] for h in s["hypos"]] for s in sentences]  # the generator's own scores
        else:
            def score(role=role):
                translator = Translator.from_pretrained(role.model_dirs, device=setup.device, dtype=setup.dtype)
                with _bar(setup, n_hypos, "channel" if role.backwards else "rescoring") as bar:
                    return bitext_sums(translator, sentences, role.backwards, setup.batch_size, bar)
            sums = cache.cached({"component": "bitext", "nbest": nbest_key, "models": models_key(role.model_dirs),
                                 "backwards": role.backwards, **runtime}, score)
        _attach(sentences, name, sums)
    if setup.language_model:
        def lm_score():
            from fsmt_port.scoring.language_model import load_language_model

            lm = load_language_model(setup.language_model, device=setup.device, dtype=setup.dtype)
            with _bar(setup, n_hypos, "language model") as bar:
                return lm_sums(lm, sentences, setup.batch_size, bar)
        _attach(sentences, "lm_sum", cache.cached({"component": "lm", "nbest": nbest_key,
                                                   "models": models_key(setup.language_model), **runtime}, lm_score))
    return sentences


def _attach(sentences: list[dict], name: str, sums: list[list[float]]) -> None:
    for sentence, values in zip(sentences, sums):
        for hypo, value in zip(sentence["hypos"], values):
            hypo[name] = value


def rerank(sentences: list[dict], weights: Weights, backwards: tuple[bool, bool | None], normalize: bool
           ) -> tuple[list[int], list[list[float]]]:
    """The chosen hypothesis of each sentence and every hypothesis's combined score."""
    scores = [rerank_scores(s, weights, backwards, normalize) for s in sentences]
    return [choose(row) for row in scores], scores
