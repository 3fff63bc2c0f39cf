"""One beam-search step, exactly as fairseq's ``search.BeamSearch.step``.

Given per-hypothesis log-probs ``(sentences, beam, V)`` and the running scores,
propose ``2 * beam`` candidates per sentence: at step 0 only the first beam is
expanded (all beams are identical), afterwards the cumulative score is added
and the best ``2 * beam`` (token, parent) pairs over ``beam * V`` are taken.
Twice the beam so that, after candidates ending in ``</s>`` are set aside,
``beam`` live ones remain.
"""

from __future__ import annotations

import torch


class BeamSearch:
    def __init__(self, vocab_size: int) -> None:
        self.vocab_size = vocab_size

    def step(self, step: int, lprobs: torch.Tensor, scores: torch.Tensor | None,
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """lprobs: (B, beam, V); scores: (B, beam, step) cumulative scores so far.

        Returns (candidate scores, candidate token ids, candidate parent beams), each (B, 2*beam).
        """
        sentences, beam, vocab = lprobs.shape
        if step == 0:
            lprobs = lprobs[:, ::beam, :].contiguous()
        else:
            lprobs = lprobs + scores[:, :, step - 1].unsqueeze(-1)
        flat = lprobs.view(sentences, -1)
        # "- 1": never propose as many candidates as entries, so <pad> (always -inf) is never needed.
        top_scores, top_indices = torch.topk(flat, k=min(beam * 2, flat.size(1) - 1))
        beams = torch.div(top_indices, vocab, rounding_mode="trunc")
        return top_scores, top_indices.fmod(vocab), beams
