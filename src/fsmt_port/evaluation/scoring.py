"""Corpus BLEU exactly as fairseq's numbers were made: sacrebleu defaults (13a, mixed case, exp smoothing).

``BLEU(references=[refs])`` tokenizes the references and caches their n-gram
statistics once; a search then scores every combination against that cache.
The result equals ``BLEU().corpus_score(hyps, [refs])``.
"""

from __future__ import annotations

from sacrebleu.metrics import BLEU

from fsmt_port.errors import InputError


class BleuScorer:
    def __init__(self, references: list[str]) -> None:
        self.n_refs = len(references)
        self.bleu = BLEU(references=[references])
        self.signature = str(self.bleu.get_signature())

    def score(self, hypotheses: list[str]) -> dict:
        """BLEU of ``hypotheses`` (one per reference line) as JSON-ready fields."""
        if len(hypotheses) != self.n_refs:
            raise InputError(f"{len(hypotheses)} hypotheses for {self.n_refs} references; they must align")
        result = self.bleu.corpus_score(hypotheses, None)
        return {
            "bleu": result.score,
            "signature": self.signature,
            "sacrebleu": result.format(signature=self.signature),
            "bleu_precisions": [round(p, 4) for p in result.precisions],
            "bleu_bp": round(result.bp, 4),
            "bleu_ratio": round(result.ratio, 4),
            "hyp_len": result.sys_len,
            "ref_len": result.ref_len,
        }
