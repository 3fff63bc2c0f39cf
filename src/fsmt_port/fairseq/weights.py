"""fairseq state_dict -> the file layout (transformers' FSMT names), strictly.

Every checkpoint key is either mapped, or on ``IGNORED`` with the reason, or
reported. Every shape is compared with what the config implies.
"""

from __future__ import annotations

import re

import torch

from fsmt_port.modeling.configuration import FSMTConfig
from fsmt_port.errors import CheckpointError
from fsmt_port.modeling.weights import module_to_file, state_differences, tied_module_keys

#: Keys fairseq itself discards on load, and why.
IGNORED = {
    r"^(encoder|decoder)\.version$": "format version marker (read for the final LayerNorm rule)",
    r"^(encoder|decoder)\.embed_positions\._float_tensor$": "sinusoidal placeholder buffer (2019 layout)",
    r"^(encoder|decoder)\.embed_positions\.weights?$": "sinusoidal table (computed, never stored)",
}
_IN_PROJ = re.compile(r"^(.*)\.in_proj_(weight|bias)$")


def convert_state_dict(state: dict[str, torch.Tensor], config: FSMTConfig, source: str,
                       ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Return (file_state, ignored_keys). Raises with every unmapped key and shape mismatch."""
    from fsmt_port.modeling.model import FSMTForConditionalGeneration

    renamed: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    for key, tensor in state.items():
        if any(re.match(p, key) for p in IGNORED) and not (
                key.endswith("embed_positions.weight") and _learned(config, key)):
            ignored.append(key)
            continue
        key = _upgrade_name(key)
        match = _IN_PROJ.match(key)
        if match:  # 2019 fused projection: rows [q; k; v]
            prefix, kind = match.groups()
            for part, chunk in zip("qkv", tensor.chunk(3, dim=0)):
                renamed[f"{prefix}.{part}_proj.{kind}"] = chunk
        else:
            renamed[key] = tensor
    if "decoder.output_projection.weight" not in renamed and (
            config.share_decoder_input_output_embed or config.share_all_embeddings):
        renamed["decoder.output_projection.weight"] = renamed.get("decoder.embed_tokens.weight")
    shared = renamed.get("decoder.embed_tokens.weight")
    for key in tied_module_keys(config):  # aliases of decoder.embed_tokens: check, then drop
        alias = renamed.pop(key[len("model."):], None)
        if alias is not None and shared is not None and not torch.equal(alias, shared):
            raise CheckpointError(f"{source}: {key[len('model.'):]} differs from decoder.embed_tokens.weight "
                                  "although the args say the embeddings are shared (share_all_embeddings)")

    # The expected layout comes from the model itself (on the meta device: no memory).
    with torch.device("meta"):
        reference = FSMTForConditionalGeneration(config)
    expected = module_to_file(reference.state_dict(), config)
    expected = {k: v for k, v in expected.items() if not k.endswith("embed_positions.table")}
    problems = state_differences({k: v.shape for k, v in renamed.items() if v is not None},
                                 {k.removeprefix("model."): v.shape for k, v in expected.items()})
    if problems:
        raise CheckpointError(f"{source}: weights do not match the architecture in its args: "
                              + "; ".join(problems))
    return {k: renamed[k.removeprefix("model.")] for k in expected}, ignored


def _learned(config: FSMTConfig, key: str) -> bool:
    return config.encoder_learned_pos if key.startswith("encoder.") else config.decoder_learned_pos


def _upgrade_name(key: str) -> str:
    """Old fairseq names -> current ones (fairseq's ``upgrade_state_dict_named``)."""
    key = re.sub(r"^decoder\.embed_out$", "decoder.output_projection.weight", key)
    key = re.sub(r"^(encoder\.layers\.\d+)\.layer_norms\.0\.", r"\1.self_attn_layer_norm.", key)
    key = re.sub(r"^(encoder\.layers\.\d+)\.layer_norms\.1\.", r"\1.final_layer_norm.", key)
    return key
