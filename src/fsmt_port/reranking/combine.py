"""fairseq's ``rerank_utils.get_score`` and the choice of the best hypothesis per sentence.

``score = a * bitext1 + b * bitext2 + c * lm`` (with ``normalize``: each bitext score divided by the
length on its side, source for a backwards model, target otherwise, and the LM score by the SOURCE
length, as fairseq does), then divided by ``target_len ** lenpen`` where ``target_len`` is the
hypothesis's word count after BPE removal. The first hypothesis with the highest score wins
(fairseq keeps a strictly greater score only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Weights:
    """``--weight1/2/3`` and ``--lenpen`` (fairseq's a, b, c, lenpen)."""

    weight1: float = 1.0
    weight2: float = 1.0
    weight3: float = 1.0
    lenpen: float = 1.0

    def as_dict(self) -> dict:
        return {"weight1": self.weight1, "weight2": self.weight2, "weight3": self.weight3, "lenpen": self.lenpen}


def get_score(a: float, b: float, c: float, target_len: int, bitext_score1: float,
              bitext_score2: float | None = None, lm_score: float | None = None, lenpen: float | None = None,
              src_len: int | None = None, tgt_len: int | None = None, bitext1_backwards: bool = False,
              bitext2_backwards: bool = False, normalize: bool = False) -> float:
    """fairseq's formula, argument for argument."""
    bitext1_norm = src_len if bitext1_backwards else tgt_len
    if bitext_score2 is not None:
        bitext2_norm = src_len if bitext2_backwards else tgt_len
    else:
        bitext2_norm, bitext_score2 = 1, 0.0
    lm_score = 0.0 if lm_score is None else lm_score
    if normalize:
        score = a * bitext_score1 / bitext1_norm + b * bitext_score2 / bitext2_norm + c * lm_score / src_len
    else:
        score = a * bitext_score1 + b * bitext_score2 + c * lm_score
    if lenpen is not None:
        score /= target_len ** float(lenpen)
    return score


def rerank_scores(sentence: dict, weights: Weights, backwards: tuple[bool, bool | None], normalize: bool
                  ) -> list[float]:
    """The combined score of each hypothesis of one sentence (see ``components.score_components``)."""
    out = []
    for hypo in sentence["hypos"]:
        out.append(get_score(
            weights.weight1, weights.weight2, weights.weight3, hypo["target_len_words"], hypo["bitext1_sum"],
            hypo.get("bitext2_sum"), hypo.get("lm_sum"), weights.lenpen, sentence["src_len_bpe_tokens"],
            hypo["tgt_len_bpe_tokens"], backwards[0], bool(backwards[1]), normalize))
    return out


def choose(scores: list[float]) -> int:
    """Index of the first best score (NaN never wins)."""
    best, best_score = 0, -math.inf
    for index, score in enumerate(scores):
        if score > best_score:
            best, best_score = index, score
    return best
