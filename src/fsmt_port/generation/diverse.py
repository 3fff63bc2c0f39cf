"""Diverse n-best searches: fairseq's ``DiverseBeamSearch`` and ``DiverseSiblingsSearch``.

Both store the PENALISED values as the hypotheses' cumulative scores (so
``positional_scores`` and ``score`` include the penalties and the n-best list is
ranked by them), exactly as fairseq does.
"""

from __future__ import annotations

import torch

from fsmt_port.generation.search import BeamSearch, Search, SearchBatch


class DiverseBeamSearch(Search):
    """Diverse beam search (Vijayakumar et al. 2016) with fairseq's cumulative diversity penalty.

    Beam slot ``i`` belongs to group ``i % groups``; each group takes a plain beam step
    (``num_beams / groups`` candidates) over its own slots. Before that, every token the
    earlier groups chose at THIS step has its log-prob lowered by
    ``strength * (1 + overlap)``, ``overlap`` being how many tokens the two groups shared
    at earlier steps. The overlap table is indexed by fairseq's sample ids
    (``sample["id"]``) after step 0 but written by row at step 0; we keep that quirk, so
    a row whose id differs from its position reads another row's step-0 overlap.
    """

    stateful = True
    order_dependent = True

    def __init__(self, vocab_size: int, groups: int, strength: float) -> None:
        self.groups = groups
        self.strength = strength
        self.beam = BeamSearch(vocab_size)
        self.overlap = torch.empty(0)
        self.sample_ids = torch.empty(0, dtype=torch.long)

    def begin(self, batch: SearchBatch) -> None:
        self.sample_ids = batch.sample_ids
        self.overlap = torch.empty(0)

    def prune(self, batch_idxs: torch.Tensor) -> None:
        self.sample_ids = self.sample_ids[batch_idxs]

    def step(self, step: int, lprobs: torch.Tensor, scores: torch.Tensor | None):
        sentences, beam, vocab = lprobs.shape
        groups = self.groups
        penalty = torch.zeros(sentences, vocab, dtype=lprobs.dtype, device=lprobs.device)
        chosen = torch.empty(sentences, beam // groups, groups, dtype=torch.long, device=lprobs.device)
        group_scores, group_beams = [], []
        for g in range(groups):
            lprobs_g = lprobs[:, g::groups, :]
            scores_g = scores[:, g::groups, :] if step > 0 else None
            if g > 0:
                penalty.zero_()
                earlier = chosen[:, :, :g]
                if step > 0:
                    weight = (1 + self.overlap[self.sample_ids, g, :g]).unsqueeze(1)
                else:
                    weight = torch.ones(sentences, 1, 1, device=lprobs.device)
                penalty.scatter_add_(1, earlier.reshape(sentences, -1),
                                     weight.expand(earlier.size()).reshape(sentences, -1).to(penalty))
                lprobs_g = torch.add(lprobs_g, penalty.unsqueeze(1), alpha=-self.strength)
            else:
                lprobs_g = lprobs_g.contiguous()
            cand_scores, cand_tokens, cand_beams = self.beam.step(step, lprobs_g, scores_g, candidate_multiple=1)
            group_scores.append(cand_scores)
            group_beams.append(cand_beams * groups + g)
            chosen[:, :, g] = cand_tokens
        overlap = torch.sum(chosen.unsqueeze(2).eq(chosen.unsqueeze(3)), dim=1) * 1.0  # discount 1.0: float
        if step == 0:
            self.overlap = overlap
        else:
            self.overlap[self.sample_ids] = self.overlap[self.sample_ids] * 1.0 + overlap
        return (torch.stack(group_scores, dim=2).view(sentences, -1), chosen.view(sentences, -1),
                torch.stack(group_beams, dim=2).view(sentences, -1))


class DiverseSiblingsSearch(Search):
    """Diverse siblings (Li et al. 2016, ``--diversity-rate``): after step 0, each beam's
    top ``2 * num_beams`` continuations lose ``rate * rank`` (rank 1, 2, ... in that beam's
    order) before the global top ``2 * num_beams`` is taken from the rewritten scores."""

    def __init__(self, vocab_size: int, rate: float) -> None:
        self.rate = rate
        self.beam = BeamSearch(vocab_size)

    def step(self, step: int, lprobs: torch.Tensor, scores: torch.Tensor | None):
        if step == 0:
            return self.beam.step(step, lprobs, scores)
        sentences, beam, vocab = lprobs.shape
        k = min(beam * 2, beam * vocab - 1)
        totals = lprobs + scores[:, :, step - 1].unsqueeze(-1)
        per_beam_scores, per_beam_tokens = torch.topk(totals, k, dim=2)  # (B, beam, k), each beam's own order
        per_beam_scores = per_beam_scores - torch.arange(1, k + 1, device=lprobs.device).to(lprobs) * self.rate
        cand_scores, flat = torch.topk(per_beam_scores.reshape(sentences, -1), k)
        return cand_scores, per_beam_tokens.reshape(sentences, -1).gather(1, flat), torch.div(
            flat, k, rounding_mode="trunc")
