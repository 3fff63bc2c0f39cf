"""``no_repeat_ngram_size``: fairseq's intended rule, not its CPU behaviour.

Before choosing the token at ``step``, ban every token that would complete an
n-gram already present in ``tokens[0..step]`` (position 0 is the ``</s>`` the
decoder starts from). This is fairseq 0.10's dictionary implementation and its
CUDA kernel. fairseq >= 0.12 on CPU reads the n-gram from the wrong end of its
buffer and bans nothing (fairseq issues #4709, #5206); we do not copy that bug.
"""

from __future__ import annotations

import math

import torch


def block_repeated_ngrams(tokens: torch.Tensor, lprobs: torch.Tensor, step: int, n: int) -> torch.Tensor:
    """tokens: (rows, >= step+1) generated so far; lprobs: (rows, V), modified in place."""
    if n <= 0 or step + 2 - n < 0:
        return lprobs
    history = tokens[:, : step + 1]  # n >= 2: GenerationConfig refuses 1
    if history.size(1) < n:  # no complete n-gram yet
        return lprobs
    windows = history.unfold(1, n, 1)  # (rows, step+2-n, n): every n-gram so far
    current = history[:, step + 2 - n:]  # the last n-1 tokens: the prefix being continued
    hits = (windows[:, :, : n - 1] == current.unsqueeze(1)).all(dim=2)  # (rows, windows)
    if not bool(hits.any()):
        return lprobs
    rows, cols = hits.nonzero(as_tuple=True)
    lprobs[rows, windows[rows, cols, n - 1]] = -math.inf
    return lprobs
