"""Encoder and decoder layers: fairseq's post-norm or pre-norm residual blocks."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fsmt_port.modeling.attention import CrossAttention, SelfAttention
from fsmt_port.modeling.linear import Linear


def _gelu_accurate(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


def _relu_squared(x: torch.Tensor) -> torch.Tensor:
    return F.relu(x).pow(2)


ACTIVATIONS = {
    "relu": torch.relu_,  # in place: the fc1 output is not needed afterwards
    "gelu": F.gelu,
    "gelu_accurate": _gelu_accurate,
    "gelu_fast": _gelu_accurate,
    "tanh": torch.tanh,
    "linear": lambda x: x,
    "swish": F.silu,
    "relu_squared": _relu_squared,
}


class EncoderLayer(nn.Module):
    def __init__(self, dim: int, ffn_dim: int, heads: int, activation: str, normalize_before: bool,
                 eps: float) -> None:
        super().__init__()
        self.normalize_before = normalize_before
        self.self_attn = SelfAttention(dim, heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim, eps=eps)
        self.fc1 = Linear(dim, ffn_dim)
        self.fc2 = Linear(ffn_dim, dim)
        self.activation = ACTIVATIONS[activation]
        self.final_layer_norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        x = _residual(x, self.self_attn_layer_norm, self.normalize_before,
                      lambda h: self.self_attn(h, key_mask=key_mask))
        return _residual(x, self.final_layer_norm, self.normalize_before, self.ffn)

    def ffn(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation(self.fc1(x)))


class DecoderLayer(nn.Module):
    """fairseq's ``TransformerDecoderLayer``; ``memory_dim=None`` is its ``no_encoder_attn``
    form (a language model's layer: self-attention and feed-forward only)."""

    def __init__(self, dim: int, memory_dim: int | None, ffn_dim: int, heads: int, activation: str,
                 normalize_before: bool, eps: float) -> None:
        super().__init__()
        self.normalize_before = normalize_before
        self.self_attn = SelfAttention(dim, heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim, eps=eps)
        self.encoder_attn = None if memory_dim is None else CrossAttention(dim, memory_dim, heads)
        self.encoder_attn_layer_norm = None if memory_dim is None else nn.LayerNorm(dim, eps=eps)
        self.fc1 = Linear(dim, ffn_dim)
        self.fc2 = Linear(ffn_dim, dim)
        self.activation = ACTIVATIONS[activation]
        self.final_layer_norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: torch.Tensor, memory_k: torch.Tensor | None, memory_v: torch.Tensor | None,
                memory_mask: torch.Tensor | None, cache, layer: int) -> torch.Tensor:
        x = _residual(x, self.self_attn_layer_norm, self.normalize_before,
                      lambda h: self.self_attn(h, causal=True, cache=cache, layer=layer))
        if self.encoder_attn is not None:
            record = cache if cache.record_attention and layer == cache.layers - 1 else None  # alignments
            x = _residual(x, self.encoder_attn_layer_norm, self.normalize_before,
                          lambda h: self.encoder_attn(h, memory_k, memory_v, memory_mask, record))
        return _residual(x, self.final_layer_norm, self.normalize_before, self.ffn)

    def ffn(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation(self.fc1(x)))


def _residual(x: torch.Tensor, norm: nn.LayerNorm, normalize_before: bool, block) -> torch.Tensor:
    """fairseq's block: pre-norm ``x + f(LN(x))`` or post-norm ``LN(x + f(x))``."""
    if normalize_before:
        return block(norm(x)).add_(x)  # x + f(...), in place on f's fresh output
    return norm(block(x).add_(x))


def embed_scale(dim: int, scale_embedding: bool) -> float:
    return math.sqrt(dim) if scale_embedding else 1.0


def token_embedding(vocab_size: int, dim: int, padding_idx: int) -> nn.Embedding:
    """fairseq's token embedding (normal init, zero <pad> row).

    Built on the meta device (every load), the init is skipped: ``normal_`` on
    meta goes through torch's decompositions, whose first use costs ~1.7 s of
    imports, for values the file replaces anyway.
    """
    weight = torch.empty(vocab_size, dim)
    if weight.device.type != "meta":
        nn.init.normal_(weight, mean=0.0, std=dim ** -0.5)
        with torch.no_grad():
            weight[padding_idx].zero_()
    return nn.Embedding(vocab_size, dim, padding_idx=padding_idx, _weight=weight)
