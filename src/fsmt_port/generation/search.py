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
``torch.topk``'s own order is unspecified.
"""

from __future__ import annotations

import torch


class BeamSearch:
    CHUNK = 128

    def __init__(self, vocab_size: int) -> None:
        self.vocab_size = vocab_size

    def step(self, step: int, lprobs: torch.Tensor, scores: torch.Tensor | None,
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """lprobs: (B, beam, V); scores: (B, beam, step) cumulative scores so far.

        Returns (candidate scores, candidate token ids, candidate parent beams), each (B, 2*beam),
        best first.
        """
        sentences, beam, vocab = lprobs.shape
        if step == 0:  # all beams are identical: expand the first only
            lprobs = lprobs[:, :1, :]
        rows = lprobs.size(1)
        offset = None if step == 0 else scores[:, :, step - 1]  # (B, rows)
        # "- 1": never propose as many candidates as entries, so <pad> (always -inf) is never needed.
        k = min(beam * 2, rows * vocab - 1)
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
