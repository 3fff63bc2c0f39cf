"""Sampling: fairseq's ``search.Sampling`` (``--sampling --sampling-topk/--sampling-topp``).

Each beam slot is an independent sample path. The draws consume torch's RNG
exactly as fairseq does, so the same seed gives the same tokens:

* step 0: ``torch.multinomial(probs (B, V'), beam, replacement=True)``, all
  ``beam`` samples from the first beam's row (all beams are equal then);
* later: ``torch.multinomial(probs (B * beam, V'), 1, replacement=True)``;
* ``probs`` are ``exp(lprobs)`` over the whole vocabulary, over the top-k
  (``lprobs.topk(k)``), or over the nucleus (descending sort, every token whose
  cumulative probability before it is below ``p``, plus one), zero elsewhere;
  never renormalised (``multinomial`` normalises internally).

The candidate's score is ``log(exp(lprob))`` of the drawn token (float32 round
trip), the model's log-prob at the temperature, not renormalised over top-k/p.
"""

from __future__ import annotations

import torch

from fsmt_port.generation.search import Search, SearchBatch


class Sampling(Search):
    order_dependent = True  # draws are consumed row by row: rows follow fairseq's hub order

    def __init__(self, topk: int = -1, topp: float = -1.0, seed: int | None = None,
                 rng: torch.Generator | None = None) -> None:
        self.topk = topk
        self.topp = topp
        self.seed = seed  # a private generator seeded with it, on the batch's device
        self.rng = rng  # None (and no seed): torch's global generator, what fairseq uses
        self.started = False

    def begin(self, batch: SearchBatch) -> None:
        """The first batch of a call first draws what fairseq's hub draws before it decodes: the
        int64 base seed of the ``DataLoader`` iterator that batches its sentences."""
        if self.started:
            return
        device = batch.src_lengths.device
        if self.rng is None and self.seed is not None:
            self.rng = torch.Generator(device=device).manual_seed(self.seed)
        torch.empty((), dtype=torch.int64, device=device).random_(generator=self.rng)
        self.started = True

    def nucleus(self, lprobs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(probabilities with everything outside the top-p set zeroed, their token ids),
        both cut to the widest row's set."""
        sorted_probs, sorted_ids = lprobs.exp().sort(descending=True)
        inside = sorted_probs.cumsum(dim=2).lt(self.topp)
        last = inside.cumsum(dim=2)[:, :, -1:].clamp_(0, inside.size(2) - 1)  # one more token than "< p"
        inside = inside.scatter_(2, last, True)
        width = int(last.max()) + 1
        return sorted_probs[:, :, :width].masked_fill_(~inside[:, :, :width], 0), sorted_ids[:, :, :width]

    def step(self, step: int, lprobs: torch.Tensor, scores: torch.Tensor | None):
        sentences, beam, _ = lprobs.shape
        if step == 0:
            lprobs = lprobs[:, :1, :]
        token_ids = None
        if self.topp > 0:
            probs, token_ids = self.nucleus(lprobs)
        elif self.topk > 0:
            top, token_ids = lprobs.topk(self.topk)
            probs = top.exp()
        else:
            probs = lprobs.exp()
        if step == 0:
            drawn = torch.multinomial(probs.reshape(sentences, -1), beam, replacement=True, generator=self.rng)
            probs = probs.expand(sentences, beam, -1)
        else:
            drawn = torch.multinomial(probs.reshape(sentences * beam, -1), 1, replacement=True, generator=self.rng)
        drawn = drawn.view(sentences, beam)
        cand_scores = torch.gather(probs, 2, drawn.unsqueeze(-1)).log_().view(sentences, -1)
        if token_ids is not None:
            drawn = torch.gather(token_ids.expand(sentences, beam, -1), 2, drawn.unsqueeze(-1)).squeeze(2)
        if step == 0:
            beams = drawn.new_zeros(sentences, beam)
        else:
            beams = torch.arange(beam, device=drawn.device).repeat(sentences, 1)
            cand_scores.add_(scores[:, :, step - 1])
        return cand_scores, drawn, beams
