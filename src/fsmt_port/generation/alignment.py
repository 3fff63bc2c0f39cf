"""Alignments from the decoder's attention (``print_alignment``), as fairseq's
``SequenceGeneratorWithAlignment`` extracts them.

The attention is the one recorded while decoding: the last decoder layer's
encoder attention, averaged over heads (and over an ensemble's models), one row
per generated token including the final ``</s>``, one column per position of
the source row as it was batched.

* hard (``utils.extract_hard_alignment``): ``[src, tgt]`` pairs, one per non-EOS
  target token in target order; ``src`` is the argmax over source positions
  other than ``<pad>`` and ``</s>``. Both are 0-based positions among the
  non-pad, non-EOS tokens (BPE pieces, not words): fairseq's ``A-`` pairs.
* soft (``utils.extract_soft_alignment``): per target token incl. ``</s>``, the
  weights of every non-pad source position incl. ``</s>``, as ``"{:.6f}"`` strings.
"""

from __future__ import annotations

import torch


def extract_alignment(kind: str, attention: torch.Tensor, source: torch.Tensor, target: torch.Tensor,
                      pad: int, eos: int) -> list:
    """attention: (target length, source row length); source: the batched (padded) source row;
    target: the hypothesis' tokens ending with </s>."""
    if kind == "soft":
        return _soft(attention, source, target, pad)
    return _hard(attention, source, target, pad, eos)


def _hard(attention: torch.Tensor, source: torch.Tensor, target: torch.Tensor, pad: int, eos: int) -> list:
    tgt_valid = (target.ne(pad) & target.ne(eos)).nonzero().squeeze(-1)
    src_invalid = (source.eq(pad) | source.eq(eos)).nonzero().squeeze(-1)
    if len(tgt_valid) == 0 or len(src_invalid) == len(source):
        return []
    weights = attention[tgt_valid]
    weights[:, src_invalid] = float("-inf")
    src_best = weights.max(dim=1)[1]
    src_word = _positions_among_tokens(source, pad, eos)
    tgt_word = _positions_among_tokens(target, pad, eos)
    return [[src_word[s], tgt_word[t]] for t, s in zip(tgt_valid.tolist(), src_best.tolist())]


def _soft(attention: torch.Tensor, source: torch.Tensor, target: torch.Tensor, pad: int) -> list:
    tgt_valid = target.ne(pad).nonzero()
    src_valid = source.ne(pad).nonzero().squeeze(-1)
    if len(tgt_valid) == 0 or len(src_valid) == 0:
        return []
    return [["{:.6f}".format(p) for p in row] for row in attention[tgt_valid, src_valid].tolist()]


def _positions_among_tokens(tokens: torch.Tensor, pad: int, eos: int) -> list[int]:
    """fairseq's token-to-word map minus one: each position's index among the tokens that are
    neither pad nor EOS (excluded positions repeat the previous index)."""
    out, count = [], 0
    for token in tokens.tolist():
        count += token not in (pad, eos)
        out.append(count - 1)
    return out
