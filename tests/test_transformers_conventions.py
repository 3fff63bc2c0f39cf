"""The tokenizer and model answer the way transformers' FSMT does, so code written for it runs unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import golden
from fsmt_port import FSMTForConditionalGeneration, FSMTTokenizer, Translator
from fsmt_port.errors import ConfigError

TINY = "tiny-en-de-joint"
LINES = golden.flickr_lines("en")[:4]


@pytest.fixture(scope="module")
def loaded(converted):
    folder = converted(TINY)
    return FSMTTokenizer.from_pretrained(folder), FSMTForConditionalGeneration.from_pretrained(folder), folder


def test_calling_the_tokenizer_returns_lists_unless_tensors_are_asked_for(loaded):
    tok, _, _ = loaded
    single = tok(LINES[0])
    assert single == {"input_ids": tok.encode(LINES[0]), "attention_mask": [1] * len(tok.encode(LINES[0]))}
    assert isinstance(single["input_ids"], list) and single.input_ids is single["input_ids"]
    many = tok(LINES)
    assert many["input_ids"] == [tok.encode(line) for line in LINES]  # unpadded, as transformers
    assert len({len(r) for r in many["input_ids"]}) > 1
    pt, np_batch = tok(LINES, return_tensors="pt"), tok(LINES, return_tensors="np")
    assert pt["input_ids"].dtype == torch.long and isinstance(np_batch["input_ids"], np.ndarray)
    assert pt["input_ids"].tolist() == np_batch["input_ids"].tolist() == tok(LINES, padding=True)["input_ids"]
    assert pt.to("cpu")["attention_mask"].tolist() == tok(LINES, padding="longest")["attention_mask"]
    assert tok.encode(LINES[0], return_tensors="pt").tolist() == [tok.encode(LINES[0])]
    assert (tok.src_lang, tok.tgt_lang) == ("en", "de")
    with pytest.raises(ConfigError, match="padding must be"):
        tok(LINES, padding="max_length")


def test_generate_without_attention_mask_and_decode_skipping_special_tokens(loaded):
    tok, model, folder = loaded
    expected = [t.hypotheses[0].text for t in Translator.from_pretrained(folder).translate(LINES)]
    outputs = model.generate(tok.encode(LINES[0], return_tensors="pt"))  # the blog's / model cards' usage
    assert isinstance(outputs, torch.Tensor) and outputs.dim() == 2
    assert tok.decode(outputs[0], skip_special_tokens=True) == expected[0]

    batch = tok(LINES, return_tensors="pt")
    sequences = model.generate(**batch)
    assert torch.equal(sequences, model.generate(batch["input_ids"]))  # the mask follows from <pad>
    assert bool((sequences == tok.pad_token_id).any())  # shorter rows are padded ...
    assert tok.batch_decode(sequences, skip_special_tokens=True) == expected  # ... and decode cleanly
    assert "<pad>" in " ".join(tok.batch_decode(sequences))  # fairseq's hub.decode prints what it is given


def test_skip_special_tokens_drops_unk_and_pad_that_fairseq_prints(loaded):
    tok, _, _ = loaded
    word = next(i for i, piece in enumerate(tok._tgt_pieces) if piece.endswith("</w>") and piece[:-4].isalpha())
    ids = [2, word, tok.unk_token_id, word, 2, tok.pad_token_id]
    assert tok.decode(ids).split() == [tok.decode([word]), "<unk>", tok.decode([word]), "<pad>"]
    assert tok.decode(ids, skip_special_tokens=True).split() == [tok.decode([word])] * 2


def test_lists_match_transformers_tokenizer(loaded):
    transformers = pytest.importorskip("transformers")
    tok, _, folder = loaded
    theirs = transformers.FSMTTokenizer.from_pretrained(folder)
    lines = [line for line in LINES if theirs.moses_pipeline(line, "en") == line]  # no punct normalization
    assert lines and tok(lines) == {k: v for k, v in theirs(lines).items() if k in ("input_ids", "attention_mask")}
    assert tok(lines[0]) == {k: v for k, v in theirs(lines[0]).items() if k in ("input_ids", "attention_mask")}
