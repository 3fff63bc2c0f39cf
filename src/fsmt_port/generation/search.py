"""One beam-search step, exactly as fairseq's ``search.BeamSearch.step``.

Given per-hypothesis log-probs ``(sentences, beam, V)`` and the running scores,
propose ``2 * beam`` candidates per sentence: at step 0 only the first beam is
expanded (all beams are identical), afterwards the cumulative score is added
and the best ``2 * beam`` (token, parent) pairs over ``beam * V`` are taken.
Twice the beam so that, after candidates ending in ``</s>`` are set aside,
``beam`` live ones remain.

The top-k over ``beam * V`` values is found without materialising
``lprobs + score`` and without a top-k over every entry (the most expensive
step of a small model's search): each hypothesis' vocabulary is cut into
chunks of ``CHUNK`` tokens, one vectorised pass takes every chunk's maximum,
and only the ``k`` chunks with the best ``maximum + score`` can hold the best
``k`` entries (any other chunk is beaten by ``k`` chunk maxima). The entries of
those chunks, plus each row's last ``V % CHUNK`` tokens, are scored exactly as
fairseq scores them (``lprobs + score`` in float32) and ranked. Same values,
same order; only among exactly equal scores may the pick differ, where
``torch.topk``'s own order is unspecified. With at most ``DIRECT_MAX_ROWS``
hypotheses in the batch (batch-1 decoding) fairseq's own top-k over the
materialised scores is cheaper than those ~20 small ops, and is used.

Every decoding mode is a ``Search`` with this ``step``; the other modes live in
``sampling.py``, ``diverse.py`` and ``constrained.py`` and share the generator loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class SearchBatch:
    """What a search may need to know about the batch it decodes (fairseq passes these piecemeal)."""

    src_lengths: torch.Tensor  # (B,) source tokens incl. </s>, as fairseq's ``src_lengths``
    sample_ids: torch.Tensor  # (B,) fairseq's ``sample["id"]``: each row's position in the caller's list
    beam: int
    constraints: list[list[list[int]]] | None = None  # per row: its constraints' token ids


class Search:
    """One search step: ``step(step, lprobs (B, beam, V), scores (B, beam, step))`` returns
    candidate (scores, tokens, parent beams), best first.

    A ``stateful`` search also follows the batch: ``begin`` before the first step, ``prune``
    when sentences leave the batch, ``select`` when the generator keeps candidates
    ``active_hypos`` (B, beam) as the new beams. Plain beam search is stateless, so the
    generator's default path makes no such calls.
    """

    stateful = False
    order_dependent = False  # results depend on row order: rows are put in fairseq's hub order
    stop_on_max_len = False  # a sentence may reach max_len with no hypothesis to finalize (fairseq's name)

    def begin(self, batch: SearchBatch) -> None:
        pass

    def prune(self, batch_idxs: torch.Tensor) -> None:
        pass

    def select(self, active_hypos: torch.Tensor) -> None:
        pass


class BeamSearch(Search):
    CHUNK = 128
    DIRECT_MAX_ROWS = 8

    def __init__(self, vocab_size: int) -> None:
        self.vocab_size = vocab_size

    def step(self, step: int, lprobs: torch.Tensor, scores: torch.Tensor | None, candidate_multiple: int = 2,
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """lprobs: (B, beam, V); scores: (B, beam, step) cumulative scores so far.

        Returns (candidate scores, candidate token ids, candidate parent beams), each
        (B, candidate_multiple * beam), best first.
        """
        sentences, beam, vocab = lprobs.shape
        if step == 0:  # all beams are identical: expand the first only
            lprobs = lprobs[:, :1, :]
        rows = lprobs.size(1)
        offset = None if step == 0 else scores[:, :, step - 1]  # (B, rows)
        # "- 1": never propose as many candidates as entries, so <pad> (always -inf) is never needed.
        k = min(beam * candidate_multiple, rows * vocab - 1)
        if sentences * rows <= self.DIRECT_MAX_ROWS:  # fairseq's own formulation
            values = lprobs if offset is None else lprobs + offset.unsqueeze(-1)
            top_scores, top_indices = torch.topk(values.reshape(sentences, rows * vocab), k)
            return top_scores, top_indices.fmod(vocab), torch.div(top_indices, vocab, rounding_mode="trunc")
        chunks = vocab // self.CHUNK
        if rows * chunks < k:
            chunks = 0
        body = chunks * self.CHUNK
        device = lprobs.device
        candidates = []  # flat indices (row * V + token) into the sentence's (rows * V) entries
        if chunks:
            maxima = lprobs[..., :body].reshape(sentences, rows, chunks, self.CHUNK).amax(dim=-1)
            if offset is not None:
                maxima = maxima + offset.unsqueeze(-1)
            best = torch.topk(maxima.view(sentences, -1), k, sorted=False).indices  # (B, k) chunk ids
            start = torch.div(best, chunks, rounding_mode="trunc") * vocab + (best % chunks) * self.CHUNK
            candidates.append((start.unsqueeze(-1) + torch.arange(self.CHUNK, device=device)).view(sentences, -1))
        if body < vocab:
            tail = torch.arange(rows, device=device).unsqueeze(-1) * vocab + torch.arange(body, vocab, device=device)
            candidates.append(tail.view(1, -1).expand(sentences, -1))
        index = torch.cat(candidates, dim=1) if len(candidates) > 1 else candidates[0]
        values = lprobs.reshape(sentences, rows * vocab).gather(1, index)
        if offset is not None:
            values = values + offset.gather(1, torch.div(index, vocab, rounding_mode="trunc"))
        top_scores, picked = torch.topk(values, k)
        top_indices = index.gather(1, picked)
        beams = torch.div(top_indices, vocab, rounding_mode="trunc")
        return top_scores, top_indices.fmod(vocab), beams


class SourceLengthSearch(Search):
    """``match_source_len``: fairseq's ``LengthConstrainedBeamSearch(1, 0, 1, 0)``.

    ``</s>`` is banned while ``step < src_len`` and gets log-prob 0 once ``step >= src_len``
    (``src_len`` counts the source ``</s>``); the generator sets ``max_len`` to the batch's
    longest source and scores hypotheses that end after their own ``src_len`` as -inf.
    """

    stateful = True

    def __init__(self, vocab_size: int, eos: int) -> None:
        self.beam = BeamSearch(vocab_size)
        self.eos = eos
        self.src_lengths = torch.empty(0, dtype=torch.long)

    def begin(self, batch: SearchBatch) -> None:
        self.src_lengths = batch.src_lengths

    def prune(self, batch_idxs: torch.Tensor) -> None:
        self.src_lengths = self.src_lengths[batch_idxs]

    def step(self, step: int, lprobs: torch.Tensor, scores: torch.Tensor | None):
        lprobs[step < self.src_lengths, :, self.eos] = -math.inf
        lprobs[step >= self.src_lengths, :, self.eos] = 0
        return self.beam.step(step, lprobs, scores)
