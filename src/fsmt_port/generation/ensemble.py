"""Several models decoding as one: fairseq's ``EnsembleModel``.

Each model keeps its own encoder output and cache. Per step the log-probs are
combined as ``logsumexp_i(lprobs_i) - log(N)``, the log of the averaged
probabilities; a single model's log-softmax is used as it is.

Shallow fusion (fairseq's ``--lm-path``/``--lm-weight``): a language model reads the
same target prefix (its own incremental cache, reordered with the beams) and
``lm_weight * its log-softmax`` is added to the combined log-probs, before any
search rule (pad, unk penalty, lengths) is applied, as in fairseq's SequenceGenerator.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from fsmt_port.errors import ConfigError


class EnsembleDecoder:
    def __init__(self, models: list, lm=None, lm_weight: float = 0.0) -> None:
        if not models:
            raise ConfigError("an ensemble needs at least one model")
        first = models[0].config
        for index, model in enumerate(models[1:], start=1):
            cfg = model.config
            if (cfg.src_vocab_size, cfg.tgt_vocab_size) != (first.src_vocab_size, first.tgt_vocab_size):
                raise ConfigError(
                    f"ensemble member {index} has vocabularies {cfg.src_vocab_size}/{cfg.tgt_vocab_size}, "
                    f"member 0 has {first.src_vocab_size}/{first.tgt_vocab_size}; ensembles need the same ones")
        self.models = models
        self.caches: list = []
        self.vocab_size = first.tgt_vocab_size
        self.temperature = 1.0  # logits are divided by it before the log-softmax (fairseq: every mode)
        self.record_attention = False  # keep ``attention`` per step, for alignments
        self.attention: torch.Tensor | None = None  # (rows, S): last layer's encoder attention, mean over heads
        if lm is not None and lm.config.vocab_size != self.vocab_size:
            raise ConfigError(f"the fusion language model has {lm.config.vocab_size} symbols, the translation "
                              f"model's target dictionary {self.vocab_size}; fusion needs the same dictionary")
        self.lm, self.lm_weight, self.lm_cache = lm, lm_weight, None

    @property
    def max_target_positions(self) -> int:
        return min(m.config.max_target_positions for m in self.models)

    @property
    def max_source_positions(self) -> int:
        return min(m.config.max_source_positions for m in self.models)

    def start(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, beam: int) -> None:
        """Encode once per model; cross-attention K/V are kept per sentence, not per beam."""
        self.caches = []
        for model in self.models:
            encoder_out = model.encode(input_ids, attention_mask)
            cache = model.model.decoder.start(encoder_out)
            cache.record_attention = self.record_attention
            self.caches.append(cache)
        if self.lm is not None:
            self.lm_cache = self.lm.decoder.start()

    def step(self, last_tokens: torch.Tensor) -> torch.Tensor:
        """last_tokens: (rows, 1) -> float32 log-probs (rows, V) for the next token."""
        all_lprobs = []
        for model, cache in zip(self.models, self.caches):
            decoder = model.model.decoder
            logits = decoder.logits(decoder(last_tokens, cache)[:, -1, :])
            if self.temperature != 1.0:
                logits = logits.div_(self.temperature)
            all_lprobs.append(F.log_softmax(logits.float(), dim=-1))
        if self.record_attention:  # fairseq sums the models' attention in order, then divides
            self.attention = self.caches[0].attention[:, -1, :].clone()
            for cache in self.caches[1:]:
                self.attention.add_(cache.attention[:, -1, :])
            if len(self.caches) > 1:
                self.attention.div_(len(self.caches))
        if len(all_lprobs) == 1:
            lprobs = all_lprobs[0]
        else:
            lprobs = torch.logsumexp(torch.stack(all_lprobs, dim=0), dim=0) - math.log(len(all_lprobs))
        if self.lm is not None:
            decoder = self.lm.decoder
            lm_logits = decoder.logits(decoder(last_tokens, self.lm_cache)[:, -1, :])
            lprobs += F.log_softmax(lm_logits.float(), dim=-1) * self.lm_weight
        return lprobs

    def release(self) -> None:
        """Return every cache's buffers to its decoder's pool (the next generate reuses them)."""
        for cache in self.caches:
            cache.release()
        if self.lm_cache is not None:
            self.lm_cache.release()
        self.caches, self.lm_cache = [], None

    def reorder(self, rows: torch.Tensor, sentences: torch.Tensor | None) -> None:
        for cache in self.caches:
            cache.reorder(rows, sentences)
        if self.lm_cache is not None:
            self.lm_cache.reorder(rows, None)


@functools.lru_cache(maxsize=4)
def _load_fusion_lm(path: str, device: str, dtype: torch.dtype):
    from fsmt_port.modeling.language_model import TransformerLM, is_language_model_dir

    if not is_language_model_dir(path):
        raise ConfigError(f"lm_path={path!r} is not a converted language model folder; convert the fairseq "
                          "transformer_lm checkpoint with python -m fsmt_port.convert --fsmt-path model.pt "
                          "--output-dir LM and pass LM")
    return TransformerLM.from_pretrained(path, dtype=dtype, device=device)


def fusion_lm(config, models: list):
    """The language model of ``config.lm_path`` (None without one or with ``lm_weight == 0``), loaded
    once per folder on the translation models' device and dtype."""
    if not config.lm_path or not config.lm_weight:
        return None
    return _load_fusion_lm(str(config.lm_path), str(models[0].device), models[0].dtype)
