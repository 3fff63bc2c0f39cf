"""Export a converted model folder to CTranslate2.

Example::

    python -m fsmt_port.export.ct2 wmt19-en-de wmt19-en-de-ct2 --quantization int8

The model is described through ``ctranslate2.specs`` (an encoder and a decoder
spec, so each side keeps its own norm placement, heads and positions) and its
weights are copied from the folder as fsmt_port loads it. ``ctranslate2`` is an
optional dependency: ``pip install fsmt_port[ct2]``.

Token convention: the CTranslate2 vocabularies are the fairseq dictionary
symbols, id for id (``foo@@`` continues a word, ``foo`` ends one), except that
``<pad>`` (id 1) is written as ``<blank>``, CTranslate2's padding token. So a
source sentence is ``[src_symbols[i] for i in ids]`` for the ids our tokenizer
gives, **including the final** ``</s>`` (the export does not add one), and a
hypothesis maps back with ``tgt_index[token]``. :func:`ids_to_tokens` and
:func:`tokens_to_ids` do both. Decoding starts from ``</s>``, as in fairseq.

What CTranslate2 cannot express (activations ``linear``/``relu_squared``, a
final LayerNorm on a post-norm stack) is refused up front with every reason.
One behaviour differs and cannot be exported away: CTranslate2 returns an empty
translation for a source made only of special tokens (an empty line, ``[</s>]``),
where fairseq and fsmt_port translate it like any other input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import torch

from fsmt_port.cli import add_hub_options, command_parser, hub_kwargs, run_cli
from fsmt_port.modeling.configuration import FSMTConfig
from fsmt_port.errors import ConfigError
from fsmt_port.files import atomic_directory, check_can_write, write_json
from fsmt_port.modeling.positions import LearnedPositions, sinusoidal_table

#: fairseq activation -> name of CTranslate2's ``common_spec.Activation`` member.
ACTIVATIONS = {"relu": "RELU", "gelu": "GELU", "gelu_accurate": "GELUTanh", "gelu_fast": "GELUTanh",
               "swish": "SWISH", "tanh": "Tanh"}
#: The ``--quantization`` values CTranslate2 4.x accepts (``ctranslate2.specs.model_spec.ACCEPTED_MODEL_TYPES``).
QUANTIZATIONS = ("int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16", "bfloat16",
                 "float32")
PAD_TOKEN = "<blank>"
EXPORT_INFO = "fsmt_port_export.json"


def _import_ctranslate2():
    try:
        import ctranslate2  # noqa: F401
        from ctranslate2.specs import common_spec, transformer_spec
    except ImportError:
        raise ConfigError("exporting to CTranslate2 needs the ctranslate2 package: "
                          "pip install 'fsmt_port[ct2]' (or pip install ctranslate2)") from None
    return common_spec, transformer_spec


def unsupported_features(config: FSMTConfig) -> list[str]:
    """Everything about ``config`` that CTranslate2's Transformer cannot compute (empty = exportable)."""
    reasons = []
    if config.activation_function not in ACTIVATIONS:
        reasons.append(f"activation {config.activation_function!r} (CTranslate2 has "
                       f"{', '.join(sorted(ACTIVATIONS))})")
    for side in ("encoder", "decoder"):
        if getattr(config, f"{side}_final_layer_norm") and not getattr(config, f"{side}_normalize_before"):
            reasons.append(f"a final {side} LayerNorm on a post-norm {side} (CTranslate2 only has it with pre-norm)")
    return reasons


def vocabulary(symbols: Sequence[str]) -> list[str]:
    """CTranslate2 tokens for fairseq dictionary ``symbols``: index i is id i."""
    tokens = [PAD_TOKEN if s == "<pad>" else s for s in symbols]
    if len(set(tokens)) != len(tokens):
        raise ConfigError("the dictionary has duplicate symbols; CTranslate2 maps tokens to ids by name")
    return tokens


def ids_to_tokens(ids: Sequence[int], tokens: Sequence[str]) -> list[str]:
    """Source ids (ending in ``</s>``, no padding) -> the CTranslate2 tokens to pass to ``translate_batch``."""
    return [tokens[i] for i in ids]


def tokens_to_ids(hypothesis: Sequence[str], index: dict[str, int]) -> list[int]:
    """A CTranslate2 hypothesis -> our target ids (``index`` = {token: id} of the target vocabulary)."""
    return [index[t] for t in hypothesis]


def _np(tensor: torch.Tensor):
    return tensor.detach().to(torch.float32).contiguous().numpy()


def _set_linear(spec, module: torch.nn.Linear) -> None:
    spec.weight = _np(module.weight)
    if module.bias is not None:
        spec.bias = _np(module.bias)


def _set_norm(spec, module: torch.nn.LayerNorm) -> None:
    spec.gamma = _np(module.weight)
    spec.beta = _np(module.bias)


def _set_inputs(spec, side, max_positions: int, dim: int, padding_idx: int) -> None:
    """Embeddings, their scale and the position table (row 0 = fairseq position padding_idx + 1)."""
    embeddings = spec.embeddings[0] if isinstance(spec.embeddings, list) else spec.embeddings  # encoder: a list
    embeddings.weight = _np(side.embed_tokens.weight)
    spec.scale_embeddings = float(side.embed_scale)
    first = padding_idx + 1
    if side.embed_positions is None:  # no positions: an all-zero table adds nothing
        table = torch.zeros(max_positions, dim)
    elif isinstance(side.embed_positions, LearnedPositions):
        table = side.embed_positions.weight[first: first + max_positions]
    else:
        table = sinusoidal_table(first + max_positions, dim, padding_idx)[first:]
    spec.position_encodings.encodings = _np(table)
    if side.layernorm_embedding is not None:
        _set_norm(spec.layernorm_embedding, side.layernorm_embedding)
    if side.layer_norm is not None:
        _set_norm(spec.layer_norm, side.layer_norm)


def build_spec(model, src_symbols: Sequence[str], tgt_symbols: Sequence[str]):
    """A ``ctranslate2.specs.TransformerSpec`` holding ``model``'s weights (fp32 numpy arrays)."""
    common_spec, transformer_spec = _import_ctranslate2()
    config: FSMTConfig = model.config
    reasons = unsupported_features(config)
    if reasons:
        raise ConfigError("CTranslate2 cannot run this model: " + "; ".join(reasons))
    activation = getattr(common_spec.Activation, ACTIVATIONS[config.activation_function])
    encoder_spec = transformer_spec.TransformerEncoderSpec(
        config.encoder_layers, config.encoder_attention_heads, pre_norm=config.encoder_normalize_before,
        no_final_norm=not config.encoder_final_layer_norm, activation=activation,
        layernorm_embedding=config.layernorm_embedding)
    decoder_spec = transformer_spec.TransformerDecoderSpec(
        config.decoder_layers, config.decoder_attention_heads, pre_norm=config.decoder_normalize_before,
        no_final_norm=not config.decoder_final_layer_norm, activation=activation,
        layernorm_embedding=config.layernorm_embedding)
    spec = transformer_spec.TransformerSpec(encoder_spec, decoder_spec)

    encoder, decoder = model.model.encoder, model.model.decoder
    pad = config.pad_token_id
    _set_inputs(spec.encoder, encoder, config.max_source_positions, config.encoder_embed_dim, pad)
    _set_inputs(spec.decoder, decoder, config.max_target_positions, config.decoder_embed_dim, pad)
    for layer_spec, layer in zip(spec.encoder.layer, encoder.layers):
        _set_linear(layer_spec.self_attention.linear[0], layer.self_attn.qkv_proj)  # fused [q; k; v]
        _set_linear(layer_spec.self_attention.linear[1], layer.self_attn.out_proj)
        _set_norm(layer_spec.self_attention.layer_norm, layer.self_attn_layer_norm)
        _set_ffn(layer_spec.ffn, layer)
    for layer_spec, layer in zip(spec.decoder.layer, decoder.layers):
        _set_linear(layer_spec.self_attention.linear[0], layer.self_attn.qkv_proj)
        _set_linear(layer_spec.self_attention.linear[1], layer.self_attn.out_proj)
        _set_norm(layer_spec.self_attention.layer_norm, layer.self_attn_layer_norm)
        _set_linear(layer_spec.attention.linear[0], layer.encoder_attn.q_proj)
        _set_linear(layer_spec.attention.linear[1], layer.encoder_attn.kv_proj)  # fused [k; v]
        _set_linear(layer_spec.attention.linear[2], layer.encoder_attn.out_proj)
        _set_norm(layer_spec.attention.layer_norm, layer.encoder_attn_layer_norm)
        _set_ffn(layer_spec.ffn, layer)
    _set_linear(spec.decoder.projection, decoder.output_projection)

    spec.register_source_vocabulary(vocabulary(src_symbols))
    spec.register_target_vocabulary(vocabulary(tgt_symbols))
    spec.config.bos_token = "<s>"
    spec.config.eos_token = "</s>"
    spec.config.unk_token = "<unk>"
    spec.config.decoder_start_token = "</s>"  # fairseq starts decoding from </s>
    spec.config.add_source_eos = False  # our source ids already end with </s>
    spec.config.layer_norm_epsilon = config.layer_norm_eps
    return spec


def _set_ffn(spec, layer) -> None:
    _set_norm(spec.layer_norm, layer.final_layer_norm)
    _set_linear(spec.linear_0, layer.fc1)
    _set_linear(spec.linear_1, layer.fc2)


def export_ct2(model_dir: str | Path, output_dir: str | Path, quantization: str | None = None,
               force: bool = False, revision: str | None = None, local_files_only: bool = False) -> Path:
    """Write a CTranslate2 model for the converted folder (or hub repo id) ``model_dir``; returns ``output_dir``."""
    from fsmt_port.hub import resolve_model_dir
    from fsmt_port.modeling.model import FSMTForConditionalGeneration
    from fsmt_port.tokenization.tokenizer import FSMTTokenizer

    _import_ctranslate2()
    output_dir = Path(output_dir)
    if quantization is not None and quantization not in QUANTIZATIONS:
        raise ConfigError(f"unknown quantization {quantization!r}; expected one of {', '.join(QUANTIZATIONS)}")
    check_can_write(output_dir, force, "output folder")
    model_ref = str(model_dir)
    model_dir = resolve_model_dir(model_dir, revision=revision, local_files_only=local_files_only)
    config = FSMTConfig.from_pretrained(model_dir)
    reasons = unsupported_features(config)
    if reasons:
        raise ConfigError(f"{model_ref}: CTranslate2 cannot run this model: " + "; ".join(reasons))
    model = FSMTForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32, device="cpu")
    tokenizer = FSMTTokenizer.from_pretrained(model_dir)
    spec = build_spec(model, tokenizer.src_dict.symbols, tokenizer.tgt_dict.symbols)
    del model
    spec.validate()
    spec.optimize(quantization=quantization)
    info = {"exported_from": model_ref if model_ref != str(model_dir) else str(Path(model_dir).resolve().name), "quantization": quantization or "float32",
            "source_tokens": "fairseq dictionary symbols, id i = token i; '<pad>' is written '<blank>'",
            "source_must_end_with": "</s>", "decoder_start_token": "</s>"}
    with atomic_directory(output_dir, force=force) as tmp:
        spec.save(str(tmp))
        write_json(tmp / EXPORT_INFO, info)
    return output_dir


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("python -m fsmt_port.export_ct2", __doc__,
                            "python -m fsmt_port.export_ct2 wmt19-en-de wmt19-en-de-ct2 --quantization int8")
    parser.add_argument("model_dir", help="folder written by fsmt_port.fairseq.convert, or a hub repo id")
    parser.add_argument("output_dir", help="CTranslate2 model folder to write")
    parser.add_argument("--quantization", choices=QUANTIZATIONS,
                        help="weight type of the CTranslate2 model (default: float32)")
    parser.add_argument("--force", action="store_true", help="replace an existing output folder")
    add_hub_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def job() -> None:
        out = export_ct2(args.model_dir, args.output_dir, quantization=args.quantization, force=args.force,
                         **hub_kwargs(args))
        print(f"wrote {out}", file=sys.stderr)

    return run_cli(job)


if __name__ == "__main__":
    sys.exit(main())
