"""Beam search (fairseq-exact), greedy, n-best and ensembles.

``generate(models, input_ids, ...)`` is what ``FSMTForConditionalGeneration.generate``
calls (several models = an ensemble). Keyword names follow transformers; fairseq's
names are accepted too:

==============================  =========================  ============================
fsmt_port / HF name             fairseq name               meaning
==============================  =========================  ============================
``num_beams``                   ``beam``                   beam size (1 = greedy)
``length_penalty``              ``lenpen``                 score = sum / len ** lenpen
``num_return_sequences``        ``nbest``                  rows per input in ``sequences``
``unk_penalty``                 ``unkpen``                 subtracted from log p(<unk>)
``max_len_a``, ``max_len_b``    same                       max_len = a * src_len + b
``min_len``                     same                       </s> banned while step < min_len
``no_repeat_ngram_size``        same                       fairseq's intended rule
``early_stopping``              not ``--no-early-stop``    stop at num_beams finished (False: fairseq 0.7.2)
``do_sample``                   ``sampling``               sample instead of beam search
``top_k``                       ``sampling_topk``          sample among the k best
``top_p``                       ``sampling_topp``          sample in the nucleus
``temperature``, ``seed``       same                       logits / T; reproducible draws
``num_beam_groups``             ``diverse_beam_groups``    diverse beam search groups
``diversity_penalty``           ``diverse_beam_strength``  its penalty
(none)                          ``diversity_rate``         diverse siblings search
``prefix_tokens``               (``--prefix-size``)        forced first target tokens
``constraints``                 same                       lexical constraints
``print_alignment``             same                       hard/soft alignments
``match_source_len``            same                       output length = source length
==============================  =========================  ============================

The README's "Decoding modes" table says where each mode differs from fairseq, and why.
"""

from __future__ import annotations

import torch

from fsmt_port.errors import ConfigError, InputError
from fsmt_port.generation.config import FAIRSEQ_NAMES, HF_NAMES, GenerationConfig
from fsmt_port.generation.generator import GenerateOutput, Hypothesis, SequenceGenerator

__all__ = ["generate", "GenerateOutput", "Hypothesis", "SequenceGenerator", "resolve_generation_config"]


def resolve_generation_config(base: GenerationConfig, **kwargs) -> GenerationConfig:
    """Apply keyword overrides given with HF or fairseq names (``max_new_tokens`` = b with a = 0)."""
    renamed = {FAIRSEQ_NAMES.get(k, HF_NAMES.get(k, k)): v for k, v in kwargs.items() if v is not None}
    if renamed.get("sampling_topk") == 0 and "top_k" in kwargs:  # transformers' "off"
        renamed["sampling_topk"] = -1
    if "max_new_tokens" in renamed:
        renamed["max_len_b"] = renamed.pop("max_new_tokens")
        renamed.setdefault("max_len_a", 0.0)
    return base.update(**renamed)


def generate(models: list, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
             generation_config: GenerationConfig | None = None, return_dict_in_generate: bool = False,
             prefix_tokens=None, prefix_size: int | None = None, constraints=None, constraint_ids=None, **kwargs):
    """Translate a padded batch of source ids. Returns ``sequences`` or a ``GenerateOutput``.

    ``sequences`` has the HF shape (batch * num_return_sequences, length): the
    ``</s>`` start token, the hypothesis, ``</s>``, then ``<pad>`` (a sentence with fewer
    hypotheses, possible with constraints, gets ``</s>``-only rows).

    ``prefix_tokens``: per input, the target ids every hypothesis starts with (a list of
    lists, or a (batch, k) tensor padded with ``<pad>``); ``prefix_size`` keeps their first k tokens
    (fairseq-generate's ``--prefix-size``). ``constraints``: per input, a list
    of constraints, each a list of target ids; or ``"ordered"``/``"unordered"`` (fairseq's
    option) with the lists in ``constraint_ids``. Lists alone mean ``"ordered"``.
    """
    if isinstance(constraints, str):
        kwargs["constraints"] = constraints
        constraints = constraint_ids
    elif constraint_ids is not None:
        raise ConfigError("give the constraint lists as constraints= or constraint_ids=, not both")
    if constraints is not None and kwargs.get("constraints") is None:
        base = generation_config or models[0].generation_config
        kwargs["constraints"] = base.constraints or "ordered"
    config = resolve_generation_config(generation_config or models[0].generation_config, **kwargs)
    device = models[0].device
    input_ids = input_ids.to(device)
    if attention_mask is not None:
        attention_mask = attention_mask.to(device)
    if prefix_size is not None and (prefix_tokens is None or prefix_size < 1):
        raise ConfigError("prefix_size needs prefix_tokens to cut and must be >= 1 (fairseq cuts the reference)")
    if prefix_tokens is not None:
        prefix_tokens = as_prefix_tensor(prefix_tokens)[:, :prefix_size].to(device)
    hypotheses = SequenceGenerator(models, config).generate(input_ids, attention_mask, prefix_tokens, constraints)
    rows = []
    for hypos in hypotheses:
        kept = [h.tokens for h in hypos[: config.num_return_sequences]]
        rows += kept + [torch.tensor([2])] * (config.num_return_sequences - len(kept))
    width = 1 + max(len(r) for r in rows)
    sequences = torch.full((len(rows), width), models[0].config.pad_token_id, dtype=torch.long)
    sequences[:, 0] = models[0].config.decoder_start_token_id
    for index, row in enumerate(rows):
        sequences[index, 1: 1 + len(row)] = row.cpu()
    if return_dict_in_generate:
        return GenerateOutput(sequences, hypotheses)
    return sequences


def as_prefix_tensor(prefix_tokens) -> torch.Tensor:
    """Per-input prefixes (list of id lists, possibly ragged) -> (batch, k), right-padded with <pad>."""
    if isinstance(prefix_tokens, torch.Tensor):
        return prefix_tokens.long()
    rows = [list(map(int, row)) for row in prefix_tokens]
    width = max((len(r) for r in rows), default=0)
    if width == 0:
        raise InputError("prefix_tokens are all empty; give at least one token, or no prefix_tokens")
    return torch.tensor([r + [1] * (width - len(r)) for r in rows], dtype=torch.long)
