"""The output projection's column-major weight: same values, its own copy when tied, nothing else moved."""

from __future__ import annotations

import torch
from torch import nn

import golden
from fsmt_port import FSMTForConditionalGeneration
from fsmt_port.modeling.layout import COLUMN_MAJOR_MAX_IN


def test_only_the_small_output_projection_is_column_major(converted):
    model = FSMTForConditionalGeneration.from_pretrained(converted(golden.SMALL_MODEL))
    decoder = model.model.decoder
    assert model.config.decoder_embed_dim <= COLUMN_MAJOR_MAX_IN and model.config.share_all_embeddings
    projection, embedding = decoder.output_projection.weight, decoder.embed_tokens.weight
    assert projection.t().is_contiguous() and embedding.is_contiguous()  # GEMM reads columns, lookup rows
    assert projection is not embedding and torch.equal(projection, embedding)
    assert model.model.encoder.embed_tokens.weight is embedding
    others = [m.weight for m in model.modules() if isinstance(m, nn.Linear) and m is not decoder.output_projection]
    assert others and all(w.is_contiguous() for w in others)  # fairseq's own kernel everywhere else
