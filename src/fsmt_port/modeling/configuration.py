"""Architecture config: the model's shape, nothing about decoding.

``config.json`` is written in transformers' FSMT format (``model_type: fsmt``)
plus our own fields for the fairseq variants that FSMT cannot express
(pre-norm, learned positions, layernorm_embedding, separate encoder/decoder
sizes, ...). When a model uses any of those, ``model_type`` becomes
``fsmt_port`` so that transformers refuses it instead of silently computing
something else; ``transformers_incompatible`` says why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from fsmt_port.errors import ConfigError
from fsmt_port.files import read_json
from fsmt_port.modeling.validation import validate_config


@dataclass
class FSMTConfig:
    langs: list[str] = field(default_factory=lambda: ["en", "de"])  # [source, target]
    src_vocab_size: int = 0
    tgt_vocab_size: int = 0
    # Encoder shape.
    encoder_embed_dim: int = 512
    encoder_ffn_dim: int = 2048
    encoder_layers: int = 6
    encoder_attention_heads: int = 8
    encoder_normalize_before: bool = False  # pre-norm encoder (+ final LayerNorm)
    encoder_learned_pos: bool = False  # learned vs sinusoidal positions
    # Decoder shape.
    decoder_embed_dim: int = 512
    decoder_ffn_dim: int = 2048
    decoder_layers: int = 6
    decoder_attention_heads: int = 8
    decoder_normalize_before: bool = False
    decoder_learned_pos: bool = False
    # Both sides.
    activation_function: str = "relu"
    scale_embedding: bool = True  # fairseq: not no_scale_embedding -> x * sqrt(d)
    layernorm_embedding: bool = False  # LayerNorm after embeddings+positions
    no_token_positional_embeddings: bool = False
    share_all_embeddings: bool = False  # encoder/decoder/output share one matrix
    share_decoder_input_output_embed: bool = False  # decoder input == output matrix
    max_source_positions: int = 1024
    max_target_positions: int = 1024
    encoder_final_layer_norm: bool = False  # fairseq drops it for old versions
    decoder_final_layer_norm: bool = False
    layer_norm_eps: float = 1e-5
    pad_token_id: int = 1
    bos_token_id: int = 0
    eos_token_id: int = 2
    unk_token_id: int = 3
    decoder_start_token_id: int = 2  # fairseq starts decoding from </s>
    dtype: str = "float32"  # storage dtype of model.safetensors

    def validate(self, source: str = "config") -> "FSMTConfig":
        """Every field's type and range (``modeling/validation.py``); errors name ``source``. Returns self."""
        validate_config(self, source)
        return self

    # --- the decoder's shape as fairseq's TransformerDecoder reads it (shared with LMConfig) ---
    @property
    def decoder_input_dim(self) -> int:
        return self.decoder_embed_dim

    @property
    def decoder_output_dim(self) -> int:
        return self.decoder_embed_dim

    @property
    def decoder_cross_attention(self) -> bool:
        return True

    # --- transformers compatibility -------------------------------------------------
    def transformers_incompatibilities(self) -> list[str]:
        """What transformers' FSMT (post-norm, sinusoidal, relu/gelu) cannot express.

        Expressible, so not listed: per-side ffn sizes and head counts (FSMT has both fields), and
        ``share_decoder_input_output_embed`` alone (the output projection is written out).
        """
        reasons = []
        if self.encoder_normalize_before or self.decoder_normalize_before:
            reasons.append("pre-norm layers (encoder/decoder_normalize_before)")
        if self.encoder_learned_pos or self.decoder_learned_pos:
            reasons.append("learned positional embeddings")
        if self.no_token_positional_embeddings:
            reasons.append("no positional embeddings")
        if self.layernorm_embedding:
            reasons.append("layernorm_embedding")
        if self.encoder_embed_dim != self.decoder_embed_dim:
            reasons.append("different encoder/decoder embedding sizes")
        if self.activation_function not in ("relu", "gelu", "tanh", "swish", "linear"):
            reasons.append(f"activation {self.activation_function}")
        if self.encoder_final_layer_norm or self.decoder_final_layer_norm:
            reasons.append("final encoder/decoder LayerNorm")
        return reasons

    @property
    def transformers_compatible(self) -> bool:
        return not self.transformers_incompatibilities()

    def to_dict(self) -> dict:
        data = asdict(self)
        reasons = self.transformers_incompatibilities()
        act = {"gelu_accurate": "gelu_new", "gelu_fast": "gelu_new", "swish": "silu"}.get(
            self.activation_function, self.activation_function)
        hf = {
            "architectures": ["FSMTForConditionalGeneration"],
            "model_type": "fsmt" if not reasons else "fsmt_port",
            "d_model": self.decoder_embed_dim,
            "encoder_ffn_dim": self.encoder_ffn_dim,
            "decoder_ffn_dim": self.decoder_ffn_dim,
            "max_position_embeddings": self.max_source_positions,
            "max_length": 200,
            "is_encoder_decoder": True,
            "tie_word_embeddings": self.share_all_embeddings,
            "encoder_layerdrop": 0.0,
            "decoder_layerdrop": 0.0,
            "dropout": 0.0,
            "attention_dropout": 0.0,
            "activation_dropout": 0.0,
            "init_std": 0.02,
            "forced_eos_token_id": self.eos_token_id,
        }
        data.update(hf)
        data["activation_function"] = act if not reasons else self.activation_function
        data["fairseq_activation_fn"] = self.activation_function
        data["transformers_compatible"] = not reasons
        if reasons:
            data["transformers_incompatible"] = (
                "transformers' FSMT cannot run this model: " + "; ".join(reasons) + ". Load it with fsmt_port."
            )
        return data

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> "FSMTConfig":
        """Read (and validate) our config.json or a transformers FSMT one (e.g. facebook/wmt19-en-de)."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
        data = dict(data)
        if "fairseq_activation_fn" in data:
            data["activation_function"] = data["fairseq_activation_fn"]
        elif data.get("activation_function") == "gelu_new":
            data["activation_function"] = "gelu_accurate"
        elif data.get("activation_function") == "silu":
            data["activation_function"] = "swish"
        if "encoder_embed_dim" not in data:  # transformers' FSMT config
            if "d_model" not in data:
                raise ConfigError(f"{source}: has neither encoder_embed_dim nor d_model; is this an FSMT model folder?")
            data["encoder_embed_dim"] = data["decoder_embed_dim"] = data["d_model"]
            pos = data.get("max_position_embeddings", 1024)
            data.setdefault("max_source_positions", pos)
            data.setdefault("max_target_positions", pos)
            data["share_all_embeddings"] = bool(data.get("tie_word_embeddings", False))
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known}).validate(source)

    @classmethod
    def from_pretrained(cls, model_dir: str | Path) -> "FSMTConfig":
        path = Path(model_dir) / "config.json"
        return cls.from_dict(read_json(path, "model config"), source=str(path))

    @property
    def src_lang(self) -> str:
        return self.langs[0]

    @property
    def tgt_lang(self) -> str:
        return self.langs[1]
