"""Between the file layout and the module layout of the weights.

The file (``model.safetensors``) uses transformers' FSMT names, which are
fairseq's names under ``model.``: separate ``q_proj``/``k_proj``/``v_proj``.
In memory we fuse self-attention q/k/v and cross-attention k/v into one matmul
each. These two functions are the only place that knows both layouts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import nn

from fsmt_port.modeling.configuration import FSMTConfig
from fsmt_port.errors import CheckpointError

_SELF = re.compile(r"^(.*\.self_attn)\.([qkv])_proj\.(weight|bias)$")
_CROSS = re.compile(r"^(.*\.encoder_attn)\.([kv])_proj\.(weight|bias)$")


def file_to_module(file_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Fuse q/k/v (self) and k/v (cross) projections; everything else keeps its name."""
    out: dict[str, torch.Tensor] = {}
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in file_state.items():
        match = _SELF.match(key) or _CROSS.match(key)
        if match is None:
            out[key] = tensor
            continue
        prefix, part, kind = match.groups()
        fused = f"{prefix}.{'qkv' if prefix.endswith('self_attn') else 'kv'}_proj.{kind}"
        groups.setdefault(fused, {})[part] = tensor
    for fused, parts in groups.items():
        order = "qkv" if ".self_attn." in fused else "kv"
        missing = [p for p in order if p not in parts]
        if missing:
            base = fused.rsplit(".", 2)[0]
            raise CheckpointError(f"weights: {base}.{missing[0]}_proj.{fused.rsplit('.', 1)[1]} is missing")
        out[fused] = torch.cat([parts[p] for p in order], dim=0)
    return out


def module_to_file(module_state: dict[str, torch.Tensor], config: FSMTConfig) -> dict[str, torch.Tensor]:
    """Split fused projections and drop tied copies transformers re-ties itself."""
    out: dict[str, torch.Tensor] = {}
    for key, tensor in module_state.items():
        if ".qkv_proj." in key or ".kv_proj." in key:
            prefix, kind = key.rsplit(".", 1)
            base, fused = prefix.rsplit(".", 1)
            parts = "qkv" if fused == "qkv_proj" else "kv"
            for part, chunk in zip(parts, tensor.chunk(len(parts), dim=0)):
                out[f"{base}.{part}_proj.{kind}"] = chunk.contiguous()
        else:
            out[key] = tensor.contiguous()
    for key in tied_module_keys(config):
        out.pop(key, None)
    return out


def tied_module_keys(config: FSMTConfig) -> list[str]:
    """Keys that alias another weight and are therefore not stored in the file.

    With ``share_all_embeddings`` transformers' FSMT (``tie_word_embeddings``) re-ties
    both; with only ``share_decoder_input_output_embed`` the output projection is
    written out, because transformers would otherwise not tie it.
    """
    keys = []
    if config.share_all_embeddings:
        keys += ["model.encoder.embed_tokens.weight", "model.decoder.output_projection.weight"]
    return keys


def state_differences(found: Mapping[str, Sequence[int]], expected: Mapping[str, Sequence[int]],
                      optional: Iterable[str] = ()) -> list[str]:
    """What keeps ``found`` (key -> shape) from being exactly ``expected``: one phrase per kind, the first
    few keys each. Keys in ``optional`` may be absent (tied weights). Empty when they match."""
    optional = set(optional)
    kinds = {
        "shape mismatch": [f"{k} {tuple(found[k])} (expected {tuple(v)})"
                           for k, v in expected.items() if k in found and tuple(found[k]) != tuple(v)],
        "missing": sorted(k for k in expected if k not in found and k not in optional),
        "unexpected": sorted(k for k in found if k not in expected),
    }
    return [f"{kind}: {', '.join(keys[:4])}" + (f" (+{len(keys) - 4} more)" if len(keys) > 4 else "")
            for kind, keys in kinds.items() if keys]


def non_persistent_ok(key: str) -> bool:
    """File keys we accept and ignore: computed sinusoidal tables some writers store."""
    return key.endswith("embed_positions.weight") or key.endswith("embed_positions._float_tensor")


def load_checked(module: nn.Module, module_state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor],
                 tied: set[str], source: str, dtype: torch.dtype) -> None:
    """Load ``module_state`` strictly: every shape right, nothing missing but the ``tied`` aliases (which
    the caller ties afterwards), nothing left over; the file's tensors become the parameters (``assign``)."""
    problems = state_differences({k: v.shape for k, v in module_state.items()},
                                 {k: v.shape for k, v in expected.items()}, optional=tied)
    if problems:
        raise CheckpointError(f"{source}: weights do not fit config.json: " + "; ".join(problems)
                              + ". Re-convert the checkpoint with --force.")
    # Not strict only because the tied aliases are set by the caller; anything else unset is a bug.
    result = module.load_state_dict({k: v.to(dtype) for k, v in module_state.items() if k not in tied},
                                    strict=False, assign=True)
    unset = sorted(set(result.missing_keys) - tied)
    if unset or result.unexpected_keys:
        raise CheckpointError(f"{source}: weights left unset {unset[:3]} or unused {result.unexpected_keys[:3]}")
