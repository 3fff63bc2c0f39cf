"""Lexically constrained beam search: fairseq's ``LexicallyConstrainedBeamSearch``.

Post & Vilar (2018) with Hu et al. (2019)'s dynamic beam allocation. Each beam
slot carries a constraint state (``constraints.py``). Per step and sentence:

* ``</s>`` is banned (after step 0) for beams that have not met every constraint;
* candidates = the top ``2 * num_beams`` over the sentence, plus each beam's best
  token, plus each beam's possible next constraint tokens;
* candidates are sorted by (bank = constraint tokens met, score), duplicates
  dropped, and dealt round-robin across banks, most advanced bank first; the
  first ``2 * num_beams`` are the step's candidates.

Scores are the model's plain log-probs (constraint tokens get no bonus). Beams
that still miss a constraint at ``max_len`` are never finalized, so a sentence
can end with fewer than ``num_beams`` hypotheses (as in fairseq).
"""

from __future__ import annotations

import math

import torch

from fsmt_port.generation.constraints import initial_state
from fsmt_port.generation.search import Search, SearchBatch

BANK_WEIGHT = -100  # fairseq's MAX_SCORE: sort key = (distinct constraint tokens - bank) * -100 + score


class ConstrainedBeamSearch(Search):
    stateful = True
    stop_on_max_len = True  # a sentence whose beams all miss a constraint at max_len ends with none

    def __init__(self, vocab_size: int, eos: int, order: str) -> None:
        self.vocab_size, self.eos, self.order = vocab_size, eos, order
        self.states: list[list] = []  # per live sentence: per beam slot (or candidate) its state

    def begin(self, batch: SearchBatch) -> None:
        rows = batch.constraints or [[] for _ in range(int(batch.src_lengths.numel()))]
        self.states = [[initial_state(c, self.order)] * batch.beam for c in rows]

    def prune(self, batch_idxs: torch.Tensor) -> None:
        self.states = [self.states[i] for i in batch_idxs.tolist()]

    def select(self, active_hypos: torch.Tensor) -> None:
        self.states = [[states[i] for i in keep] for states, keep in zip(self.states, active_hypos.tolist())]

    def step(self, step: int, lprobs: torch.Tensor, scores: torch.Tensor | None):
        sentences, beam, vocab = lprobs.shape
        device = lprobs.device
        num_cands = min(beam * 2, lprobs.view(sentences, -1).size(1) - 1)
        if step > 0:
            unfinished = [s * beam + b for s, states in enumerate(self.states)
                          for b, state in enumerate(states) if not state.finished]
            if unfinished:
                lprobs.view(sentences * beam, -1)[torch.tensor(unfinished, device=device), self.eos] = -math.inf
            lprobs = lprobs + scores[:, :, step - 1].unsqueeze(-1)
        else:
            lprobs = lprobs[:, :1, :].contiguous()
        cand_scores, flat = torch.topk(lprobs.view(sentences, -1), num_cands)
        cand_beams = torch.div(flat, vocab, rounding_mode="trunc")
        cand_tokens = flat.fmod(vocab)
        if step > 0:  # each beam's own best continuation
            best_scores, best_tokens = torch.topk(lprobs.view(sentences * beam, -1), k=1, dim=1)
            cand_scores = torch.cat((cand_scores, best_scores.view(sentences, -1)), dim=1)
            cand_tokens = torch.cat((cand_tokens, best_tokens.view(sentences, -1)), dim=1)
            cand_beams = torch.cat((cand_beams, torch.arange(beam, device=device).repeat(sentences, 1)), dim=1)
        out_scores = torch.zeros(sentences, 2 * beam, device=device)
        out_tokens = torch.zeros(sentences, 2 * beam, dtype=torch.long, device=device)
        out_beams = torch.zeros(sentences, 2 * beam, dtype=torch.long, device=device)
        for s in range(sentences):
            picked_scores, picked_tokens, picked_beams, states = self._sentence(
                step, lprobs[s], self.states[s], cand_beams[s], cand_tokens[s], cand_scores[s], num_cands)
            out_scores[s], out_tokens[s], out_beams[s] = picked_scores, picked_tokens, picked_beams
            self.states[s] = states
        return out_scores, out_tokens, out_beams

    def _sentence(self, step: int, lprobs: torch.Tensor, states: list, beams: torch.Tensor, tokens: torch.Tensor,
                  scores: torch.Tensor, num_cands: int):
        """One sentence's candidates: add constraint tokens, sort by bank, dedupe, deal across banks."""
        device = lprobs.device
        for b, state in enumerate(states[:1] if step == 0 else states):  # step 0: one beam
            extra = torch.tensor(list(state.next_tokens()), dtype=torch.long, device=device)  # set order, as fairseq
            if extra.numel():
                tokens = torch.cat((tokens, extra))
                beams = torch.cat((beams, torch.full((extra.numel(),), b, dtype=torch.long, device=device)))
                scores = torch.cat((scores, lprobs[b].take(extra)))
        distinct = states[0].distinct_tokens
        cand_states = [states[b].advance(t) for b, t in zip(beams.tolist(), tokens.tolist())]
        banks = torch.tensor([state.bank for state in cand_states], device=device)
        order = ((distinct - banks) * BANK_WEIGHT + scores).sort(dim=0, descending=True)[1]
        scores, tokens, beams, banks = scores[order], tokens[order], beams[order], banks[order]
        cand_states = [cand_states[i] for i in order.tolist()]
        key = beams * (self.vocab_size + 1) + tokens  # duplicates are adjacent after the sort
        unique = torch.cat((key[-1:], key[:-1])) != key
        scores, tokens, beams, banks = scores[unique], tokens[unique], beams[unique], banks[unique]
        # fairseq drops states by index from position 1 on (never the first): same here
        position = 1
        for keep in unique.tolist()[1:]:
            if not keep:
                cand_states.pop(position)
            position += keep
        # round-robin across banks: rank r within its bank sorts after rank r-1 of every bank
        stride = len(banks) + 1
        stripes = torch.zeros_like(banks)
        rank, current = -1, int(banks[0])
        for i, bank in enumerate(banks.tolist()):
            rank = rank + 1 if bank == current else 0
            current = bank
            stripes[i] = distinct - bank + rank * stride
        order = stripes.sort(dim=0)[1]
        order_list = order.tolist()
        return (scores[order][:num_cands], tokens[order][:num_cands], beams[order][:num_cands],
                [cand_states[i] for i in order_list])
