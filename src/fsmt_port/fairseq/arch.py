"""fairseq ``transformer`` options -> ``FSMTConfig``, strictly.

fairseq fills missing options from the architecture function (``--arch``);
2019 checkpoints lack every option added later. We apply the same defaults,
then collect every option we cannot honour into one error.
"""

from __future__ import annotations

from fsmt_port.modeling.configuration import FSMTConfig
from fsmt_port.errors import CheckpointError, ConfigError

_BASE = {
    "encoder_embed_dim": 512, "encoder_ffn_embed_dim": 2048, "encoder_layers": 6, "encoder_attention_heads": 8,
    "encoder_normalize_before": False, "encoder_learned_pos": False,
    "decoder_layers": 6, "decoder_attention_heads": 8,
    "decoder_normalize_before": False, "decoder_learned_pos": False,
    "activation_fn": "relu", "share_decoder_input_output_embed": False, "share_all_embeddings": False,
    "no_token_positional_embeddings": False, "no_scale_embedding": False, "layernorm_embedding": False,
    "adaptive_input": False, "adaptive_softmax_cutoff": None, "cross_self_attention": False,
    "no_cross_attention": False, "tie_adaptive_weights": False, "no_decoder_final_norm": False,
    "max_source_positions": 1024, "max_target_positions": 1024, "quant_noise_pq": 0, "quant_noise_scalar": 0,
    "merge_src_tgt_embed": False, "encoder_layers_to_keep": None, "decoder_layers_to_keep": None,
}
_BIG = {"encoder_embed_dim": 1024, "encoder_ffn_embed_dim": 4096, "encoder_attention_heads": 16,
        "decoder_attention_heads": 16}
#: Architecture name -> defaults on top of ``_BASE`` (fairseq's arch functions).
ARCH_DEFAULTS = {
    "transformer": {},
    "transformer_wmt_en_de": {},
    "transformer_iwslt_de_en": {"encoder_ffn_embed_dim": 1024, "encoder_attention_heads": 4,
                                "decoder_attention_heads": 4, "decoder_ffn_embed_dim": 1024},
    "transformer_vaswani_wmt_en_de_big": _BIG,
    "transformer_vaswani_wmt_en_fr_big": _BIG,
    "transformer_wmt_en_de_big": _BIG,
    "transformer_wmt_en_de_big_t2t": {**_BIG, "encoder_normalize_before": True, "decoder_normalize_before": True},
    "transformer_wmt19_de_en": _BIG,  # not in fairseq proper, used by some forks
}

#: Options that change the network and that we do not implement: (name, value that is fine).
_UNSUPPORTED = [
    ("adaptive_input", False), ("adaptive_softmax_cutoff", None), ("cross_self_attention", False),
    ("no_cross_attention", False), ("tie_adaptive_weights", False), ("quant_noise_pq", 0),
    ("encoder_layers_to_keep", None), ("decoder_layers_to_keep", None), ("merge_src_tgt_embed", False),
    ("scale_fc", False), ("scale_attn", False), ("scale_heads", False), ("scale_resids", False),
    ("char_inputs", False), ("alignment_layer", None), ("full_context_alignment", False),
]


def config_from_fairseq_args(args: dict, src_vocab_size: int, tgt_vocab_size: int, langs: list[str],
                             encoder_version: float, decoder_version: float, source: str) -> FSMTConfig:
    arch = args.get("arch") or args.get("_name")
    if not arch or not str(arch).startswith("transformer") or str(arch).startswith("transformer_lm"):
        raise CheckpointError(
            f"{source}: arch={arch!r} is not a fairseq translation transformer; fsmt_port converts "
            f"'transformer' and its named variants ({', '.join(sorted(ARCH_DEFAULTS))})")
    opts = dict(_BASE)
    opts.update(ARCH_DEFAULTS.get(arch, {}))
    opts.update({k: v for k, v in args.items() if v is not None or k in ("adaptive_softmax_cutoff",)})
    enc_dim = opts["encoder_embed_dim"]
    opts.setdefault("decoder_embed_dim", enc_dim)
    opts.setdefault("decoder_ffn_embed_dim", opts["encoder_ffn_embed_dim"])
    opts.setdefault("decoder_output_dim", opts["decoder_embed_dim"])
    opts.setdefault("decoder_input_dim", opts["decoder_embed_dim"])

    problems = [f"{name}={opts.get(name)!r}" for name, fine in _UNSUPPORTED
                if name in opts and opts[name] not in (fine, None, 0, False, "")]
    for name in ("decoder_output_dim", "decoder_input_dim"):
        if opts[name] != opts["decoder_embed_dim"]:
            problems.append(f"{name}={opts[name]} != decoder_embed_dim={opts['decoder_embed_dim']}")
    activation = opts.get("activation_fn", "relu")
    try:
        config_kwargs = dict(
            langs=list(langs), src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size,
            encoder_embed_dim=int(enc_dim), encoder_ffn_dim=int(opts["encoder_ffn_embed_dim"]),
            encoder_layers=int(opts["encoder_layers"]), encoder_attention_heads=int(opts["encoder_attention_heads"]),
            encoder_normalize_before=bool(opts["encoder_normalize_before"]),
            encoder_learned_pos=bool(opts["encoder_learned_pos"]),
            decoder_embed_dim=int(opts["decoder_embed_dim"]), decoder_ffn_dim=int(opts["decoder_ffn_embed_dim"]),
            decoder_layers=int(opts["decoder_layers"]), decoder_attention_heads=int(opts["decoder_attention_heads"]),
            decoder_normalize_before=bool(opts["decoder_normalize_before"]),
            decoder_learned_pos=bool(opts["decoder_learned_pos"]),
            activation_function=str(activation), scale_embedding=not bool(opts["no_scale_embedding"]),
            layernorm_embedding=bool(opts["layernorm_embedding"]),
            no_token_positional_embeddings=bool(opts["no_token_positional_embeddings"]),
            share_all_embeddings=bool(opts["share_all_embeddings"]),
            share_decoder_input_output_embed=bool(opts["share_decoder_input_output_embed"]),
            max_source_positions=int(opts["max_source_positions"]),
            max_target_positions=int(opts["max_target_positions"]),
            # fairseq's upgrade_state_dict_named drops the final LayerNorms of old versions.
            encoder_final_layer_norm=bool(opts["encoder_normalize_before"]) and encoder_version >= 2,
            decoder_final_layer_norm=bool(opts["decoder_normalize_before"]) and decoder_version > 2
            and not bool(opts["no_decoder_final_norm"]),
            pad_token_id=int(opts.get("pad", 1)), eos_token_id=int(opts.get("eos", 2)),
            unk_token_id=int(opts.get("unk", 3)), bos_token_id=int(opts.get("bos", 0)),
            decoder_start_token_id=int(opts.get("eos", 2)),
        )
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{source}: unreadable architecture option ({err})") from None
    if (config_kwargs["pad_token_id"], config_kwargs["eos_token_id"], config_kwargs["unk_token_id"]) != (1, 2, 3):
        problems.append("special token ids other than pad=1, eos=2, unk=3")
    if problems:
        raise CheckpointError(f"{source}: unsupported fairseq option(s): {'; '.join(problems)}. "
                              "fsmt_port converts the standard transformer; these change the network.")
    try:
        return FSMTConfig(**config_kwargs).validate(f"{source} (its args)")
    except ConfigError as err:
        raise CheckpointError(str(err)) from None
