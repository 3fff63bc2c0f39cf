"""Text in, translations out: tokenizer + model(s) + length-sorted batching.

The Python API behind ``fsmt-translate`` and ``run_eval``::

    translator = Translator.from_pretrained(["wmt19-en-de"])        # several dirs = ensemble
    results = translator.translate(["Hello world!"], num_beams=5)
    results[0].hypotheses[0].text
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import torch

from fsmt_port.errors import ConfigError, InputError
from fsmt_port.generation import Hypothesis, SequenceGenerator, as_prefix_tensor, resolve_generation_config
from fsmt_port.generation.config import GenerationConfig
from fsmt_port.hub import resolve_model_dir
from fsmt_port.modeling.model import FSMTForConditionalGeneration, resolve_dtype
from fsmt_port.modeling.quantization import quantize_int8
from fsmt_port.tokenization.padding import left_pad
from fsmt_port.tokenization.tokenizer import FSMTTokenizer
from fsmt_port.translation.windows import DEFAULT_BUFFER_SIZE, read_windows
from fsmt_port.translation.workers import AUTO, check_workers, map_on_workers, resolve_workers

QUANTIZATIONS = ("none", "int8")


@dataclass
class TranslatedHypothesis:
    text: str
    tokens: list[int]  # target ids ending with </s> (fairseq hub ``generate`` tokens)
    score: float
    positional_scores: list[float]
    alignment: list | None = None  # with print_alignment (hard: [src, tgt] pairs; soft: weight rows)

    def to_json(self) -> dict:
        data = vars(self).copy()
        if data["alignment"] is None:
            del data["alignment"]
        return data


@dataclass
class Translation:
    id: int
    source: str
    hypotheses: list[TranslatedHypothesis]

    def to_json(self) -> dict:
        return {"id": self.id, "source": self.source,
                "hypotheses": [h.to_json() for h in self.hypotheses]}


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
                 generation_config: GenerationConfig | None = None, workers: int | str = AUTO) -> None:
        """``workers``: batches decoded side by side on CPU threads, or "auto" (``translation.workers``)."""
        self.models = models
        self.tokenizer = tokenizer
        self.generation_config = generation_config or models[0].generation_config
        self.workers = workers
        self.model_dirs: list[Path] | None = None

    @property
    def workers(self) -> int | str:
        return self._workers

    @workers.setter
    def workers(self, value: int | str) -> None:
        self._workers = check_workers(value, self.models[0].device)

    def workers_for(self, config: GenerationConfig | None = None) -> int:
        """How many batches decode side by side under ``config`` (default: this translator's)."""
        config = config or self.generation_config
        return resolve_workers(self.workers, self.models[0].device, config.sampling and config.seed is not None)

    @classmethod
    def from_pretrained(cls, model_dirs: Sequence[str | os.PathLike] | str | os.PathLike,
                        device: str | None = None, dtype: str | None = None, quantize: str = "none", *,
                        revision: str | None = None, local_files_only: bool = False,
                        cache_dir: str | os.PathLike | None = None, trust_checkpoint: bool = False,
                        workers: int | str = AUTO) -> "Translator":
        """Model folder(s) or hub repo id(s) (several = an ensemble); ``revision`` applies to every hub id.
        ``trust_checkpoint``: see ``FSMTForConditionalGeneration.from_pretrained``. ``workers``: batches
        decoded side by side on CPU, each on ``torch.get_num_threads() // workers`` threads; "auto": see
        ``translation.workers``."""
        if isinstance(model_dirs, (str, os.PathLike)):
            model_dirs = [model_dirs]
        if not model_dirs:
            raise ConfigError("give at least one model folder")
        device = resolve_device(device)
        check_workers(workers, device)  # before loading anything
        if quantize not in QUANTIZATIONS:
            raise ConfigError(f"unknown quantization {quantize!r}; expected one of {QUANTIZATIONS}")
        model_dirs = [resolve_model_dir(d, revision=revision, local_files_only=local_files_only, cache_dir=cache_dir)
                      for d in model_dirs]
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
        translator = cls(models, tokenizer, workers=workers)
        translator.model_dirs = [Path(d) for d in model_dirs]  # their files are part of a resumable run's key
        return translator

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
                     prefix_tokens: Sequence[list[int]] | None = None,
                     constraint_ids: Sequence[list[list[int]]] | None = None,
                     **generation_kwargs) -> list[list[Hypothesis]]:
        """Hypotheses per input, in input order, whatever the batching.

        ``keep``: hold only the best ``keep`` hypotheses per input (default: all). Kept
        tensors are copied out of the batch's buffers, so a finished batch frees its memory.
        ``prefix_tokens`` / ``constraint_ids``: per input, target ids (see ``generation.generate``);
        constraint lists alone mean ``constraints="ordered"``.
        One generator serves every batch (one per worker thread when several decode), so a ``seed``
        gives one reproducible stream of draws; a seeded sampling run therefore needs one worker.
        """
        if constraint_ids is not None and generation_kwargs.get("constraints") is None \
                and self.generation_config.constraints is None:
            generation_kwargs["constraints"] = "ordered"
        config = resolve_generation_config(self.generation_config, **generation_kwargs)
        batches = make_batches([len(x) for x in id_lists], batch_size, max_tokens)
        workers = self.workers_for(config)
        device = self.models[0].device
        for name, given in (("prefix_tokens", prefix_tokens), ("constraint_ids", constraint_ids)):
            if given is not None and len(given) != len(id_lists):
                raise InputError(f"{name}: expected one entry per input ({len(id_lists)}), got {len(given)}")
        results: list[list[Hypothesis] | None] = [None] * len(id_lists)
        progress_lock = threading.Lock()

        def decode(generator: SequenceGenerator, batch: list[int]) -> None:
            per_input = {}
            if prefix_tokens is not None:
                per_input["prefix_tokens"] = as_prefix_tensor([prefix_tokens[i] for i in batch]).to(device)
            if constraint_ids is not None:
                per_input["constraints"] = [constraint_ids[i] for i in batch]
            hypos = generator.generate(pad_left([id_lists[i] for i in batch]).to(device), **per_input)
            for index, sentence_hypos in zip(batch, hypos):
                results[index] = [Hypothesis(h.tokens.clone(), h.score, h.positional_scores.clone(), h.alignment)
                                  for h in sentence_hypos[:keep]]
            if progress is not None:
                with progress_lock:
                    progress.update(len(batch))

        map_on_workers(batches, decode, workers, make_state=lambda: SequenceGenerator(self.models, config))
        return results  # type: ignore[return-value]

    def score(self, sources: Sequence[str], targets: Sequence[str], batch_size: int = 32,
              progress=None) -> list:
        """fairseq's ``--score-reference``: each target's tokens, positional log-probs and mean score
        given its source (ensembles average probabilities; see ``fsmt_port.scoring.scorer``)."""
        from fsmt_port.scoring.scorer import score_translations

        if len(sources) != len(targets):
            raise InputError(f"{len(sources)} sources but {len(targets)} targets; give one target per source")
        return score_translations(self.models, self.encode(sources), [self.tokenizer.encode_target(t) for t in targets],
                                  batch_size=batch_size, progress=progress)

    def translate(self, lines: Sequence[str], batch_size: int | None = 32, max_tokens: int | None = None,
                  truncate: bool = False, nbest: int | None = None, progress=None, first_id: int = 0,
                  prefixes: Sequence[str] | None = None, prefix_size: int | None = None,
                  constraints: Sequence[Sequence[str]] | str | None = None,
                  constraint_texts: Sequence[Sequence[str]] | None = None,
                  **generation_kwargs) -> list[Translation]:
        """Translate lines; each result has ``nbest`` hypotheses (default: all ``num_beams``, as fairseq's hub).

        ``first_id``: the input index of ``lines[0]`` (result ids and error line numbers count from it).
        ``prefixes``: per line, target text every hypothesis starts with (its first ``prefix_size``
        tokens if given: fairseq-generate's ``--prefix-size`` with the reference as prefix).
        ``constraints``: per line, target words/phrases to include (fairseq-interactive's encoding);
        or ``"ordered"``/``"unordered"`` (fairseq's option) with the per-line lists in ``constraint_texts``.
        """
        if isinstance(constraints, str):
            generation_kwargs["constraints"] = constraints
            constraints = constraint_texts
        elif constraint_texts is not None:
            raise ConfigError("give the per-line constraints as constraints= or constraint_texts=, not both")
        ids = self.encode(lines, truncate=truncate, first_line=first_id + 1)
        prefix_ids = None if prefixes is None else encode_prefixes(self.tokenizer, prefixes, prefix_size)
        constraint_ids = None if constraints is None else encode_constraints(self.tokenizer, constraints)
        hypotheses = self.generate_ids(ids, batch_size, max_tokens, progress=progress, keep=nbest,
                                       prefix_tokens=prefix_ids, constraint_ids=constraint_ids, **generation_kwargs)
        return self.decode_results(lines, hypotheses, first_id)

    def decode_results(self, lines: Sequence[str], hypotheses: list[list[Hypothesis]],
                       first_id: int = 0) -> list[Translation]:
        """Detokenized ``Translation`` objects; frees each input's tensors as it goes."""
        out = []
        for index, (line, hypos) in enumerate(zip(lines, hypotheses)):
            out.append(Translation(first_id + index, line, [
                TranslatedHypothesis(self.tokenizer.decode(h.tokens.tolist()), h.tokens.tolist(), float(h.score),
                                     [float(s) for s in h.positional_scores.tolist()], h.alignment)
                for h in hypos]))
            hypotheses[index] = None  # type: ignore[call-overload]  # free the tensors as we go
        return out

    def translate_iterable(self, lines: Iterable[str], buffer_size: int = DEFAULT_BUFFER_SIZE,
                           batch_size: int | None = 32, max_tokens: int | None = None, truncate: bool = False,
                           nbest: int | None = None, progress=None, **generation_kwargs) -> Iterator[Translation]:
        """Translations of ``lines`` in input order, ``buffer_size`` lines at a time (sorted and batched
        within each window): never reads more than one window ahead of what it has yielded."""
        for window in read_windows(lines, buffer_size):
            yield from self.translate(window.lines, batch_size, max_tokens, truncate, nbest, progress,
                                      first_id=window.first, **generation_kwargs)

    def translate_file(self, input_path: str | os.PathLike, output_path: str | os.PathLike | None = None,
                       **options) -> int:
        """Translate a file (``-`` = stdin) into ``output_path`` (None = stdout) window by window, exactly as
        ``fsmt-translate`` does: committed and resumable when ``output_path`` is a file. Options are
        ``translation.corpus.CorpusOptions`` fields (buffer_size, batch_size, format, nbest, ...); the others
        are generation arguments (num_beams=5, ...). Returns the number of lines translated."""
        from dataclasses import fields

        from fsmt_port.translation.corpus import CorpusOptions, translate_corpus_file

        names = {f.name for f in fields(CorpusOptions)}
        corpus = {k: v for k, v in options.items() if k in names}
        generation = {**corpus.pop("generation", {}), **{k: v for k, v in options.items() if k not in names}}
        return translate_corpus_file(self, str(input_path), None if output_path is None else str(output_path),
                                     generation=generation, **corpus)


def encode_prefixes(tokenizer: FSMTTokenizer, prefixes: Sequence[str], prefix_size: int | None) -> list[list[int]]:
    """Target-side prefix texts -> ids (the first ``prefix_size`` tokens when given)."""
    if prefix_size is not None and prefix_size < 1:
        raise ConfigError(f"prefix_size must be >= 1, got {prefix_size}")
    out = []
    for number, text in enumerate(prefixes, start=1):
        ids = tokenizer.encode_prefix(text)[:prefix_size]
        if not ids:
            raise InputError(f"prefix {number} ({text!r}) has no tokens; give a non-empty prefix for every line")
        out.append(ids)
    return out


def encode_constraints(tokenizer: FSMTTokenizer, constraints: Sequence[Sequence[str]]) -> list[list[list[int]]]:
    """Per line, constraint strings -> target ids, as fairseq-interactive encodes them. A string that
    tokenizes to nothing, or to a word the target dictionary lacks, is an error naming it."""
    out = []
    for number, strings in enumerate(constraints, start=1):
        encoded = []
        for text in strings:
            ids = tokenizer.encode_constraint(text)
            if not ids:
                raise InputError(f"line {number}: constraint {text!r} tokenizes to nothing; remove it or give a word")
            if tokenizer.unk_token_id in ids:
                raise ConfigError(f"line {number}: constraint {text!r} has a piece missing from the target "
                                  f"dictionary ({tokenizer.string(ids)!r}); it could only be met by <unk>: "
                                  "use words the model knows")
            encoded.append(ids)
        out.append(encoded)
    return out


def split_constraint_lines(lines: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """fairseq-interactive's ``--constraints`` input: ``source<TAB>constraint<TAB>...`` per line."""
    sources, constraints = [], []
    for line in lines:
        source, *wanted = line.split("\t")
        sources.append(source)
        constraints.append(wanted)
    return sources, constraints


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
