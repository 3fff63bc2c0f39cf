"""fairseq's ``transformer_lm``: the translation decoder without cross-attention, on its own.

The network is ``modeling.transformer.Decoder`` (the same code as the translation
decoder, built from an ``LMConfig``), so incremental decoding, the cache and the
attention are shared. ``config.json`` has ``model_type: fsmt_port_lm``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fsmt_port.config_fields import check_field_types
from fsmt_port.errors import CheckpointError, ConfigError
from fsmt_port.files import atomic_path, read_json, write_json
from fsmt_port.modeling.validation import SUPPORTED_ACTIVATIONS
from fsmt_port.modeling.layout import relayout_output_projection
from fsmt_port.modeling.positions import SinusoidalPositions
from fsmt_port.modeling.transformer import Decoder
from fsmt_port.modeling.weights import file_to_module, load_checked, module_to_file, non_persistent_ok

MODEL_TYPE = "fsmt_port_lm"
TOKENIZERS = ("moses", "none")


@dataclass
class LMConfig:
    """The shape of a fairseq ``transformer_lm`` and how its text is tokenized."""

    vocab_size: int = 0
    lang: str = "xx"  # moses language of the text it scores
    tokenizer: str = "none"  # "moses" (transformer_lm.wmt19.*) or "none" (fastBPE on the raw text)
    decoder_embed_dim: int = 512
    decoder_input_dim: int = 512  # token embedding width (project_in_dim when != embed_dim)
    decoder_output_dim: int = 512  # output projection width (project_out_dim when != embed_dim)
    decoder_ffn_dim: int = 2048
    decoder_layers: int = 6
    decoder_attention_heads: int = 8
    decoder_normalize_before: bool = False
    decoder_learned_pos: bool = False
    decoder_final_layer_norm: bool = False
    activation_function: str = "relu"
    scale_embedding: bool = True
    layernorm_embedding: bool = False
    no_token_positional_embeddings: bool = False
    share_decoder_input_output_embed: bool = False
    max_target_positions: int = 1024
    layer_norm_eps: float = 1e-5
    pad_token_id: int = 1
    bos_token_id: int = 0
    eos_token_id: int = 2
    unk_token_id: int = 3
    decoder_start_token_id: int = 2  # </s>, or <s> with fairseq's add_bos_token
    dtype: str = "float32"

    # what the shared Decoder reads
    decoder_cross_attention = False
    share_all_embeddings = False

    def __post_init__(self) -> None:
        check_field_types(self, "language model config")  # JSON gives any type anywhere
        if self.activation_function not in SUPPORTED_ACTIVATIONS:
            raise ConfigError(f"activation_function={self.activation_function!r} is not supported; "
                              f"expected one of {', '.join(SUPPORTED_ACTIVATIONS)}")
        if self.decoder_attention_heads <= 0 or self.decoder_embed_dim % self.decoder_attention_heads:
            raise ConfigError(f"decoder_embed_dim={self.decoder_embed_dim} is not divisible by "
                              f"decoder_attention_heads={self.decoder_attention_heads}")
        if self.tokenizer not in TOKENIZERS:
            raise ConfigError(f"tokenizer={self.tokenizer!r}; expected one of {', '.join(TOKENIZERS)}")

    @property
    def tgt_vocab_size(self) -> int:
        return self.vocab_size

    def to_dict(self) -> dict:
        return {"model_type": MODEL_TYPE, "architectures": ["TransformerLanguageModel"], **asdict(self)}

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike) -> "LMConfig":
        path = Path(model_dir) / "config.json"
        data = read_json(path, "language model config")
        if not isinstance(data, dict) or data.get("model_type") != MODEL_TYPE:
            kind = data.get("model_type") if isinstance(data, dict) else type(data).__name__
            raise ConfigError(f"{path}: model_type={kind!r} is not a language model "
                              f"({MODEL_TYPE}); convert a fairseq transformer_lm checkpoint")
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None


def is_language_model_dir(model_dir: str | os.PathLike) -> bool:
    """True for a folder holding a converted ``transformer_lm``."""
    path = Path(model_dir) / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("model_type") == MODEL_TYPE
    except (OSError, ValueError, AttributeError):
        return False


class TransformerLM(nn.Module):
    """The network: ``self.decoder`` is fairseq's ``TransformerDecoder(no_encoder_attn=True)``."""

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.config = config
        self.decoder = Decoder(config)
        if config.share_decoder_input_output_embed:
            self.decoder.output_projection.weight = self.decoder.embed_tokens.weight
        self.eval()

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike, dtype: torch.dtype = torch.float32,
                        device: str | torch.device | None = None) -> "TransformerLM":
        from fsmt_port.modeling.model import read_weights

        model_dir = Path(model_dir)
        config = LMConfig.from_pretrained(model_dir)
        with torch.device("meta"):
            model = cls(config)
        model.load_file_state(read_weights(model_dir), str(model_dir), dtype)
        return model.to(device=device)

    def load_file_state(self, file_state: dict[str, torch.Tensor], source: str,
                        dtype: torch.dtype = torch.float32) -> None:
        """Strict: every weight of the network set from the file, nothing left over."""
        expected = self.state_dict()
        tied = {"decoder.output_projection.weight"} if self.config.share_decoder_input_output_embed else set()
        module_state = file_to_module({k: v for k, v in file_state.items()
                                       if k in expected or not non_persistent_ok(k)})
        load_checked(self, module_state, expected, tied, source, dtype)
        if self.config.share_decoder_input_output_embed:
            self.decoder.output_projection.weight = self.decoder.embed_tokens.weight
        for module in self.modules():
            if isinstance(module, SinusoidalPositions):
                module.materialize(dtype)
        relayout_output_projection(self.decoder)

    def save_pretrained(self, out_dir: str | os.PathLike, storage_dtype: torch.dtype | None = None) -> None:
        from safetensors.torch import save_file

        state = module_to_file(self.state_dict(), self.config)
        if self.config.share_decoder_input_output_embed:
            state.pop("decoder.output_projection.weight", None)
        state = {k: v.detach().to("cpu", storage_dtype or v.dtype).contiguous()
                 for k, v in state.items() if not k.endswith("embed_positions.table")}
        with atomic_path(Path(out_dir) / "model.safetensors") as tmp:  # one writer: umask modes, atomic
            save_file(state, str(tmp), metadata={"format": "pt"})
        config = self.config.to_dict()
        config["dtype"] = str(storage_dtype or next(iter(state.values())).dtype).replace("torch.", "")
        write_json(Path(out_dir) / "config.json", config)

    @property
    def device(self) -> torch.device:
        return self.decoder.embed_tokens.weight.device

    def log_probs(self, prev_tokens: torch.Tensor) -> torch.Tensor:
        """Teacher-forced float32 log-probs (rows, T, V) of a right-padded batch of inputs."""
        decoder = self.decoder
        hidden = decoder(prev_tokens.to(self.device), decoder.start())
        return F.log_softmax(decoder.logits(hidden).float(), dim=-1)
