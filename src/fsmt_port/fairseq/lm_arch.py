"""fairseq ``transformer_lm`` options -> ``LMConfig``, strictly.

Two ways fairseq fills in missing options, and we follow both:

* arch ``transformer_lm`` (the model's own name; every modern ``cfg`` checkpoint):
  ``TransformerLanguageModelConfig``'s dataclass defaults, no arch function;
* a named arch (``transformer_lm_big``, ``transformer_lm_gbw``, ... as 2019 ``args``
  record them): the arch function's defaults, then ``base_lm_architecture``, which
  forces ``decoder_normalize_before = True``.

Every option that changes the network and that we do not implement is collected
into one error.
"""

from __future__ import annotations

from fsmt_port.errors import CheckpointError
from fsmt_port.modeling.language_model import LMConfig

#: ``TransformerLanguageModelConfig`` defaults (fairseq 0.12).
_DATACLASS = {
    "activation_fn": "relu", "decoder_embed_dim": 512, "decoder_output_dim": 512, "decoder_input_dim": 512,
    "decoder_ffn_embed_dim": 2048, "decoder_layers": 6, "decoder_attention_heads": 8,
    "decoder_normalize_before": False, "no_decoder_final_norm": False, "adaptive_softmax_cutoff": None,
    "no_token_positional_embeddings": False, "share_decoder_input_output_embed": False,
    "character_embeddings": False, "adaptive_input": False, "tie_adaptive_weights": False,
    "decoder_learned_pos": False, "layernorm_embedding": False, "no_scale_embedding": False,
    "add_bos_token": False, "tokens_per_sample": 1024, "max_target_positions": None,
}
_BIG = {"decoder_layers": 12, "decoder_embed_dim": 1024, "decoder_ffn_embed_dim": 4096, "decoder_attention_heads": 16}
_GPT = {"activation_fn": "gelu"}
#: Named architectures -> their defaults before ``base_lm_architecture`` (fairseq's arch functions).
ARCH_DEFAULTS = {
    "transformer_lm_big": _BIG,
    "transformer_lm_gbw": {**_BIG, "decoder_embed_dim": 512, "no_decoder_final_norm": True},
    "transformer_lm_baevski_gbw": {**_BIG, "decoder_embed_dim": 512, "no_decoder_final_norm": True},
    "transformer_lm_wiki103": {**_BIG, "decoder_layers": 16, "decoder_attention_heads": 8, "adaptive_input": True,
                               "tie_adaptive_weights": True, "no_decoder_final_norm": True},
    "transformer_lm_gpt": {**_GPT, "decoder_embed_dim": 768, "decoder_ffn_embed_dim": 3072, "decoder_layers": 12,
                           "decoder_attention_heads": 12},
    "transformer_lm_gpt2_small": {**_GPT, "decoder_embed_dim": 1024, "decoder_ffn_embed_dim": 4096,
                                  "decoder_layers": 24, "decoder_attention_heads": 16},
    "transformer_lm_gpt2_tiny": {**_GPT, "decoder_embed_dim": 64, "decoder_ffn_embed_dim": 64, "decoder_layers": 2,
                                 "decoder_attention_heads": 1},
    "transformer_lm_gpt2_medium": {**_GPT, "decoder_embed_dim": 1280, "decoder_ffn_embed_dim": 5120,
                                   "decoder_layers": 36, "decoder_attention_heads": 20},
}
ARCH_DEFAULTS["transformer_lm_baevski_wiki103"] = ARCH_DEFAULTS["transformer_lm_wiki103"]
#: base_lm_architecture's own defaults (applied after the arch function's).
_BASE_LM = {**_DATACLASS, "decoder_normalize_before": True}

#: Options that change the network and that we do not implement: (name, the value that is fine).
_UNSUPPORTED = [
    ("adaptive_input", False), ("adaptive_softmax_cutoff", None), ("tie_adaptive_weights", False),
    ("character_embeddings", False), ("decoder_layers_to_keep", None), ("quant_noise_pq", 0),
    ("base_layers", 0), ("scale_fc", False), ("scale_attn", False), ("scale_heads", False),
    ("scale_resids", False), ("decoder_xformers_att_config", None), ("cross_self_attention", False),
    ("alignment_layer", None),
]


def is_language_model(args: dict) -> bool:
    """A checkpoint of fairseq's ``language_modeling`` task / ``transformer_lm`` model."""
    arch = str(args.get("arch") or args.get("_name") or "")
    return arch.startswith("transformer_lm") or args.get("task") == "language_modeling"


def lm_config_from_fairseq_args(args: dict, vocab_size: int, decoder_version: float, source: str,
                                lang: str, tokenizer: str) -> LMConfig:
    arch = str(args.get("arch") or args.get("_name") or "")
    if not arch.startswith("transformer_lm"):
        raise CheckpointError(f"{source}: arch={arch!r} is a language model fsmt_port cannot convert; "
                              f"expected transformer_lm or one of {', '.join(sorted(ARCH_DEFAULTS))}")
    if arch == "transformer_lm":
        opts = dict(_DATACLASS)
    elif arch in ARCH_DEFAULTS:
        opts = {**_BASE_LM, **ARCH_DEFAULTS[arch]}
    else:
        raise CheckpointError(f"{source}: unknown transformer_lm architecture {arch!r}; known: transformer_lm, "
                              f"{', '.join(sorted(ARCH_DEFAULTS))}")
    named = {k: v for k, v in args.items() if v is not None or k == "adaptive_softmax_cutoff"}
    if "decoder_final_norm" in named:  # old checkpoints' spelling
        named["no_decoder_final_norm"] = not named.pop("decoder_final_norm")
    if "no_tie_adaptive_proj" in named:  # base_lm_architecture: a pre-2019 checkpoint
        named["no_decoder_final_norm"] = True
    opts.update(named)
    opts.setdefault("decoder_input_dim", opts["decoder_embed_dim"])
    opts.setdefault("decoder_output_dim", opts["decoder_embed_dim"])
    if arch != "transformer_lm":
        opts["decoder_normalize_before"] = True  # base_lm_architecture: "not stable without this"
    if opts.get("max_target_positions") is None:
        opts["max_target_positions"] = opts.get("tokens_per_sample") or 1024

    problems = [f"{name}={opts.get(name)!r}" for name, fine in _UNSUPPORTED
                if opts.get(name) not in (fine, None, 0, False, "", "none")]
    try:
        config = LMConfig(
            vocab_size=vocab_size, lang=lang, tokenizer=tokenizer,
            decoder_embed_dim=int(opts["decoder_embed_dim"]), decoder_input_dim=int(opts["decoder_input_dim"]),
            decoder_output_dim=int(opts["decoder_output_dim"]), decoder_ffn_dim=int(opts["decoder_ffn_embed_dim"]),
            decoder_layers=int(opts["decoder_layers"]), decoder_attention_heads=int(opts["decoder_attention_heads"]),
            decoder_normalize_before=bool(opts["decoder_normalize_before"]),
            decoder_learned_pos=bool(opts["decoder_learned_pos"]),
            # fairseq: a final LayerNorm with pre-norm layers unless no_decoder_final_norm; version <= 2 drops it
            decoder_final_layer_norm=bool(opts["decoder_normalize_before"]) and not bool(opts["no_decoder_final_norm"])
            and decoder_version > 2,
            activation_function=str(opts["activation_fn"]), scale_embedding=not bool(opts["no_scale_embedding"]),
            layernorm_embedding=bool(opts["layernorm_embedding"]),
            no_token_positional_embeddings=bool(opts["no_token_positional_embeddings"]),
            share_decoder_input_output_embed=bool(opts["share_decoder_input_output_embed"]),
            max_target_positions=int(opts["max_target_positions"]),
            decoder_start_token_id=0 if bool(opts["add_bos_token"]) else 2,
        )
    except (TypeError, ValueError, KeyError) as err:
        problems.append(f"unreadable architecture option ({err})")
        config = None
    if problems or config is None:
        raise CheckpointError(f"{source}: unsupported fairseq transformer_lm option(s): {'; '.join(problems)}. "
                              "fsmt_port converts the standard transformer_lm; these change the network.")
    return config
