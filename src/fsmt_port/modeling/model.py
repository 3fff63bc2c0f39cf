"""``FSMTForConditionalGeneration``: load a converted folder, run it, generate.

The module tree mirrors transformers' FSMT (``model.encoder``, ``model.decoder``)
so a converted folder is readable by both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from fsmt_port.modeling.configuration import FSMTConfig
from fsmt_port.errors import CheckpointError, ConfigError, MissingFileError
from fsmt_port.files import atomic_path, write_json
from fsmt_port.generation.config import GenerationConfig
from fsmt_port.modeling.layout import relayout_output_projection
from fsmt_port.modeling.positions import SinusoidalPositions
from fsmt_port.modeling.transformer import EncoderOutput, FSMTModel
from fsmt_port.modeling.validation import check_weights_fit, read_weight_shapes
from fsmt_port.modeling.weights import (
    file_to_module,
    load_checked,
    module_to_file,
    non_persistent_ok,
    tied_module_keys,
)

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
GENERATION_CONFIG_NAME = "generation_config.json"
LEGACY_WEIGHTS_NAME = "pytorch_model.bin"
#: Every dtype name we accept: the short ones of the command lines (``DTYPE_CHOICES``) and torch's.
DTYPES = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
          "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
DTYPE_CHOICES = ("fp32", "fp16", "bf16")


def dtype_name(dtype: torch.dtype) -> str:
    """torch's name without the module: ``float16`` (as config.json records the storage dtype)."""
    return str(dtype).removeprefix("torch.")


@dataclass
class Seq2SeqLMOutput:
    logits: torch.Tensor  # (B, T, V) in the HF convention: next-token scores for each position
    encoder_last_hidden_state: torch.Tensor


class FSMTForConditionalGeneration(nn.Module):
    def __init__(self, config: FSMTConfig, generation_config: GenerationConfig | None = None) -> None:
        super().__init__()
        self.config = config.validate()
        self.generation_config = generation_config or GenerationConfig()
        self.model = FSMTModel(config)
        self.eval()

    # --- loading and saving --------------------------------------------------------
    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike, dtype: str | torch.dtype | None = None,
                        device: str | torch.device | None = None, trust_checkpoint: bool = False, *,
                        revision: str | None = None, local_files_only: bool = False,
                        cache_dir: str | os.PathLike | None = None) -> "FSMTForConditionalGeneration":
        """Load a folder written by ``fsmt_port.fairseq.convert`` or by transformers' FSMT, or a hub repo id
        (``facebook/wmt19-en-de``; ``revision``, ``local_files_only``, ``cache_dir`` as in huggingface_hub).

        ``dtype`` (fp32/fp16/bf16) is the compute dtype; weights stored in fp16 are
        upcast to fp32 by default, as fairseq's hub does. ``trust_checkpoint`` lets a legacy
        ``pytorch_model.bin`` unpickle more than tensors (it can run code: only for trusted files).
        """
        from fsmt_port.hub import CONFIG_FILES, WEIGHT_FILES, resolve_model_dir

        model_dir = resolve_model_dir(model_dir, revision=revision, local_files_only=local_files_only,
                                      files=CONFIG_FILES + WEIGHT_FILES, cache_dir=cache_dir)
        config = FSMTConfig.from_pretrained(model_dir)
        generation_config = GenerationConfig.from_pretrained(model_dir)
        compute_dtype = resolve_dtype(dtype)
        # The config's sizes must be the weights' before anything is built: from the safetensors header
        # (no tensor read), or from a legacy pytorch_model.bin once unpickled.
        safetensors_file = model_dir / WEIGHTS_NAME
        if safetensors_file.is_file():
            check_weights_fit(config, read_weight_shapes(safetensors_file), str(model_dir / CONFIG_NAME))
        state = read_weights(model_dir, trust_checkpoint)
        if not safetensors_file.is_file():
            check_weights_fit(config, {k: v.shape for k, v in state.items()}, str(model_dir / CONFIG_NAME))
        with torch.device("meta"):  # no memory, no random init: the weights come from the file
            model = cls(config, generation_config)
        model.load_file_state(state, source=str(model_dir), dtype=compute_dtype)
        model.to(device=device)
        return model

    def load_file_state(self, file_state: dict[str, torch.Tensor], source: str,
                        dtype: torch.dtype = torch.float32) -> None:
        """Strict load: every weight set, every shape right, nothing unexplained left over.

        The file's tensors become the parameters (``assign``), converted to ``dtype``
        only where they differ: a memory-mapped file of the right dtype is used in
        place, without a copy (fused q/k/v projections are the only copies). Build
        the model on the meta device and call this to materialise it.
        """
        expected = self.state_dict()
        module_state = file_to_module({k: v for k, v in file_state.items()
                                       if k in expected or not non_persistent_ok(k)})
        tied = set(tied_module_keys(self.config))
        if self.config.share_decoder_input_output_embed:
            tied.add("model.decoder.output_projection.weight")
        load_checked(self, module_state, expected, tied, source, dtype)
        self.model.tie_weights(self.config)
        for module in self.modules():  # computed (non-persistent) buffers: sinusoidal tables
            if isinstance(module, SinusoidalPositions):
                module.materialize(dtype)
        relayout_output_projection(self.model.decoder)

    def save_pretrained(self, out_dir: str | os.PathLike, storage_dtype: torch.dtype | None = None,
                        generation_provenance: dict | None = None) -> None:
        """Write model.safetensors, config.json and generation_config.json into an existing folder.

        Each file is written atomically; ``generation_provenance`` is recorded in generation_config.json.
        """
        from safetensors.torch import save_file

        out_dir = Path(out_dir)
        state = module_to_file(self.state_dict(), self.config)
        state = {k: v.detach().to("cpu", storage_dtype or v.dtype).contiguous()
                 for k, v in state.items() if not k.endswith("embed_positions.table")}
        seen: set[int] = set()
        for key, tensor in state.items():  # safetensors stores no aliases: copy tied weights
            if tensor.data_ptr() in seen:
                state[key] = tensor.clone()
            seen.add(tensor.data_ptr())
        with atomic_path(out_dir / WEIGHTS_NAME) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt"})
        config = self.config.to_dict()
        config["dtype"] = dtype_name(storage_dtype or next(iter(state.values())).dtype)
        write_json(out_dir / CONFIG_NAME, config)
        ids = {"bos_token_id": self.config.bos_token_id, "pad_token_id": self.config.pad_token_id,
               "eos_token_id": self.config.eos_token_id, "decoder_start_token_id": self.config.decoder_start_token_id,
               "forced_eos_token_id": self.config.eos_token_id}
        write_json(out_dir / GENERATION_CONFIG_NAME,
                   self.generation_config.to_file_dict(provenance=generation_provenance, special=ids))

    # --- running -------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.model.decoder.embed_tokens.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.decoder.embed_tokens.weight.dtype

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> EncoderOutput:
        return self.model.encoder(input_ids, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                decoder_input_ids: torch.Tensor | None = None,
                encoder_outputs: EncoderOutput | None = None) -> Seq2SeqLMOutput:
        """Teacher-forced scores. ``decoder_input_ids`` start with ``</s>`` as in fairseq."""
        if decoder_input_ids is None:
            raise ConfigError("decoder_input_ids is required: [</s>] + target[:-1], as fairseq feeds the decoder")
        encoder_out = encoder_outputs or self.encode(input_ids, attention_mask)
        cache = self.model.decoder.start(encoder_out)
        hidden = self.model.decoder(decoder_input_ids, cache)
        return Seq2SeqLMOutput(self.model.decoder.logits(hidden), encoder_out.hidden)

    def score(self, sources, targets, batch_size: int = 32) -> list:
        """fairseq's SequenceScorer: lists of source ids and target ids (ending with ``</s>``) ->
        per pair ``tokens``, ``positional_scores``, ``score`` (mean log-prob, ``</s>`` included)."""
        from fsmt_port.scoring.scorer import score_translations

        return score_translations([self], sources, targets, batch_size=batch_size)

    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 generation_config: GenerationConfig | None = None, return_dict_in_generate: bool = False,
                 **kwargs):
        """Beam search with fairseq's exact semantics; see ``fsmt_port.generation``."""
        from fsmt_port.generation import generate

        return generate([self], input_ids, attention_mask, generation_config or self.generation_config,
                        return_dict_in_generate=return_dict_in_generate, **kwargs)


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPE_CHOICES)}")
    return DTYPES[dtype]


def read_weights(model_dir: Path, trust_checkpoint: bool = False) -> dict[str, torch.Tensor]:
    """model.safetensors (memory-mapped), else a transformers ``pytorch_model.bin`` loaded safely."""
    path = model_dir / WEIGHTS_NAME
    if path.is_file():
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(f"{path}: unreadable safetensors file ({err}); re-convert with --force") from None
    legacy = model_dir / LEGACY_WEIGHTS_NAME
    if legacy.is_file():
        from fsmt_port.fairseq.checkpoint import load_torch_file

        state = load_torch_file(legacy, trust=trust_checkpoint)
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise CheckpointError(f"{legacy}: not a state_dict of tensors")
        return state
    raise MissingFileError(f"{model_dir}: no {WEIGHTS_NAME} (or {LEGACY_WEIGHTS_NAME}); "
                          "convert a fairseq checkpoint with python -m fsmt_port.fairseq.convert")
