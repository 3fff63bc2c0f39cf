"""``LanguageModel``: fairseq's ``TransformerLanguageModel`` hub, for scoring text.

``LanguageModel.from_pretrained(dir).score(texts)`` is ``lm.score(texts)`` of fairseq's hub:
text -> (moses, when the folder says so) -> fastBPE -> ids; the final ``</s>`` is
stripped (fairseq's LM dataset), the model reads ``[</s>] + tokens``, and each token's
log-prob is returned. An empty text has no tokens and a NaN score.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch

from fsmt_port.errors import ConfigError
from fsmt_port.modeling.language_model import LMConfig, TransformerLM
from fsmt_port.modeling.model import resolve_dtype
from fsmt_port.scoring.scorer import ScoredSequence, score_language_model
from fsmt_port.tokenization.tokenizer import FSMTTokenizer


class LanguageModel:
    def __init__(self, models: list[TransformerLM], tokenizer: FSMTTokenizer) -> None:
        self.models = models
        self.tokenizer = tokenizer
        self.config: LMConfig = models[0].config

    @classmethod
    def from_pretrained(cls, model_dirs: Sequence[str | os.PathLike] | str | os.PathLike,
                        device: str | None = None, dtype: str | None = None) -> "LanguageModel":
        """One folder, or several (an ensemble: probabilities averaged, as fairseq's scorer does)."""
        from fsmt_port.translation.translator import resolve_device

        if isinstance(model_dirs, (str, os.PathLike)):
            model_dirs = [model_dirs]
        if not model_dirs:
            raise ConfigError("give at least one language model folder")
        device = resolve_device(device)
        models = [TransformerLM.from_pretrained(d, dtype=resolve_dtype(dtype), device=device) for d in model_dirs]
        tokenizer = FSMTTokenizer.from_pretrained(model_dirs[0])
        for other, model in zip(model_dirs[1:], models[1:]):
            if model.config.vocab_size != models[0].config.vocab_size or \
                    FSMTTokenizer.from_pretrained(other).tgt_vocab != tokenizer.tgt_vocab:
                raise ConfigError(f"{other}: its dictionary differs from {model_dirs[0]}'s; "
                                  "an ensemble of language models needs one dictionary")
        return cls(models, tokenizer)

    def encode(self, text: str) -> list[int]:
        """fairseq hub ``encode``: ids ending with ``</s>``."""
        tok = self.tokenizer
        if self.config.tokenizer == "moses":
            text = tok.moses_tokenize(text, self.config.lang)
        return tok.tgt_dict.encode_line(tok.apply_bpe(text))

    def scored_tokens(self, text: str) -> list[int]:
        """What fairseq's LM dataset scores: the encoding with ``</s>`` stripped from both ends."""
        ids = self.encode(text)
        eos = self.config.eos_token_id
        while ids and ids[-1] == eos:
            ids.pop()
        while ids and ids[0] == eos:
            ids.pop(0)
        return ids

    def score(self, texts: Sequence[str] | str, batch_size: int = 32, progress=None):
        """Per text: ``tokens``, ``positional_scores`` (natural log) and ``score`` (their mean)."""
        if isinstance(texts, str):
            return self.score([texts], batch_size)[0]
        return self.score_ids([self.scored_tokens(t) for t in texts], batch_size, progress)

    def score_ids(self, token_lists: Sequence[Sequence[int]], batch_size: int = 32,
                  progress=None) -> list[ScoredSequence]:
        """Scores of token ids as given (append ``</s>`` yourself to score it too)."""
        return score_language_model(self.models, token_lists, batch_size, progress)

    @property
    def device(self) -> torch.device:
        return self.models[0].device


def load_language_model(model_dirs, device: str | None = None, dtype: str | None = None) -> LanguageModel:
    """``LanguageModel.from_pretrained`` for a path or paths (CLI helper, checks the folders exist)."""
    dirs = [model_dirs] if isinstance(model_dirs, (str, os.PathLike)) else list(model_dirs)
    for d in dirs:
        if not Path(d).is_dir():
            raise ConfigError(f"{d}: language model folder not found; convert the checkpoint first")
    return LanguageModel.from_pretrained(dirs, device=device, dtype=dtype)
