"""Property tests of the generation front end on arbitrary Unicode (hypothesis, bounded).

Front end = what turns user text into a search: ``Translator.translate`` (encode,
length-sorted batching, generate, decode) and the HF-style
``tokenizer(batch) -> model.generate(**batch) -> batch_decode`` path. Claimed:

* any list of ``str`` translates; the only error is the documented ``InputError``
  naming the line when a line is longer than ``max_source_positions`` without
  ``truncate=True`` (with it, every line translates);
* every hypothesis is well formed: ids in the target vocabulary, exactly one
  ``</s>`` and it is last, no ``<s>``/``<pad>``, one positional score per token,
  finite scores, hypotheses sorted best first, ``text == decode(tokens)``;
* the same call gives the same result (ids, text and float bits) every time.
"""

from __future__ import annotations

import math
import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsmt_port import FSMTForConditionalGeneration, Translator
from fsmt_port.errors import InputError

from test_fuzz_tokenizer import NASTY, any_text, long_word, nasty_text

EXAMPLES = int(os.environ.get("FSMT_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
MODELS = ("tiny-en-de-joint", "tiny-en-cs-variant")  # joint+sinusoidal; separate dicts+learned positions
FAST = {"max_len_b": 6}  # short outputs keep the examples cheap; lengths are not what is fuzzed

texts = st.one_of(any_text, nasty_text, long_word, st.just(""), st.just("   "), st.just("\ufeff"))
batches = st.lists(texts, min_size=1, max_size=6)


@pytest.fixture(scope="module")
def translators(converted):
    torch.set_num_threads(1)
    return {name: Translator.from_pretrained(converted(name)) for name in MODELS}


def assert_well_formed(result, source: str, translator: Translator, n_hypos: int) -> None:
    vocab = len(translator.tokenizer.tgt_vocab)
    assert result.source == source
    assert len(result.hypotheses) == n_hypos
    scores = [h.score for h in result.hypotheses]
    assert scores == sorted(scores, reverse=True)
    for hypo in result.hypotheses:
        tokens = hypo.tokens
        assert tokens and tokens[-1] == 2 and 2 not in tokens[:-1]
        assert all(3 <= t < vocab for t in tokens[:-1]), tokens
        assert len(hypo.positional_scores) == len(tokens)
        assert math.isfinite(hypo.score) and all(math.isfinite(s) for s in hypo.positional_scores)
        assert len(tokens) <= FAST["max_len_b"] + 1
        assert hypo.text == translator.tokenizer.decode(tokens)
        assert hypo.text == " ".join(hypo.text.split())


@FUZZ
@given(name=st.sampled_from(MODELS), lines=batches, beams=st.sampled_from([1, 3]),
       batch_size=st.sampled_from([1, 2, 32]))
def test_translate_any_text(translators, name, lines, beams, batch_size):
    translator = translators[name]
    limit = translator.models[0].config.max_source_positions
    if any(len(translator.tokenizer.encode(line)) > limit for line in lines):  # e.g. 'a' * 1024
        with pytest.raises(InputError, match="max_source_positions"):
            translator.translate(lines, batch_size=batch_size, num_beams=beams, **FAST)
    results = translator.translate(lines, batch_size=batch_size, num_beams=beams, truncate=True, **FAST)
    assert [r.id for r in results] == list(range(len(lines)))
    for line, result in zip(lines, results):
        assert_well_formed(result, line, translator, beams)
    again = translator.translate(lines, batch_size=batch_size, num_beams=beams, truncate=True, **FAST)
    assert [r.to_json() for r in again] == [r.to_json() for r in results]


many_words = st.builds(lambda word, n: " ".join([word] * n), st.sampled_from(["a", "dog", "中", "&", "x-y"]),
                       st.integers(900, 1400))


@settings(FUZZ, max_examples=max(4, EXAMPLES // 10))
@given(name=st.sampled_from(MODELS), long=many_words, position=st.integers(0, 2))
def test_too_long_lines_fail_clearly_or_truncate(translators, name, long, position):
    translator = translators[name]
    limit = translator.models[0].config.max_source_positions
    lines = ["A dog.", "", "Two men."]
    lines.insert(position, long)
    n_ids = len(translator.tokenizer.encode(long))
    if n_ids > limit:
        with pytest.raises(InputError, match=f"line {position + 1} has {n_ids} tokens.*--truncate"):
            translator.translate(lines, num_beams=1, **FAST)
    ids = translator.encode(lines, truncate=True)
    assert max(len(i) for i in ids) <= limit and all(i[-1] == 2 for i in ids)
    results = translator.translate(lines, num_beams=1, truncate=True, **FAST)
    for line, result in zip(lines, results):
        assert_well_formed(result, line, translator, 1)


@FUZZ
@given(name=st.sampled_from(MODELS), lines=batches)
def test_hf_style_front_end(translators, name, lines):
    translator = translators[name]
    tok, model = translator.tokenizer, translator.models[0]
    assert isinstance(model, FSMTForConditionalGeneration)
    limit = model.config.max_source_positions
    lines = [line if len(tok.encode(line)) <= limit else line[:limit // 2] for line in lines]
    batch = tok(lines, return_tensors="pt")
    out = model.generate(**batch, num_beams=2, num_return_sequences=2, **FAST)
    assert out.shape[0] == 2 * len(lines) and bool((out[:, 0] == 2).all())
    assert int(out.min()) >= 0 and int(out.max()) < len(tok.tgt_vocab)
    texts = tok.batch_decode(out)
    assert len(texts) == 2 * len(lines) and all(t == " ".join(t.split()) for t in texts)
    assert torch.equal(model.generate(**batch, num_beams=2, num_return_sequences=2, **FAST), out)


def test_nasty_alphabet_one_line_each(translators):
    """Every character of the fuzz alphabet alone on a line, in one batch: no crash, well formed."""
    translator = translators["tiny-en-cs-variant"]
    lines = list(NASTY)
    for line, result in zip(lines, translator.translate(lines, num_beams=2, **FAST)):
        assert_well_formed(result, line, translator, 2)
