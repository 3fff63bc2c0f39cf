"""config.json checked before anything is built: types, ranges, and the weights' shapes.

A hostile or damaged config must fail in one line naming the file and the field:
``"encoder_layers": 100000000`` would otherwise build modules for minutes, ``-5`` or
a string would end in a torch traceback. So:

* ``validate_config``: every field's type and range (positive sizes, heads dividing
  the dimension, a known activation, fairseq's special ids, a bounded position table);
* ``check_weights_fit``: the sizes the weights themselves show (layer counts,
  embedding and FFN sizes, vocabularies, learned position tables), read from the
  safetensors header (``read_weight_shapes``) without loading a tensor. Module
  construction is then bounded by the weights, and the strict load compares every
  remaining shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from fsmt_port.config_fields import check_field_types, is_finite_number
from fsmt_port.errors import CheckpointError, ConfigError

SUPPORTED_ACTIVATIONS = ("relu", "gelu", "gelu_accurate", "gelu_fast", "tanh", "linear", "swish", "relu_squared")
STORAGE_DTYPES = ("float32", "float16", "bfloat16")
#: fairseq dictionaries start with <s> <pad> </s> <unk>; the tokenizer and the search rely on these ids.
FAIRSEQ_SPECIAL_IDS = {"bos_token_id": 0, "pad_token_id": 1, "eos_token_id": 2, "unk_token_id": 3,
                       "decoder_start_token_id": 2}
#: Position tables are materialised whole: 65536 x 1024 fp32 is already 256 MiB.
MAX_POSITIONS = 1 << 16
SIDES = ("encoder", "decoder")

Shapes = Mapping[str, Sequence[int]]


def validate_config(config, source: str = "config.json") -> None:
    """Every field of an ``FSMTConfig``: type, then range; the first problem is raised."""
    check_field_types(config, source)

    def fail(field: str, expected: str) -> None:
        raise ConfigError(f"{source}: {field}={getattr(config, field)!r} {expected}")

    if len(config.langs) != 2 or not all(config.langs):
        fail("langs", "must be [source_lang, target_lang], e.g. [\"en\", \"de\"]")
    for field in ("src_vocab_size", "tgt_vocab_size"):
        if getattr(config, field) < len(FAIRSEQ_SPECIAL_IDS) - 1:
            fail(field, "must be >= 4 (<s> <pad> </s> <unk> come first)")
    for side in SIDES:
        for field in (f"{side}_embed_dim", f"{side}_ffn_dim", f"{side}_attention_heads"):
            if getattr(config, field) < 1:
                fail(field, "must be a positive integer")
        if getattr(config, f"{side}_layers") < 0:
            fail(f"{side}_layers", "must be >= 0")
        dim, heads = getattr(config, f"{side}_embed_dim"), getattr(config, f"{side}_attention_heads")
        if dim % heads:
            raise ConfigError(f"{source}: {side}_embed_dim={dim} is not divisible by "
                              f"{side}_attention_heads={heads}")
        if not config.no_token_positional_embeddings and not getattr(config, f"{side}_learned_pos") and dim < 4:
            fail(f"{side}_embed_dim", "is too small for sinusoidal positions (needs >= 4)")
    for field in ("max_source_positions", "max_target_positions"):
        if not 1 <= getattr(config, field) <= MAX_POSITIONS:
            fail(field, f"must be between 1 and {MAX_POSITIONS}")
    if config.activation_function not in SUPPORTED_ACTIVATIONS:
        fail("activation_function", f"is not supported; expected one of {', '.join(SUPPORTED_ACTIVATIONS)}")
    if not (is_finite_number(config.layer_norm_eps) and 0 < config.layer_norm_eps < 1):
        fail("layer_norm_eps", "must be a small positive number (fairseq: 1e-5)")
    for field, expected in FAIRSEQ_SPECIAL_IDS.items():
        if getattr(config, field) != expected:
            fail(field, f"must be {expected}: fairseq dictionaries put <s> <pad> </s> <unk> first")
    if config.dtype not in STORAGE_DTYPES:
        fail("dtype", f"must be one of {', '.join(STORAGE_DTYPES)}")
    if config.share_all_embeddings and (config.src_vocab_size != config.tgt_vocab_size
                                        or config.encoder_embed_dim != config.decoder_embed_dim):
        raise ConfigError(f"{source}: share_all_embeddings needs equal source/target vocabularies and "
                          "embedding sizes")


def read_weight_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from a safetensors header; no tensor is read."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable safetensors file ({err}); re-convert with --force") from None


_LAYER = re.compile(r"(?:^|\.)(encoder|decoder)\.layers\.(\d+)\.")


def check_weights_fit(config, shapes: Shapes, source: str = "config.json") -> None:
    """The config's sizes against what the weights show (file keys ``model.X`` or fairseq's ``X``).

    Raises ``ConfigError`` naming ``source`` and the field: layer counts, embedding/FFN sizes,
    vocabularies and learned position tables must be those of the weights.
    """
    def find(suffix: str) -> tuple[str, tuple[int, ...]] | None:
        for key, shape in shapes.items():
            if key == suffix or key.endswith("." + suffix):
                return key, tuple(shape)
        return None

    def fail(field: str, what: str) -> None:
        raise ConfigError(f"{source}: {field}={getattr(config, field)!r} does not match the weights ({what}); "
                          "fix the field or re-convert the checkpoint")

    layers = {side: set() for side in SIDES}
    for key in shapes:
        match = _LAYER.search(key)
        if match:
            layers[match.group(1)].add(int(match.group(2)))
    for side in SIDES:
        count = max(layers[side]) + 1 if layers[side] else 0
        if getattr(config, f"{side}_layers") != count:
            fail(f"{side}_layers", f"they hold {count} {side} layers")
        vocab_field = "src_vocab_size" if side == "encoder" else "tgt_vocab_size"
        found = find(f"{side}.embed_tokens.weight")
        if found is not None:
            key, shape = found
            if len(shape) != 2 or shape[0] != getattr(config, vocab_field):
                fail(vocab_field, f"{key} is {shape}")
            if shape[1] != getattr(config, f"{side}_embed_dim"):
                fail(f"{side}_embed_dim", f"{key} is {shape}")
        found = find(f"{side}.layers.0.fc1.weight")
        if found is not None and found[1][:1] != (getattr(config, f"{side}_ffn_dim"),):
            fail(f"{side}_ffn_dim", f"{found[0]} is {found[1]}")
        found = find(f"{side}.embed_positions.weight")
        if getattr(config, f"{side}_learned_pos") and found is not None:
            positions_field = "max_source_positions" if side == "encoder" else "max_target_positions"
            rows = getattr(config, positions_field) + config.pad_token_id + 1
            if found[1][:1] != (rows,):
                fail(positions_field, f"{found[0]} is {found[1]}, i.e. {found[1][0] - config.pad_token_id - 1} "
                                      "positions")
