"""Text in, translations out: tokenizer + model(s) + length-sorted batching.

The Python API behind ``fsmt-translate`` and ``run_eval``::

    translator = Translator.from_pretrained(["wmt19-en-de"])        # several dirs = ensemble
    results = translator.translate(["Hello world!"], num_beams=5)
    results[0].hypotheses[0].text
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch

from fsmt_port.errors import ConfigError, InputError
from fsmt_port.generation import Hypothesis, SequenceGenerator, resolve_generation_config
from fsmt_port.generation.config import GenerationConfig
from fsmt_port.modeling.model import FSMTForConditionalGeneration, resolve_dtype
from fsmt_port.tokenization.padding import left_pad
from fsmt_port.tokenization.tokenizer import FSMTTokenizer

QUANTIZATIONS = ("none", "int8")


@dataclass
class TranslatedHypothesis:
    text: str
    tokens: list[int]  # target ids ending with </s> (fairseq hub ``generate`` tokens)
    score: float
    positional_scores: list[float]


@dataclass
class Translation:
    id: int
    source: str
    hypotheses: list[TranslatedHypothesis]

    def to_json(self) -> dict:
        return {"id": self.id, "source": self.source,
                "hypotheses": [vars(h) for h in self.hypotheses]}


def make_batches(lengths: Sequence[int], batch_size: int | None, max_tokens: int | None) -> list[list[int]]:
    """Indices sorted by length (longest first), cut so a batch has at most ``batch_size``
    sentences and at most ``max_tokens`` padded source tokens."""
    if not batch_size and not max_tokens:
        batch_size = 32
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        longest = max([lengths[i] for i in current] + [lengths[index]])
        too_many = batch_size is not None and len(current) + 1 > batch_size
        too_long = max_tokens is not None and longest * (len(current) + 1) > max_tokens
        if current and (too_many or too_long):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def pad_left(rows: list[list[int]], pad: int = 1) -> torch.Tensor:
    """A left-padded (batch, longest) tensor of source ids, as fairseq batches them."""
    return torch.tensor(left_pad(rows, pad), dtype=torch.long)


class Translator:
    def __init__(self, models: list[FSMTForConditionalGeneration], tokenizer: FSMTTokenizer,
                 generation_config: GenerationConfig | None = None) -> None:
        self.models = models
        self.tokenizer = tokenizer
        self.generation_config = generation_config or models[0].generation_config

    @classmethod
    def from_pretrained(cls, model_dirs: Sequence[str | os.PathLike] | str | os.PathLike,
                        device: str | None = None, dtype: str | None = None, quantize: str = "none",
                        trust_checkpoint: bool = False) -> "Translator":
        """Load one model folder, or several (an ensemble). ``trust_checkpoint``: see
        ``FSMTForConditionalGeneration.from_pretrained``."""
        if isinstance(model_dirs, (str, os.PathLike)):
            model_dirs = [model_dirs]
        if not model_dirs:
            raise ConfigError("give at least one model folder")
        device = resolve_device(device)
        if quantize not in QUANTIZATIONS:
            raise ConfigError(f"unknown quantization {quantize!r}; expected one of {QUANTIZATIONS}")
        models = [FSMTForConditionalGeneration.from_pretrained(d, dtype=dtype, device=device,
                                                               trust_checkpoint=trust_checkpoint) for d in model_dirs]
        if quantize == "int8":
            if device.type != "cpu" or resolve_dtype(dtype) != torch.float32:
                raise ConfigError("--quantize int8 is a CPU fp32 feature; use --device cpu --dtype fp32")
            models = [quantize_int8(m) for m in models]
        tokenizer = FSMTTokenizer.from_pretrained(model_dirs[0])
        config = models[0].config
        for vocab, size, name in ((tokenizer.src_vocab, config.src_vocab_size, "src"),
                                  (tokenizer.tgt_vocab, config.tgt_vocab_size, "tgt")):
            if len(vocab) > size:  # its ids would index past the embedding
                raise ConfigError(f"{Path(model_dirs[0]) / f'vocab-{name}.json'}: {len(vocab)} entries, more than "
                                  f"config.json's {name}_vocab_size={size}; re-convert the checkpoint")
        for other in model_dirs[1:]:
            theirs = FSMTTokenizer.from_pretrained(other)
            if theirs.src_vocab != tokenizer.src_vocab or theirs.tgt_vocab != tokenizer.tgt_vocab:
                raise ConfigError(f"{other}: its vocabularies differ from {model_dirs[0]}'s; "
                                  "an ensemble needs models trained with the same dictionaries")
        return cls(models, tokenizer)

    def encode(self, lines: Sequence[str], truncate: bool = False, first_line: int = 1) -> list[list[int]]:
        """Source ids per line; too-long lines are an error naming the line, or cut with ``truncate``."""
        limit = min(m.config.max_source_positions for m in self.models)
        encoded = []
        for number, line in enumerate(lines, start=first_line):
            ids = self.tokenizer.encode(line)
            if len(ids) > limit:
                if not truncate:
                    raise InputError(f"line {number} has {len(ids)} tokens, more than the model's "
                                     f"max_source_positions={limit}; shorten it or pass --truncate")
                ids = ids[: limit - 1] + [self.tokenizer.eos_token_id]
            encoded.append(ids)
        return encoded

    def generate_ids(self, id_lists: Sequence[list[int]], batch_size: int | None = 32,
                     max_tokens: int | None = None, progress=None, keep: int | None = None,
                     **generation_kwargs) -> list[list[Hypothesis]]:
        """Hypotheses per input, in input order, whatever the batching.

        ``keep``: hold only the best ``keep`` hypotheses per input (default: all). Kept
        tensors are copied out of the batch's buffers, so a finished batch frees its memory.
        """
        config = resolve_generation_config(self.generation_config, **generation_kwargs)
        generator = SequenceGenerator(self.models, config)
        device = self.models[0].device
        results: list[list[Hypothesis] | None] = [None] * len(id_lists)
        for batch in make_batches([len(x) for x in id_lists], batch_size, max_tokens):
            hypos = generator.generate(pad_left([id_lists[i] for i in batch]).to(device))
            for index, sentence_hypos in zip(batch, hypos):
                results[index] = [Hypothesis(h.tokens.clone(), h.score, h.positional_scores.clone())
                                  for h in sentence_hypos[:keep]]
            if progress is not None:
                progress.update(len(batch))
        return results  # type: ignore[return-value]

    def translate(self, lines: Sequence[str], batch_size: int | None = 32, max_tokens: int | None = None,
                  truncate: bool = False, nbest: int | None = None, progress=None,
                  **generation_kwargs) -> list[Translation]:
        """Translate lines; each result has ``nbest`` hypotheses (default: all ``num_beams``, as fairseq's hub)."""
        ids = self.encode(lines, truncate=truncate)
        hypotheses = self.generate_ids(ids, batch_size, max_tokens, progress=progress, keep=nbest,
                                       **generation_kwargs)
        out = []
        for index, (line, hypos) in enumerate(zip(lines, hypotheses)):
            out.append(Translation(index, line, [
                TranslatedHypothesis(self.tokenizer.decode(h.tokens.tolist()), h.tokens.tolist(), float(h.score),
                                     [float(s) for s in h.positional_scores.tolist()]) for h in hypos]))
            hypotheses[index] = None  # type: ignore[call-overload]  # free the tensors as we go
        return out


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r}; expected cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available on this machine")
    return resolved


def quantize_int8(model: FSMTForConditionalGeneration) -> FSMTForConditionalGeneration:
    """Dynamic int8 quantization of every Linear (weights int8, activations quantized per batch)."""
    from torch.ao.quantization import quantize_dynamic

    return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
