"""The n-best lists and every component score the reranker combines, computed once and cached.

Per sentence (``--input`` line): the ``num_rescore`` hypotheses of the generation model(s)
(beam = n-best = ``num_rescore``, fairseq-generate's length penalty 1.0, as ``rerank_generate.py``
runs it), and per hypothesis:

* ``forward_sum``/``forward_score``: the generator's log-prob sum and normalized score;
* ``bitext1_sum``/``bitext2_sum``: ``--score-model1``/``--score-model2``'s log-prob sum
  (SequenceScorer): of the hypothesis given the source, or, for a backwards (channel) model, of the
  source given the hypothesis. A score model that is the generation model, forwards, reuses the
  generator's positional scores, as fairseq's rerank does;
* ``lm_sum``: the language model's log-prob of the hypothesis including its final ``</s>``
  (fairseq ``eval_lm``'s convention, which rerank reads);
* ``target_len_words`` (words after BPE removal), ``tgt_len_bpe_tokens`` and the sentence's
  ``src_len_bpe_tokens`` (both without ``</s>``): get_score's lengths.

Models exchange token ids through their BPE strings (fairseq's rerank re-binarizes the n-best text
with each model's dictionary), so the models must share the BPE codes. All scores are natural-log
and full precision (fairseq's file pipeline reads base-2 values rounded to 4 decimals).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from fsmt_port.evaluation.cache import TranslationCache, model_fingerprint
from fsmt_port.files import atomic_file
from fsmt_port.scoring.scorer import score_translations

#: fairseq-generate's defaults for the n-best generation (rerank_generate.py passes only beam/nbest)
NBEST_LENGTH_PENALTY = 1.0


@dataclass
class ScoreRole:
    """One ``--score-modelN``: folder(s) (several = ensemble) and ``--backwardsN``."""

    model_dirs: list[str]
    backwards: bool


class ComponentCache:
    """One JSON file per computed component, keyed by everything that changes it."""

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = Path(folder) if folder else None

    def get(self, fields: dict):
        if self.folder is None:
            return None
        path = self.folder / f"{TranslationCache.key(fields)[:32]}.json"
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return entry.get("value") if entry.get("key_fields") == fields else None

    def put(self, fields: dict, value) -> None:
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_file(self.folder / f"{TranslationCache.key(fields)[:32]}.json") as handle:
            json.dump({"key_fields": fields, "value": value}, handle, ensure_ascii=False)

    def cached(self, fields: dict, compute):
        value = self.get(fields)
        if value is None:
            value = compute()
            self.put(fields, value)
        return value


def bpe_string_to_ids(dictionary, bpe: str) -> list[int]:
    """fairseq ``encode_line``: a BPE string into a model's ids, ``</s>`` appended."""
    return dictionary.encode_line(bpe)


def remove_bpe(bpe: str) -> str:
    """fairseq's ``--post-process @@`` (``(x + " ").replace("@@ ", "").rstrip()``)."""
    return (bpe + " ").replace("@@ ", "").rstrip()


def nbest_lists(translator, sources: list[str], num_rescore: int, batch_size: int, progress=None) -> list[dict]:
    """Generate each source's n-best list (JSON-ready)."""
    ids = translator.encode(sources)
    hypotheses = translator.generate_ids(ids, batch_size=batch_size, progress=progress, num_beams=num_rescore,
                                         length_penalty=NBEST_LENGTH_PENALTY)
    tok = translator.tokenizer
    sentences = []
    for index, (source, src_ids, hypos) in enumerate(zip(sources, ids, hypotheses)):
        entries = []
        for h in hypos:
            tokens = h.tokens.tolist()
            bpe = tok.string(tokens)
            positional = [float(s) for s in h.positional_scores.tolist()]
            entries.append({"tokens": tokens, "text": tok.decode(tokens), "bpe": bpe,
                            "forward_score": float(h.score), "forward_positional_scores": positional,
                            "forward_sum": sum(positional), "target_len_words": len(remove_bpe(bpe).split()),
                            "tgt_len_bpe_tokens": len(bpe.split())})
        sentences.append({"index": index, "source": source, "source_bpe": tok.src_dict.string(src_ids),
                          "src_len_bpe_tokens": len(src_ids) - 1, "hypos": entries})
    return sentences


def bitext_sums(translator, sentences: list[dict], backwards: bool, batch_size: int, progress=None
                ) -> list[list[float]]:
    """Per sentence, per hypothesis: the score model's log-prob sum (SequenceScorer)."""
    tok = translator.tokenizer
    sources, targets, shape = [], [], []
    for sentence in sentences:
        shape.append(len(sentence["hypos"]))
        for hypo in sentence["hypos"]:
            if backwards:  # channel model: p(source | hypothesis)
                sources.append(bpe_string_to_ids(tok.src_dict, hypo["bpe"]))
                targets.append(bpe_string_to_ids(tok.tgt_dict, sentence["source_bpe"]))
            else:
                sources.append(bpe_string_to_ids(tok.src_dict, sentence["source_bpe"]))
                targets.append(bpe_string_to_ids(tok.tgt_dict, hypo["bpe"]))
    scored = score_translations(translator.models, sources, targets, batch_size=batch_size, progress=progress)
    return _unflatten([sum(s.positional_scores) for s in scored], shape)


def lm_sums(language_model, sentences: list[dict], batch_size: int, progress=None) -> list[list[float]]:
    """Per sentence, per hypothesis: the LM log-prob of its tokens and final ``</s>`` (float32 sum)."""
    dictionary = language_model.tokenizer.tgt_dict
    token_lists, shape = [], []
    for sentence in sentences:
        shape.append(len(sentence["hypos"]))
        token_lists += [bpe_string_to_ids(dictionary, h["bpe"]) for h in sentence["hypos"]]
    scored = language_model.score_ids(token_lists, batch_size=batch_size, progress=progress)
    sums = [float(torch.tensor(s.positional_scores, dtype=torch.float32).sum()) for s in scored]
    return _unflatten(sums, shape)


def _unflatten(values: list, shape: list[int]) -> list[list]:
    out, start = [], 0
    for n in shape:
        out.append(values[start: start + n])
        start += n
    return out


def models_key(model_dirs: list[str]) -> list[dict]:
    return [model_fingerprint(d) for d in model_dirs]


def sources_key(sources: list[str]) -> str:
    return hashlib.sha256("\n".join(sources).encode("utf-8")).hexdigest()
