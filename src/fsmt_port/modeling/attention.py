"""Multi-head attention through ``scaled_dot_product_attention``.

Self-attention uses one fused q/k/v projection; cross-attention projects the
encoder output to keys/values once per source sentence (``project_memory``) and
shares them across that sentence's beams by folding the beams into the query
length, so beams never copy encoder keys/values (fairseq's "beamable mm").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fsmt_port.modeling.linear import Linear


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, T, H*hd) -> (B, H, T, hd)."""
    batch, length, dim = x.shape
    return x.view(batch, length, heads, dim // heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, hd) -> (B, T, H*hd)."""
    batch, heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * head_dim)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv_proj = Linear(dim, 3 * dim)  # rows: q, k, v (fairseq in_proj order)
        self.out_proj = Linear(dim, dim)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None, causal: bool = False,
                cache=None, layer: int = 0) -> torch.Tensor:
        """x: (B, T, D). key_mask: additive (B, 1, 1, T) mask or None. cache: decoder KV cache."""
        qkv = self.qkv_proj(x)
        dim = qkv.size(-1) // 3
        q = _split_heads(qkv[..., :dim], self.heads)
        if cache is None:
            k, v = (_split_heads(t, self.heads) for t in qkv[..., dim:].chunk(2, dim=-1))
        else:  # the cache stores this step's keys/values and returns all of them
            k, v = cache.append_self(layer, qkv[..., dim:], self.heads)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask, is_causal=causal and q.size(2) > 1)
        return self.out_proj(_merge_heads(out))


class CrossAttention(nn.Module):
    def __init__(self, dim: int, memory_dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q_proj = Linear(dim, dim)
        self.kv_proj = Linear(memory_dim, 2 * dim)  # rows: k, v
        self.out_proj = Linear(dim, dim)

    def project_memory(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder output (S_batch, S, E) -> keys, values (S_batch, H, S, hd), once per sentence."""
        k, v = self.kv_proj(memory).chunk(2, dim=-1)
        return _split_heads(k.contiguous(), self.heads), _split_heads(v.contiguous(), self.heads)

    def forward(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                memory_mask: torch.Tensor | None, record=None) -> torch.Tensor:
        """x: (S_batch*group, T, D) with each sentence's rows contiguous; k, v: (S_batch, H, S, hd).

        ``record``: an object whose ``attention`` receives the weights averaged over heads,
        (rows, T, S), for alignments; the output is computed the same way either way.
        """
        rows, length, dim = x.shape
        sentences = k.size(0)
        q = _split_heads(self.q_proj(x).view(sentences, (rows // sentences) * length, dim), self.heads)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=memory_mask)
        if record is not None:
            record.attention = self.weights(q, k, memory_mask).view(rows, length, -1)
        return self.out_proj(_merge_heads(out).view(rows, length, dim))

    @staticmethod
    def weights(q: torch.Tensor, k: torch.Tensor, memory_mask: torch.Tensor | None) -> torch.Tensor:
        """fairseq's attention probabilities, mean over heads: softmax((q * hd^-0.5) k^T + mask) in fp32."""
        return _fairseq_weights(q, k, memory_mask)


def _fairseq_weights(q: torch.Tensor, k: torch.Tensor, memory_mask: torch.Tensor | None) -> torch.Tensor:
    """(sentences, H, G*T, hd) x (sentences, H, S, hd) -> (sentences, G*T, S) with fairseq's kernel shapes:
    one (T=1) bmm row per (beam row, head), softmax in fp32, then the mean over heads of the
    (H, rows, T, S) view, so the last float bits are fairseq's too."""
    sentences, heads, rows_per_sentence, head_dim = q.shape
    source = k.size(2)
    q = (q * head_dim ** -0.5).permute(0, 2, 1, 3).reshape(-1, heads, 1, head_dim)  # (rows, H, 1, hd)
    rows = q.size(0)
    k = k.unsqueeze(1).expand(sentences, rows_per_sentence, heads, source, head_dim).reshape(rows * heads, source,
                                                                                             head_dim)
    scores = torch.bmm(q.reshape(rows * heads, 1, head_dim), k.transpose(1, 2)).view(rows, heads, 1, source)
    if memory_mask is not None:
        mask = memory_mask.unsqueeze(1).expand(sentences, rows_per_sentence, 1, 1, source).reshape(rows, 1, 1, source)
        scores = scores + mask
    weights = torch.softmax(scores.float(), dim=-1)
    return weights.transpose(1, 0).mean(dim=0).view(sentences, rows_per_sentence, source)
