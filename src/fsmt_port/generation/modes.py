"""Which search a GenerationConfig runs, and the up-front checks of the per-sentence inputs
(prefixes, constraints) the modes take. fairseq's ``build_generator`` order: sampling,
diverse beam, match_source_len, diverse siblings, constraints, plain beam search."""

from __future__ import annotations

import torch

from fsmt_port.errors import ConfigError, InputError
from fsmt_port.generation.config import GenerationConfig
from fsmt_port.generation.constrained import ConstrainedBeamSearch
from fsmt_port.generation.diverse import DiverseBeamSearch, DiverseSiblingsSearch
from fsmt_port.generation.sampling import Sampling
from fsmt_port.generation.search import BeamSearch, Search, SourceLengthSearch


def build_search(config: GenerationConfig, vocab_size: int, eos: int) -> Search:
    if config.sampling:
        return Sampling(config.sampling_topk, config.sampling_topp, config.seed)
    if config.diverse_beam_groups > 0:
        return DiverseBeamSearch(vocab_size, config.diverse_beam_groups, config.diverse_beam_strength)
    if config.match_source_len:
        return SourceLengthSearch(vocab_size, eos)
    if config.diversity_rate >= 0:
        return DiverseSiblingsSearch(vocab_size, config.diversity_rate)
    if config.constraints is not None:
        return ConstrainedBeamSearch(vocab_size, eos, config.constraints)
    return BeamSearch(vocab_size)


def check_mode_inputs(config: GenerationConfig, rows: int, prefix_tokens: torch.Tensor | None,
                      constraints: list | None, vocab_size: int, pad: int, eos: int, unk: int) -> None:
    """One clear error before any decoding for prefixes and constraints that cannot work."""
    if prefix_tokens is not None:
        if prefix_tokens.dim() != 2 or prefix_tokens.size(0) != rows:
            raise InputError(f"prefix_tokens must be ({rows}, k): one row per input, got {tuple(prefix_tokens.shape)}")
        if prefix_tokens.numel() and (int(prefix_tokens.min()) < 0 or int(prefix_tokens.max()) >= vocab_size):
            raise InputError(f"prefix_tokens holds ids outside the target vocabulary [0, {vocab_size})")
    if constraints is None:
        if config.constraints is not None:  # fairseq's hub crashes here (TypeError on None)
            raise ConfigError(f"constraints={config.constraints!r} needs the constraints themselves: one list of "
                              "token-id sequences per input (API), or 'source<TAB>constraint...' lines (CLI)")
        return
    if config.constraints is None:
        raise ConfigError("constraints were given but the search does not use them; set constraints='ordered' "
                          "or 'unordered' (fairseq's --constraints), without sampling or diverse searches")
    if len(constraints) != rows:
        raise InputError(f"constraints: expected one list per input ({rows}), got {len(constraints)}")
    for row, sentence in enumerate(constraints):
        for number, constraint in enumerate(sentence):
            ids = list(constraint)
            if not ids:
                raise ConfigError(f"constraint {number} of input {row} is empty; a constraint needs at least one token")
            bad = [t for t in ids if not 0 <= int(t) < vocab_size or int(t) in (pad, eos, unk)]
            if bad:
                raise ConfigError(f"constraint {number} of input {row} holds ids {bad} that are not target-vocabulary "
                                  f"words (<unk>/<pad>/</s> or outside [0, {vocab_size})); such a constraint can "
                                  "only be met by a token the model cannot mean: use words of the target dictionary")
