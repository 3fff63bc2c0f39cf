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
==============================  =========================  ============================
"""

from __future__ import annotations

import torch

from fsmt_port.generation.config import FAIRSEQ_NAMES, GenerationConfig
from fsmt_port.generation.generator import GenerateOutput, Hypothesis, SequenceGenerator

__all__ = ["generate", "GenerateOutput", "Hypothesis", "SequenceGenerator", "resolve_generation_config"]


def resolve_generation_config(base: GenerationConfig, **kwargs) -> GenerationConfig:
    """Apply keyword overrides given with HF or fairseq names (``max_new_tokens`` = b with a = 0)."""
    renamed = {FAIRSEQ_NAMES.get(k, k): v for k, v in kwargs.items() if v is not None}
    if "max_new_tokens" in renamed:
        renamed["max_len_b"] = renamed.pop("max_new_tokens")
        renamed.setdefault("max_len_a", 0.0)
    return base.update(**renamed)


def generate(models: list, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
             generation_config: GenerationConfig | None = None, return_dict_in_generate: bool = False,
             **kwargs):
    """Translate a padded batch of source ids. Returns ``sequences`` or a ``GenerateOutput``.

    ``sequences`` has the HF shape (batch * num_return_sequences, length): the
    ``</s>`` start token, the hypothesis, ``</s>``, then ``<pad>``.
    """
    config = resolve_generation_config(generation_config or models[0].generation_config, **kwargs)
    device = models[0].device
    input_ids = input_ids.to(device)
    if attention_mask is not None:
        attention_mask = attention_mask.to(device)
    hypotheses = SequenceGenerator(models, config).generate(input_ids, attention_mask)
    rows = [h.tokens for hypos in hypotheses for h in hypos[: config.num_return_sequences]]
    width = 1 + max(len(r) for r in rows)
    sequences = torch.full((len(rows), width), models[0].config.pad_token_id, dtype=torch.long)
    sequences[:, 0] = models[0].config.decoder_start_token_id
    for index, row in enumerate(rows):
        sequences[index, 1: 1 + len(row)] = row.cpu()
    if return_dict_in_generate:
        return GenerateOutput(sequences, hypotheses)
    return sequences
