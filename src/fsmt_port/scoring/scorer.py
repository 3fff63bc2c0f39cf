"""fairseq's ``SequenceScorer``: the log-probability of GIVEN target tokens.

* one teacher-forced forward per model: ``prev_output_tokens = [start] + target[:-1]``,
  targets right-padded (their positions do not depend on the padding);
* one model: its float32 log-softmax at the target ids;
* an ensemble averages PROBABILITIES: each model's float32 softmax gathered at the
  target ids, summed, divided by N, then ``log`` (not the generator's logsumexp);
* ``score = sum(positional_scores) / len(tokens)``: no length penalty; the final
  ``</s>`` counts when it is part of the target (translation), and an empty target
  gives NaN (0 / 0), as in fairseq.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from fsmt_port.errors import InputError

#: (prev_tokens (B, T) right-padded, batch row indices) -> logits (B, T, V) of one model
LogitsFn = Callable[[torch.Tensor, list[int]], torch.Tensor]


@dataclass
class ScoredSequence:
    tokens: list[int]
    positional_scores: list[float]
    score: float

    def to_json(self) -> dict:
        return {"tokens": self.tokens, "positional_scores": self.positional_scores, "score": self.score}

    def __getitem__(self, key: str):
        """``result["score"]`` as on fairseq's hypothesis dicts."""
        if key not in ("tokens", "positional_scores", "score"):
            raise KeyError(key)
        return getattr(self, key)


def pad_right(rows: Sequence[Sequence[int]], pad: int = 1) -> torch.Tensor:
    width = max(1, max(len(r) for r in rows))
    return torch.tensor([list(r) + [pad] * (width - len(r)) for r in rows], dtype=torch.long)


def target_scores(logits_fns: Sequence[LogitsFn], targets: Sequence[Sequence[int]], start_token: int,
                  batch: list[int], pad: int = 1) -> list[ScoredSequence]:
    """Score ``targets[i]`` for the rows ``batch`` (one forward per model, fairseq's combination)."""
    rows = [list(targets[i]) for i in batch]
    prev = pad_right([[start_token] + r[:-1] if r else [start_token] for r in rows], pad)
    gold = pad_right([r if r else [pad] for r in rows], pad)
    combined = None
    for logits_fn in logits_fns:
        logits = logits_fn(prev, batch).float()
        if len(logits_fns) == 1:
            combined = F.log_softmax(logits, dim=-1).gather(-1, gold.to(logits.device).unsqueeze(-1)).squeeze(-1)
        else:
            probs = F.softmax(logits, dim=-1).gather(-1, gold.to(logits.device).unsqueeze(-1)).squeeze(-1)
            combined = probs if combined is None else combined.add_(probs)
    if len(logits_fns) > 1:
        combined = combined.div_(len(logits_fns)).log_()
    out = []
    for row, tokens in enumerate(rows):
        scores = combined[row, : len(tokens)]
        out.append(ScoredSequence(tokens, [float(s) for s in scores.tolist()],
                                  float(scores.sum() / len(tokens)) if tokens else float("nan")))
    return out


def check_length(tokens: Sequence[int], limit: int, what: str, number: int) -> None:
    if len(tokens) > limit:
        raise InputError(f"{what} {number} has {len(tokens)} tokens, more than the model's limit of {limit}; "
                         "shorten it")


def translation_logits(models: Sequence, sources: Sequence[Sequence[int]], pad: int = 1) -> list[LogitsFn]:
    """One teacher-forced logits function per translation model; sources are left-padded as fairseq does."""
    from fsmt_port.translation.translator import pad_left

    def make(model):
        def logits(prev: torch.Tensor, batch: list[int]) -> torch.Tensor:
            src = pad_left([list(sources[i]) for i in batch], pad).to(model.device)
            return model(src, decoder_input_ids=prev.to(model.device)).logits
        return logits
    return [make(m) for m in models]


def language_model_logits(models: Sequence) -> list[LogitsFn]:
    def make(model):
        def logits(prev: torch.Tensor, batch: list[int]) -> torch.Tensor:
            decoder = model.decoder
            return decoder.logits(decoder(prev.to(model.device), decoder.start()))
        return logits
    return [make(m) for m in models]


@torch.inference_mode()
def score_translations(models: Sequence, sources: Sequence[Sequence[int]], targets: Sequence[Sequence[int]],
                       batch_size: int = 32, progress=None) -> list[ScoredSequence]:
    """SequenceScorer over (source ids, target ids incl. ``</s>``) pairs, in input order."""
    if len(sources) != len(targets):
        raise InputError(f"{len(sources)} sources but {len(targets)} targets; give one target per source")
    limit = min(m.config.max_target_positions for m in models)
    for number, tokens in enumerate(targets, start=1):
        check_length(tokens, limit, "target", number)
    fns = translation_logits(models, sources)
    start = models[0].config.decoder_start_token_id
    return _in_batches(fns, targets, start, [max(len(s), len(t)) for s, t in zip(sources, targets)],
                       batch_size, progress)


@torch.inference_mode()
def score_language_model(models: Sequence, token_lists: Sequence[Sequence[int]], batch_size: int = 32,
                         progress=None) -> list[ScoredSequence]:
    """LM scores of token lists (no ``</s>`` appended: the caller decides, as fairseq's LM dataset)."""
    limit = min(m.config.max_target_positions for m in models)
    for number, tokens in enumerate(token_lists, start=1):
        check_length(tokens, limit, "text", number)
    fns = language_model_logits(models)
    return _in_batches(fns, token_lists, models[0].config.decoder_start_token_id,
                       [len(t) for t in token_lists], batch_size, progress)


def _in_batches(fns, targets, start, lengths, batch_size, progress) -> list[ScoredSequence]:
    from fsmt_port.translation.translator import make_batches

    results: list[ScoredSequence | None] = [None] * len(targets)
    for batch in make_batches(lengths, batch_size, None):
        for index, scored in zip(batch, target_scores(fns, targets, start, batch)):
            results[index] = scored
        if progress is not None:
            progress.update(len(batch))
    return results  # type: ignore[return-value]
