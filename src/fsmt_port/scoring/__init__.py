"""Scoring given text: fairseq's SequenceScorer (``--score-reference``) and language-model scores."""
