"""What the server does with a translation request, apart from HTTP: check it against the server's
limits, turn it into source ids and a generation config, decode in the worker, shape the answer.

Tokenizing and decoding go through the ``Translator`` (its tokenizer, its ``generate_ids`` batching),
so the server translates exactly as ``fsmt-translate`` does with the same arguments.
"""

from __future__ import annotations

import math
import platform
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from fsmt_port.errors import ConfigError, RequestError
from fsmt_port.generation import Hypothesis, SequenceGenerator, resolve_generation_config
from fsmt_port.generation.config import GenerationConfig
from fsmt_port.serving.batcher import BatchingSettings, DynamicBatcher
from fsmt_port.serving.metrics import ServerMetrics
from fsmt_port.serving.schema import TranslateRequest
from fsmt_port.translation.translator import Translator


@dataclass(frozen=True)
class ServeLimits:
    """Per-request caps, enforced before anything is queued (the CLI's ``--max-*`` options)."""

    max_sentences: int = 64  # sentences per request
    max_input_tokens: int | None = None  # per sentence, with </s>; None: the model's max_source_positions
    max_beams: int = 8
    max_output_tokens: int | None = None  # per hypothesis; None: the model's max_target_positions - 1
    max_body_bytes: int = 1 << 20
    truncate: bool = False  # cut long sentences to max_input_tokens instead of refusing them


class TranslationService:
    def __init__(self, translator: Translator, limits: ServeLimits = ServeLimits(),
                 batching: BatchingSettings = BatchingSettings(), metrics: ServerMetrics | None = None,
                 model_sources: list[tuple[str, str]] | None = None) -> None:
        self.translator = translator
        self.metrics = metrics or ServerMetrics()
        self.limits = self._resolve(limits)
        self.batching = batching
        self.model_sources = list(model_sources or [])  # (what the user gave: folder or hub id, local folder)
        self.batcher = DynamicBatcher(self._decode, batching, self.metrics)

    def _resolve(self, limits: ServeLimits) -> ServeLimits:
        models = self.translator.models
        source_limit = min(m.config.max_source_positions for m in models)
        target_limit = min(m.config.max_target_positions for m in models) - 1
        resolved = replace(limits, max_input_tokens=min(limits.max_input_tokens or source_limit, source_limit),
                           max_output_tokens=min(limits.max_output_tokens or target_limit, target_limit))
        for name in ("max_sentences", "max_input_tokens", "max_beams", "max_output_tokens", "max_body_bytes"):
            if getattr(resolved, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(resolved, name)}")
        defaults = self.translator.generation_config
        if defaults.num_beams > resolved.max_beams:
            raise ConfigError(f"the default num_beams={defaults.num_beams} exceeds --max-beams {resolved.max_beams}; "
                              "raise --max-beams or pass a smaller --num-beams")
        if defaults.max_len_a == 0 and defaults.max_len_b > resolved.max_output_tokens:
            raise ConfigError(f"the default max_len_b={defaults.max_len_b} exceeds --max-output-tokens "
                              f"{resolved.max_output_tokens}; pass a smaller --max-len-b")
        return resolved

    # -- request -> queued work ------------------------------------------------------------------

    def prepare(self, request: TranslateRequest) -> tuple[list[list[int]], GenerationConfig]:
        """Source ids and the resolved generation config, or a ``RequestError`` naming the limit."""
        limits = self.limits
        sentences = request.sentences()
        if not sentences:
            raise RequestError("text is an empty list; send at least one sentence", kind="invalid_field")
        if len(sentences) > limits.max_sentences:
            raise RequestError(f"text has {len(sentences)} sentences, more than the server's --max-sentences "
                               f"{limits.max_sentences}; split the request", status=413,
                               kind="too_many_sentences", limit="max_sentences")
        config = self.generation_config(request)
        ids = [self._encode(sentence, index, isinstance(request.text, list)) for index, sentence in enumerate(sentences)]
        try:
            generator = SequenceGenerator(self.translator.models, config)  # checks num_beams against the vocabulary
            max_lengths = generator.max_lengths(torch.tensor([len(x) for x in ids]))  # checks min_len
        except ConfigError as err:
            raise RequestError(str(err), kind="invalid_generation_argument") from None
        longest = int(max_lengths.max())
        if longest > limits.max_output_tokens:
            raise RequestError(f"max_len_a * source length + max_len_b = {longest} output tokens, more than the "
                               f"server's --max-output-tokens {limits.max_output_tokens}; lower max_len_a/max_len_b",
                               kind="disallowed_argument", limit="max_output_tokens")
        return ids, config

    def generation_config(self, request: TranslateRequest) -> GenerationConfig:
        try:
            config = resolve_generation_config(self.translator.generation_config, **request.generation_kwargs())
        except ConfigError as err:
            raise RequestError(str(err), kind="invalid_generation_argument") from None
        if config.num_beams > self.limits.max_beams:
            raise RequestError(f"num_beams={config.num_beams} exceeds the server's --max-beams {self.limits.max_beams}",
                               kind="disallowed_argument", limit="max_beams")
        if config.no_repeat_ngram_size == 1:
            # It bans every token already generated, </s> included (decoding starts from </s>), so no
            # hypothesis can end: the generator cannot decode it.
            raise RequestError("no_repeat_ngram_size=1 would ban </s> (decoding starts from it); use 0 or >= 2",
                               kind="disallowed_argument")
        if request.nbest > config.num_beams:
            raise RequestError(f"nbest={request.nbest} exceeds num_beams={config.num_beams}; "
                               "ask for at most num_beams hypotheses", kind="invalid_field")
        # One canonical config per decoding behaviour, so equal requests share batches.
        return replace(config, num_return_sequences=1)

    def _encode(self, sentence: str, index: int, is_list: bool) -> list[int]:
        limit = self.limits.max_input_tokens
        ids = self.translator.tokenizer.encode(sentence)
        if len(ids) <= limit:
            return ids
        if self.limits.truncate:
            return ids[: limit - 1] + [self.translator.tokenizer.eos_token_id]
        where = f"text[{index}]" if is_list else "text"
        raise RequestError(f"{where} has {len(ids)} tokens, more than the server's --max-input-tokens {limit}; "
                           "shorten or split it", status=413, kind="input_too_long", limit="max_input_tokens")

    # -- the worker's side -----------------------------------------------------------------------

    def _decode(self, ids: list[list[int]], config: GenerationConfig) -> list[list[Hypothesis]]:
        """One batch, one config: ``generate_ids`` sorts it by length and decodes it as one batch."""
        return self.translator.generate_ids(ids, batch_size=len(ids), max_tokens=None, **_generation_kwargs(config))

    # -- results -> the answer -------------------------------------------------------------------

    def answer(self, request: TranslateRequest, ids: list[list[int]], results: list[list[Hypothesis]]) -> dict:
        decode = self.translator.tokenizer.decode
        translations, hypotheses = [], []
        for source_ids, hypos in zip(ids, results):
            shown = []
            for hypo in hypos[: request.nbest]:
                tokens = hypo.tokens.tolist()
                item = {"text": decode(tokens), "score": _finite(float(hypo.score))}
                if request.return_tokens:
                    item["tokens"] = tokens
                    item["positional_scores"] = [_finite(s) for s in hypo.positional_scores.tolist()]
                shown.append(item)
            translations.append(shown[0]["text"])
            hypotheses.append(shown)
            self.metrics.source_tokens.inc(len(source_ids))
            self.metrics.target_tokens.inc(len(hypos[0].tokens))
        self.metrics.sentences.inc(len(ids))
        return {"translations": translations, "hypotheses": hypotheses}

    def info(self) -> dict:
        import fastapi
        import uvicorn

        import fsmt_port

        first = self.translator.models[0]
        return {
            "languages": {"source": self.translator.tokenizer.src_lang, "target": self.translator.tokenizer.tgt_lang},
            "generation_defaults": self.translator.generation_config.to_dict(),
            "models": [_describe_model(source, folder) for source, folder in self.model_sources],
            "ensemble_size": len(self.translator.models),
            "device": str(first.device),
            "dtype": str(next(first.parameters()).dtype).replace("torch.", ""),
            "limits": asdict(self.limits),
            "batching": asdict(self.batching),
            "versions": {"fsmt_port": fsmt_port.__version__, "torch": torch.__version__,
                         "fastapi": fastapi.__version__, "uvicorn": uvicorn.__version__,
                         "python": platform.python_version()},
        }


def _generation_kwargs(config: GenerationConfig) -> dict:
    kwargs = config.to_dict()
    kwargs.pop("num_return_sequences")
    return kwargs


def _finite(value: float) -> float | None:
    """JSON has no inf/NaN; a non-finite score (not seen in practice) becomes null."""
    return value if math.isfinite(value) else None


def _describe_model(source: str, folder: str) -> dict:
    path = Path(folder)
    if not path.is_dir():
        return {"source": source}
    files = sorted((p for p in path.iterdir() if p.is_file()), key=lambda p: p.name)
    return {"source": source, "path": str(path.resolve()),
            "files": [{"name": p.name, "bytes": p.stat().st_size} for p in files]}
