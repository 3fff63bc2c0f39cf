"""fairseq's ``SequenceGenerator`` beam search, rebuilt around ``EnsembleDecoder``.

Semantics (identical to fairseq 0.12 unless noted):

* Decoding starts from ``</s>``; at every step the log-probs are float32
  log-softmax (ensembles: log of averaged probabilities), then ``<pad>`` is set
  to -inf, ``unk_penalty`` is subtracted from ``<unk>``, all tokens but ``</s>``
  are -inf once ``step >= max_len``, ``</s>`` is -inf while ``step < min_len``,
  and repeated n-grams are banned (fairseq's intended rule, see ``ngram.py``).
* ``max_len = min(int(max_len_a * src_len + max_len_b), max_target_positions - 1)``.
  fairseq uses the batch's padded source length; we use each sentence's own
  length so results never depend on batch composition (identical when
  ``max_len_a == 0``, the default).
* Each step proposes ``2 * num_beams`` candidates (``search.BeamSearch``).
  A candidate ending in ``</s>`` among the top ``num_beams`` is finalized with
  ``score = cumulative / (step + 1) ** length_penalty`` (the ``</s>`` counts in
  the length); the best ``num_beams`` live candidates continue.
* ``early_stopping=True`` (fairseq's behaviour): a sentence is done once
  ``num_beams`` hypotheses are final or ``max_len`` is reached.
  ``early_stopping=False`` (fairseq <= 0.7.2 ``--no-early-stop``; 0.8 made it a
  no-op): keep searching until no candidate can beat the recorded worst kept
  score, bounding its final score by ``cumulative / max_len ** length_penalty``;
  with 0.7.2's bookkeeping the first late finisher only records the worst, later
  better ones replace it.
* Finished sentences leave the batch; their rows leave every cache.
* Hypotheses are sorted by score, descending (``torch.sort``, as fairseq).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from fsmt_port.errors import ConfigError, InputError
from fsmt_port.generation.config import GenerationConfig
from fsmt_port.generation.ensemble import EnsembleDecoder, fusion_lm
from fsmt_port.generation.ngram import block_repeated_ngrams
from fsmt_port.generation.alignment import extract_alignment
from fsmt_port.generation.batch_order import hub_order
from fsmt_port.generation.modes import build_search, check_mode_inputs
from fsmt_port.generation.search import SearchBatch


@dataclass
class Hypothesis:
    tokens: torch.Tensor  # generated ids, ending with </s>, without the start token
    score: float  # cumulative log-prob / len(tokens) ** length_penalty
    positional_scores: torch.Tensor  # per token, incl. </s>
    alignment: list | None = None  # with print_alignment: hard [src, tgt] pairs or soft weight rows


@dataclass
class GenerateOutput:
    sequences: torch.Tensor  # (B * num_return_sequences, L): </s> + tokens, padded with <pad>
    hypotheses: list[list[Hypothesis]] = field(default_factory=list)  # per sentence, all finalized


class SequenceGenerator:
    def __init__(self, models: list, config: GenerationConfig, pad: int | None = None, eos: int | None = None,
                 unk: int | None = None, decoder: EnsembleDecoder | None = None) -> None:
        # ``decoder`` lets tests drive the search with scripted log-probs (then fairseq's ids are the default).
        self.decoder = decoder if decoder is not None else EnsembleDecoder(
            models, fusion_lm(config, models), config.lm_weight)
        self.config = config
        model_config = models[0].config if models else None
        self.pad = pad if pad is not None else getattr(model_config, "pad_token_id", 1)
        self.eos = eos if eos is not None else getattr(model_config, "eos_token_id", 2)
        self.unk = unk if unk is not None else getattr(model_config, "unk_token_id", 3)
        self.search = build_search(config, self.decoder.vocab_size, self.eos)
        self.decoder.temperature = config.temperature
        self.decoder.record_attention = config.print_alignment is not None
        if config.num_beams > self.decoder.vocab_size - 1:  # fairseq's limit: <pad> is never a candidate
            raise ConfigError(f"num_beams={config.num_beams} exceeds the target vocabulary "
                              f"({self.decoder.vocab_size} symbols, at most {self.decoder.vocab_size - 1} beams)")

    def max_lengths(self, src_lengths: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        limit = self.decoder.max_target_positions - 1
        lengths = [min(int(cfg.max_len_a * int(n) + cfg.max_len_b), limit) for n in src_lengths.tolist()]
        if any(cfg.min_len > n for n in lengths):
            raise ConfigError(f"min_len={cfg.min_len} exceeds the maximum output length {min(lengths)} "
                              "(max_len_a * src_len + max_len_b); lower min_len or raise max_len_b")
        return torch.tensor(lengths, dtype=torch.long)

    @torch.inference_mode()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 prefix_tokens: torch.Tensor | None = None, constraints: list[list[list[int]]] | None = None,
                 ) -> list[list[Hypothesis]]:
        """input_ids: (B, S) source ids ending in </s>, left- or right-padded with <pad>.

        ``prefix_tokens``: (B, k) target ids every hypothesis starts with (``<pad>`` = not forced
        from there on); ``constraints``: per row, its constraints' token-id sequences.
        Where results depend on row order (sampling, diverse beam search) the rows are decoded in
        the order fairseq's hub would batch them (``batch_order.py``); results come back in input order.
        """
        if input_ids.dim() != 2 or input_ids.size(0) == 0:
            raise InputError(f"input_ids must be a non-empty (batch, length) tensor, got shape {tuple(input_ids.shape)}")
        check_mode_inputs(self.config, input_ids.size(0), prefix_tokens, constraints, self.decoder.vocab_size,
                          self.pad, self.eos, self.unk)
        try:
            if not self.search.order_dependent:
                return self._generate(input_ids, attention_mask, prefix_tokens, constraints, None)
            real = input_ids.ne(self.pad) if attention_mask is None else attention_mask.bool() & input_ids.ne(self.pad)
            order = hub_order(real.sum(dim=1).tolist())
            rows = torch.tensor(order, device=input_ids.device)
            results = self._generate(
                input_ids[rows], None if attention_mask is None else attention_mask[rows],
                None if prefix_tokens is None else prefix_tokens[rows],
                None if constraints is None else [constraints[i] for i in order], rows)
        finally:  # the caches' buffers go back to their decoders' pools (a scripted test decoder has none)
            getattr(self.decoder, "release", lambda: None)()
        unsorted: list[list[Hypothesis]] = [[] for _ in order]
        for position, hypos in zip(order, results):
            unsorted[position] = hypos
        return unsorted

    def _generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                  prefix_tokens: torch.Tensor | None, constraints: list | None,
                  sample_ids: torch.Tensor | None) -> list[list[Hypothesis]]:
        real = input_ids.ne(self.pad) if attention_mask is None else attention_mask.bool() & input_ids.ne(self.pad)
        src_lengths = real.sum(dim=1)
        if bool((src_lengths == 0).any()):
            row = int((src_lengths == 0).nonzero()[0])
            raise InputError(f"input row {row} has no tokens; an empty sentence is encoded as [</s>] (id 2)")
        longest = int(src_lengths.max())
        if longest > self.decoder.max_source_positions:
            row = int(src_lengths.argmax())
            raise InputError(f"input row {row} has {longest} tokens, more than the model's "
                             f"max_source_positions={self.decoder.max_source_positions}; truncate it")
        cfg = self.config
        beam = cfg.num_beams
        bsz = input_ids.size(0)
        if cfg.match_source_len:  # fairseq: max_len = the batch's longest source (incl. </s>)
            max_lens = torch.full_like(src_lengths, int(src_lengths.max()))
            if cfg.min_len > int(src_lengths.max()):
                raise ConfigError(f"min_len={cfg.min_len} exceeds the longest source ({int(src_lengths.max())} "
                                  "tokens), which is the maximum output length with match_source_len")
        else:
            max_lens = self.max_lengths(src_lengths).to(input_ids.device)
        max_len = int(max_lens.max())
        device = input_ids.device
        if prefix_tokens is not None and prefix_tokens.size(1) > max_len:
            raise ConfigError(f"prefix_tokens has {prefix_tokens.size(1)} tokens, more than the maximum output "
                              f"length {max_len}; shorten the prefix or raise max_len_b")
        search = self.search
        if sample_ids is None:  # fairseq without sample ids: the row positions
            sample_ids = torch.arange(bsz, device=device)
        search.begin(SearchBatch(src_lengths, sample_ids, beam, constraints))
        if prefix_tokens is not None:
            prefix_tokens = prefix_tokens.to(device)
        src_rows = input_ids  # the batched source rows, for alignments (positions as batched)
        attn: torch.Tensor | None = None

        self.decoder.start(input_ids, attention_mask, beam)
        vocab = self.decoder.vocab_size
        scores = torch.zeros(bsz * beam, max_len + 1, device=device)
        tokens = torch.full((bsz * beam, max_len + 2), self.pad, dtype=torch.long, device=device)
        tokens[:, 0] = self.eos
        cands_to_ignore = torch.zeros(bsz, beam, dtype=torch.bool, device=device)
        finalized: list[list[dict]] = [[] for _ in range(bsz)]
        # early_stopping=False: per sentence, fairseq 0.7.2's recorded worst kept hypothesis (score, index)
        worst: list[tuple[float, int | None]] = [(-math.inf, None)] * bsz
        finished = [False] * bsz
        remaining = bsz
        cand_size = 2 * beam
        bbsz_offsets = (torch.arange(bsz, device=device) * beam).unsqueeze(1)
        cand_offsets = torch.arange(cand_size, device=device)
        sent_ids = torch.arange(bsz, device=device)  # original index of each live sentence
        row_max_lens = max_lens.repeat_interleave(beam)
        uniform_max_len = bool((max_lens == max_len).all())

        for step in range(max_len + 1):
            if step == 0 and beam > 1:
                # The beams of a sentence are identical before the first token (fairseq's search only
                # expands the first): decode one row per sentence; the caches keep one row per sentence
                # until the first reorder below.
                lprobs = self.decoder.step(tokens[::beam, :1]).repeat_interleave(beam, dim=0)
            else:
                lprobs = self.decoder.step(tokens[:, step: step + 1])
            # fairseq: NaN -> -inf. log_softmax turns any NaN/inf logit into a whole NaN row (its max
            # and sum propagate it), so one column tells whether the full pass is needed.
            if bool(lprobs[:, self.eos].isnan().any()):
                lprobs.nan_to_num_(nan=-math.inf, posinf=math.inf, neginf=-math.inf)
            lprobs[:, self.pad] = -math.inf
            if cfg.unk_penalty:
                lprobs[:, self.unk] -= cfg.unk_penalty
            if uniform_max_len:
                if step >= max_len:
                    lprobs[:, : self.eos] = -math.inf
                    lprobs[:, self.eos + 1:] = -math.inf
            else:
                at_limit = row_max_lens <= step
                if bool(at_limit.any()):
                    eos_column = lprobs[:, self.eos].clone()
                    lprobs[at_limit] = -math.inf
                    lprobs[:, self.eos] = eos_column
            if prefix_tokens is not None and step < prefix_tokens.size(1) and step < max_len:
                lprobs, tokens, scores = self._force_prefix(step, lprobs, tokens, scores, prefix_tokens)
            elif step < cfg.min_len:  # (fairseq: min_len is not applied while a prefix is forced)
                lprobs[:, self.eos] = -math.inf
            if attn is not None or self.decoder.record_attention:
                attn = self._record_attention(attn, step, beam, max_len)
            if cfg.no_repeat_ngram_size:
                block_repeated_ngrams(tokens, lprobs, step, cfg.no_repeat_ngram_size)

            if not cfg.early_stopping and step >= max_len:
                # fairseq 0.7.2 at max_len: every remaining row ends here, best </s> score first.
                eos_scores = lprobs[:, self.eos] + (scores[:, step - 1] if step else 0.0)
                eos_scores, order = torch.sort(eos_scores, descending=True)
                self._finalize(step, order, eos_scores, tokens, scores, finalized, finished, sent_ids, max_lens,
                               None, worst, src_lengths, attn, src_rows)
                break

            cand_scores, cand_indices, cand_beams = search.step(
                step, lprobs.view(bsz, -1, vocab), scores.view(bsz, beam, -1)[:, :, :step])
            cand_bbsz_idx = cand_beams + bbsz_offsets
            eos_mask = cand_indices.eq(self.eos)
            if cfg.early_stopping:  # fairseq >= 0.9's guards against -inf rows; 0.7.2 had neither
                eos_mask &= cand_scores.ne(-math.inf)
                eos_mask[:, :beam][cands_to_ignore] = False
            eos_bbsz_idx = torch.masked_select(cand_bbsz_idx[:, :beam], mask=eos_mask[:, :beam])

            finalized_sents: list[int] = []
            if eos_bbsz_idx.numel() > 0:
                eos_scores = torch.masked_select(cand_scores[:, :beam], mask=eos_mask[:, :beam])
                finalized_sents = self._finalize(step, eos_bbsz_idx, eos_scores, tokens, scores, finalized,
                                                 finished, sent_ids, max_lens, cand_scores, worst,
                                                 src_lengths, attn, src_rows)
                remaining -= len(finalized_sents)
            if remaining == 0:
                break
            if step >= max_len:
                if search.stop_on_max_len:  # beams still missing a constraint are never finalized
                    break
                raise RuntimeError("beam search ran past max_len")  # cannot happen otherwise

            rows_from = cand_bbsz_idx  # rows of the caches as they are now
            if finalized_sents:
                new_bsz = bsz - len(finalized_sents)
                keep = torch.ones(bsz, dtype=torch.bool, device=device)
                keep[finalized_sents] = False
                batch_idxs = torch.arange(bsz, device=device).masked_select(keep)
                eos_mask = eos_mask[batch_idxs]
                cand_beams = cand_beams[batch_idxs]
                rows_from = rows_from[batch_idxs]
                bbsz_offsets = bbsz_offsets[:new_bsz]
                cand_bbsz_idx = cand_beams + bbsz_offsets
                cand_scores = cand_scores[batch_idxs]
                cand_indices = cand_indices[batch_idxs]
                cands_to_ignore = cands_to_ignore[batch_idxs]
                scores = scores.view(bsz, -1)[batch_idxs].view(new_bsz * beam, -1)
                tokens = tokens.view(bsz, -1)[batch_idxs].view(new_bsz * beam, -1)
                sent_ids = sent_ids[batch_idxs]
                max_lens = max_lens[batch_idxs]
                src_lengths = src_lengths[batch_idxs]
                if prefix_tokens is not None:
                    prefix_tokens = prefix_tokens[batch_idxs]
                if attn is not None:
                    attn = attn.view(bsz, -1)[batch_idxs].view(new_bsz * beam, attn.size(1), -1)
                if search.stateful:
                    search.prune(batch_idxs)
                row_max_lens = max_lens.repeat_interleave(beam)
                bsz = new_bsz
            else:
                batch_idxs = None

            # Live candidates sort before finalized/ignored ones (+cand_size); keep the best `beam`.
            if cfg.early_stopping:
                eos_mask[:, :beam] = ~((~cands_to_ignore) & (~eos_mask[:, :beam]))
            active_mask = eos_mask.to(cand_offsets.dtype) * cand_size + cand_offsets[: eos_mask.size(1)]
            new_cands_to_ignore, active_hypos = torch.topk(active_mask, k=beam, dim=1, largest=False)
            cands_to_ignore = new_cands_to_ignore.ge(cand_size)[:, :beam]

            active_bbsz_idx = torch.gather(cand_bbsz_idx, 1, active_hypos).view(-1)
            active_scores = torch.gather(cand_scores, 1, active_hypos)
            tokens[:, : step + 1] = torch.index_select(tokens[:, : step + 1], 0, active_bbsz_idx)
            tokens.view(bsz, beam, -1)[:, :, step + 1] = torch.gather(cand_indices, 1, active_hypos)
            if step > 0:
                scores[:, :step] = torch.index_select(scores[:, :step], 0, active_bbsz_idx)
            scores.view(bsz, beam, -1)[:, :, step] = active_scores
            if search.stateful:
                search.select(active_hypos)
            if attn is not None:
                attn[:, :, : step + 2] = torch.index_select(attn[:, :, : step + 2], 0, active_bbsz_idx)
            cache_rows = torch.gather(rows_from, 1, active_hypos).view(-1)
            if step == 0 and beam > 1:  # the caches still have one row per sentence
                cache_rows = torch.div(cache_rows, beam, rounding_mode="trunc")
            self.decoder.reorder(cache_rows, batch_idxs)

        return [self._sorted(hypos) for hypos in finalized]

    def _force_prefix(self, step: int, lprobs: torch.Tensor, tokens: torch.Tensor, scores: torch.Tensor,
                      prefix_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """fairseq's ``_prefix_tokens``: only the prefix token keeps its log-prob (pad = not forced);
        a prefix ending in </s> makes every beam a copy of the first."""
        beam = self.config.num_beams
        forced = prefix_tokens[:, step].repeat_interleave(beam)
        forced_lprobs = lprobs.gather(-1, forced.unsqueeze(-1))
        mask = forced.ne(self.pad)
        lprobs[mask] = -math.inf
        lprobs[mask] = lprobs[mask].scatter(-1, forced[mask].unsqueeze(-1), forced_lprobs[mask])
        ends = forced.eq(self.eos)
        if bool(ends.any()):
            sentences = ends.view(-1, beam)[:, 0]
            tokens, scores, lprobs = (_copy_first_beam(t, sentences, beam) for t in (tokens, scores, lprobs))
        return lprobs, tokens, scores

    def _record_attention(self, attn: torch.Tensor | None, step: int, beam: int, max_len: int) -> torch.Tensor:
        """Store this step's attention (rows, S) in column ``step + 1`` of (rows, S, max_len + 2)."""
        current = self.decoder.attention
        if step == 0 and beam > 1:  # one row per sentence was decoded
            current = current.repeat_interleave(beam, dim=0)
        if attn is None:
            attn = current.new_empty(current.size(0), current.size(1), max_len + 2)
        attn[:, :, step + 1] = current
        return attn

    def _finalize(self, step: int, bbsz_idx: torch.Tensor, eos_scores: torch.Tensor, tokens: torch.Tensor,
                  scores: torch.Tensor, finalized: list, finished: list, sent_ids: torch.Tensor,
                  max_lens: torch.Tensor, cand_scores: torch.Tensor | None,
                  worst: list[tuple[float, int | None]], src_lengths: torch.Tensor, attn: torch.Tensor | None,
                  src_rows: torch.Tensor) -> list[int]:
        """Store hypotheses ending in </s> now; return the live-batch indices of sentences now done."""
        beam = self.config.num_beams
        tokens_clone = tokens.index_select(0, bbsz_idx)[:, 1: step + 2]
        tokens_clone[:, step] = self.eos
        pos_scores = scores.index_select(0, bbsz_idx)[:, : step + 1]
        pos_scores[:, step] = eos_scores
        pos_scores[:, 1:] = pos_scores[:, 1:] - pos_scores[:, :-1]
        norm_scores = eos_scores / (step + 1) ** self.config.length_penalty

        live_idx = torch.div(bbsz_idx, beam, rounding_mode="trunc")
        if self.config.match_source_len:  # ended after its own source length: fairseq scores it -inf
            norm_scores = torch.where(step > src_lengths.index_select(0, live_idx), -math.inf, norm_scores)
        live_list = live_idx.tolist()
        sent_list = sent_ids[live_idx].tolist()
        score_list = norm_scores.tolist()
        attn_clone = None if attn is None else attn.index_select(0, bbsz_idx)[:, :, 1: step + 2].cpu()
        for i, sent in enumerate(sent_list):
            hypo = {"tokens": tokens_clone[i], "score": score_list[i], "positional_scores": pos_scores[i],
                    "alignment": None}
            if attn_clone is not None:
                hypo["alignment"] = extract_alignment(self.config.print_alignment, attn_clone[i].t(),
                                                      src_rows[sent].cpu(), tokens_clone[i].cpu(), self.pad, self.eos)
            kept = finalized[sent]
            if len(kept) < beam:
                kept.append(hypo)
            elif not self.config.early_stopping and hypo["score"] > worst[sent][0]:
                if worst[sent][1] is not None:  # fairseq 0.7.2: the first late finisher only sets the worst
                    kept[worst[sent][1]] = hypo
                index = min(range(beam), key=lambda j: kept[j]["score"])
                worst[sent] = (kept[index]["score"], index)

        newly_finished: list[int] = []
        for live, sent in sorted(set(zip(live_list, sent_list)), key=lambda pair: pair[1]):
            if finished[sent]:
                continue
            if self._is_finished(step, live, sent, finalized, max_lens, cand_scores, worst):
                finished[sent] = True
                newly_finished.append(live)
        return newly_finished

    def _is_finished(self, step: int, live: int, sent: int, finalized: list, max_lens: torch.Tensor,
                     cand_scores: torch.Tensor | None, worst: list[tuple[float, int | None]]) -> bool:
        beam = self.config.num_beams
        if step >= int(max_lens[live]):
            return True
        if len(finalized[sent]) < beam:
            return False
        if self.config.early_stopping:
            return True
        # fairseq 0.7.2: every candidate counts (those ending in </s> too), in float32.
        best_possible = cand_scores[live].max() / int(max_lens[live]) ** self.config.length_penalty
        return bool(worst[sent][0] >= best_possible)

    @staticmethod
    def _sorted(hypos: list[dict]) -> list[Hypothesis]:
        order = torch.sort(torch.tensor([h["score"] for h in hypos]), descending=True)[1].tolist()
        return [Hypothesis(hypos[i]["tokens"], hypos[i]["score"], hypos[i]["positional_scores"],
                           hypos[i]["alignment"]) for i in order]


def _copy_first_beam(tensor: torch.Tensor, sentences: torch.Tensor, beam: int) -> torch.Tensor:
    """Rows of ``sentences`` (a mask over the batch) all become a copy of their first beam."""
    tensor = tensor.view(-1, beam, tensor.size(-1))
    tensor[sentences] = tensor[sentences][:, :1, :]
    return tensor.view(-1, tensor.size(-1))
