"""Positional embeddings exactly as fairseq computes them.

Positions start at ``padding_idx + 1`` and skip padding (``make_positions``), so a
left-padded sentence gets the same positions as the unpadded one. Sinusoidal
tables are computed, never stored: they are not in ``model.safetensors``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def make_positions(tokens: torch.Tensor, padding_idx: int) -> torch.Tensor:
    """fairseq ``utils.make_positions``: 1-based positions offset by padding_idx; pads get padding_idx."""
    mask = tokens.ne(padding_idx).int()
    return (torch.cumsum(mask, dim=1).type_as(mask) * mask).long() + padding_idx


def sinusoidal_table(num_embeddings: int, dim: int, padding_idx: int) -> torch.Tensor:
    """fairseq's table: sin half then cos half (tensor2tensor layout), padding row zero."""
    half_dim = dim // 2
    scale = math.log(10000) / (half_dim - 1)
    freqs = torch.exp(torch.arange(half_dim, dtype=torch.float) * -scale)
    angles = torch.arange(num_embeddings, dtype=torch.float).unsqueeze(1) * freqs.unsqueeze(0)
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1).view(num_embeddings, -1)
    if dim % 2 == 1:
        table = torch.cat([table, torch.zeros(num_embeddings, 1)], dim=1)
    table[padding_idx, :] = 0
    return table


class SinusoidalPositions(nn.Module):
    """Computed positions; the table is a non-persistent buffer that grows on demand."""

    def __init__(self, dim: int, padding_idx: int, init_size: int) -> None:
        super().__init__()
        self.dim = dim
        self.padding_idx = padding_idx
        table = torch.empty(init_size, dim)
        if not table.is_meta:  # on meta (every load) ``materialize`` computes it, without meta's slow decompositions
            table = sinusoidal_table(init_size, dim, padding_idx)
        self.register_buffer("table", table, persistent=False)

    def materialize(self, dtype: torch.dtype) -> None:
        """(Re)compute the table on the CPU after the module was built on the meta device."""
        if self.table.is_meta:
            self.table = sinusoidal_table(self.table.size(0), self.dim, self.padding_idx).to(dtype)

    def lookup(self, positions: torch.Tensor) -> torch.Tensor:
        self._ensure(int(positions.max()) + 1 if positions.numel() else 0)
        return self.table[positions]

    def span(self, start: int, length: int) -> torch.Tensor:
        """The embeddings of positions ``start .. start + length - 1``: (length, dim), a view."""
        self._ensure(start + length)
        return self.table[start: start + length]

    def _ensure(self, size: int) -> None:
        if size > self.table.size(0):
            self.table = sinusoidal_table(size, self.dim, self.padding_idx).to(self.table)


class LearnedPositions(nn.Module):
    """fairseq ``LearnedPositionalEmbedding``: a trained table of max_positions + padding_idx + 1 rows."""

    def __init__(self, num_embeddings: int, dim: int, padding_idx: int) -> None:
        super().__init__()
        self.padding_idx = padding_idx
        self.weight = nn.Parameter(torch.zeros(num_embeddings, dim))

    def lookup(self, positions: torch.Tensor) -> torch.Tensor:
        return nn.functional.embedding(positions, self.weight, self.padding_idx)

    def span(self, start: int, length: int) -> torch.Tensor:
        """The embeddings of positions ``start .. start + length - 1``: (length, dim), a view."""
        if start + length > self.weight.size(0):
            raise IndexError(f"position {start + length - 1} is beyond the {self.weight.size(0)} learned positions")
        return self.weight[start: start + length]


def build_positions(learned: bool, max_positions: int, dim: int, padding_idx: int) -> nn.Module:
    num_embeddings = max_positions + padding_idx + 1
    if learned:
        return LearnedPositions(num_embeddings, dim, padding_idx)
    return SinusoidalPositions(dim, padding_idx, num_embeddings)
