"""fairseq's transformer encoder and decoder (``TransformerEncoder``/``TransformerDecoder``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fsmt_port.modeling.configuration import FSMTConfig
from fsmt_port.modeling.cache import DecoderCache, StoragePool
from fsmt_port.modeling.layers import DecoderLayer, EncoderLayer, embed_scale, token_embedding
from fsmt_port.modeling.linear import Linear
from fsmt_port.modeling.positions import build_positions, make_positions


@dataclass
class EncoderOutput:
    hidden: torch.Tensor  # (B, S, E)
    padding_mask: torch.Tensor  # (B, S) bool, True at <pad>


def _attend_mask(padding_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor | None:
    """(B, S) True-at-pad -> SDPA's additive (B, 1, 1, S) mask (0 / -inf), or None without padding.

    Additive rather than boolean: SDPA would convert a boolean mask to exactly this on
    every call (every layer, every decoding step).
    """
    if not bool(padding_mask.any()):
        return None
    mask = torch.zeros(padding_mask.shape, dtype=dtype, device=padding_mask.device)
    return mask.masked_fill_(padding_mask, float("-inf"))[:, None, None, :]


class _Stack(nn.Module):
    """What the encoder and decoder share: token + position embeddings (fairseq's input layers)."""

    def __init__(self, config: FSMTConfig, vocab_size: int, dim: int, learned_pos: bool, max_positions: int,
                 input_dim: int | None = None) -> None:
        super().__init__()
        input_dim = input_dim or dim
        self.padding_idx = config.pad_token_id
        self.embed_tokens = token_embedding(vocab_size, input_dim, config.pad_token_id)
        self.embed_scale = embed_scale(dim, config.scale_embedding)  # fairseq: sqrt of the layers' dim
        # fairseq's project_in_dim: embeddings wider than the layers (transformer_lm's decoder_input_dim)
        self.project_in_dim = Linear(input_dim, dim, bias=False) if input_dim != dim else None
        self.embed_positions = None if config.no_token_positional_embeddings else build_positions(
            learned_pos, max_positions, dim, config.pad_token_id)
        self.layernorm_embedding = nn.LayerNorm(dim, eps=config.layer_norm_eps) if config.layernorm_embedding else None

    def embed(self, tokens: torch.Tensor, first_position: int | None = None) -> torch.Tensor:
        """Scaled token embeddings plus positions: fairseq's padding-skipping positions, or (decoding
        after cached steps) the same consecutive positions from ``first_position`` for every row."""
        x = self.embed_scale * self.embed_tokens(tokens)
        if self.project_in_dim is not None:
            x = self.project_in_dim(x)
        if self.embed_positions is not None:
            if first_position is None:
                x = x + self.embed_positions.lookup(make_positions(tokens, self.padding_idx))
            else:  # a slice of the table, broadcast over the rows
                x = x + self.embed_positions.span(first_position, tokens.size(1))
        if self.layernorm_embedding is not None:
            x = self.layernorm_embedding(x)
        return x


class Encoder(_Stack):
    def __init__(self, config: FSMTConfig) -> None:
        dim = config.encoder_embed_dim
        super().__init__(config, config.src_vocab_size, dim, config.encoder_learned_pos, config.max_source_positions)
        self.layers = nn.ModuleList(
            EncoderLayer(dim, config.encoder_ffn_dim, config.encoder_attention_heads, config.activation_function,
                         config.encoder_normalize_before, config.layer_norm_eps)
            for _ in range(config.encoder_layers))
        self.layer_norm = nn.LayerNorm(dim, eps=config.layer_norm_eps) if config.encoder_final_layer_norm else None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> EncoderOutput:
        padding_mask = input_ids.eq(self.padding_idx)
        if attention_mask is not None:
            padding_mask = padding_mask | attention_mask.eq(0)
        x = self.embed(input_ids)
        key_mask = _attend_mask(padding_mask, x.dtype)
        for layer in self.layers:
            x = layer(x, key_mask)
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        return EncoderOutput(x, padding_mask)


class Decoder(_Stack):
    """fairseq's ``TransformerDecoder``: of a translation model, or (``config.decoder_cross_attention``
    false) of a ``transformer_lm``, whose layers have no cross-attention and whose embeddings may be
    wider than its layers (``project_in_dim``/``project_out_dim``)."""

    def __init__(self, config: FSMTConfig) -> None:
        dim, output_dim = config.decoder_embed_dim, config.decoder_output_dim
        super().__init__(config, config.tgt_vocab_size, dim, config.decoder_learned_pos, config.max_target_positions,
                         input_dim=config.decoder_input_dim)
        memory_dim = config.encoder_embed_dim if config.decoder_cross_attention else None
        self.layers = nn.ModuleList(
            DecoderLayer(dim, memory_dim, config.decoder_ffn_dim, config.decoder_attention_heads,
                         config.activation_function, config.decoder_normalize_before, config.layer_norm_eps)
            for _ in range(config.decoder_layers))
        self.layer_norm = nn.LayerNorm(dim, eps=config.layer_norm_eps) if config.decoder_final_layer_norm else None
        self.project_out_dim = Linear(dim, output_dim, bias=False) if output_dim != dim else None
        self.output_projection = Linear(output_dim, config.tgt_vocab_size, bias=False)
        self.cache_pool = StoragePool()  # self-attention cache storages reused across generate calls

    def start(self, encoder_out: EncoderOutput | None = None) -> DecoderCache:
        """A fresh cache: cross-attention keys/values computed once per source sentence (none for an LM)."""
        if encoder_out is None:
            return DecoderCache([], [], None, layers=len(self.layers), pool=self.cache_pool)
        memory_k, memory_v = [], []
        for layer in self.layers:
            k, v = layer.encoder_attn.project_memory(encoder_out.hidden)
            memory_k.append(k)
            memory_v.append(v)
        return DecoderCache(memory_k, memory_v, _attend_mask(encoder_out.padding_mask, encoder_out.hidden.dtype),
                            pool=self.cache_pool)

    def forward(self, prev_tokens: torch.Tensor, cache: DecoderCache) -> torch.Tensor:
        """prev_tokens: (rows, T) new target tokens after the ``cache.length`` cached ones.

        Returns the final hidden states (rows, T, D); ``logits`` projects them.
        """
        # fairseq's incremental positions: no padding inside generated prefixes
        x = self.embed(prev_tokens, None if cache.length == 0 else self.padding_idx + 1 + cache.length)
        for index, layer in enumerate(self.layers):
            memory_k = cache.memory_k[index] if cache.memory_k else None
            memory_v = cache.memory_v[index] if cache.memory_v else None
            x = layer(x, memory_k, memory_v, cache.memory_mask, cache, index)
        cache.advance(prev_tokens.size(1))
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        return x

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.project_out_dim is not None:
            hidden = self.project_out_dim(hidden)
        return self.output_projection(hidden)


class FSMTModel(nn.Module):
    """Encoder + decoder with fairseq's weight sharing."""

    def __init__(self, config: FSMTConfig) -> None:
        super().__init__()
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.tie_weights(config)

    def tie_weights(self, config: FSMTConfig) -> None:
        if config.share_all_embeddings:
            self.encoder.embed_tokens.weight = self.decoder.embed_tokens.weight
        if config.share_all_embeddings or config.share_decoder_input_output_embed:
            self.decoder.output_projection.weight = self.decoder.embed_tokens.weight
