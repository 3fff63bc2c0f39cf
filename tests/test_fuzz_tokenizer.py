"""Property tests of the tokenizer on arbitrary Unicode (hypothesis, bounded examples).

The properties claimed here, and only these, are written down in docs/RELIABILITY.md:

* ``encode`` accepts every ``str`` (controls, NUL, lone surrogates such as a
  ``surrogateescape`` reader produces, RTL/bidi marks, BOM, combining marks,
  10k-character words) and returns source ids ending with ``</s>``, every other
  id in ``[3, len(src_vocab))`` (never ``<s>``/``<pad>``/``</s>`` inside); the only
  errors are the documented ``InputError`` for a non-``str``;
* ``decode`` accepts every sequence of non-negative ints (out-of-vocabulary ids
  print as ``<unk>``) and returns whitespace-normalized text: no leading,
  trailing or repeated spaces, no tab/newline/control characters; a negative id
  is an ``InputError``;
* exact round trip ``decode(encode(x)) == x`` holds for "plain" text (words of
  letters and digits, single spaces, optional final ``. , ! ?``) that encodes
  without ``<unk>``, on a joint-dictionary model. It does NOT hold in general,
  and neither does idempotence: moses' detokenizer is not the inverse of its
  tokenizer (see ``test_round_trip_is_not_claimed_in_general``);
* the same input gives the same ids and text across calls, across fresh
  tokenizer instances (cold and warm caches) and across processes with
  different hash seeds.
"""

from __future__ import annotations

import json
import os
import random
import string
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import golden
from fsmt_port.errors import InputError
from fsmt_port.tokenization.tokenizer import FSMTTokenizer

# Bounded in CI; raise locally with FSMT_FUZZ_EXAMPLES=5000.
EXAMPLES = int(os.environ.get("FSMT_FUZZ_EXAMPLES", "120"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
MODELS = ("tiny-en-de-joint", "tiny-en-fr-separate", "tiny-en-cs-variant")

# Characters real messy text carries: controls and NUL, C1 controls, lone surrogates
# (what a surrogateescape reader makes of bad bytes), bidi/RTL marks and
# isolates, BOM/zero-width/joiners, NBSP and other spaces, combining marks,
# emoji with modifiers, moses-special ASCII, CJK/Arabic/Thai/Cyrillic.
NASTY = ("\x00\x01\x07\x08\x0b\x0c\x1b\x1f\x7f\x80\x85\x9f"
         "\udc80\udcff\ud800\udfff"
         "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c"
         "\ufeff\u200b\u200c\u200d\u2060\u00ad"
         "\u00a0\u2002\u2009\u3000\u1680\u2028\u2029\t\n\r "
         "\u0301\u0308\u0327\u20dd"
         "😀👍🏽🏳️‍🌈"
         "&<>|[]{}'\"`@#$%^*()_-+=~\\/.,;:!?…—–«»„“”‘’"
         "中文字日本語العربيةไทยПривет"
         "aeiouAEIOUäöüßéçñ0123456789")
nasty_text = st.text(st.sampled_from(NASTY), max_size=80)
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=80)  # surrogates included
long_word = st.builds(lambda ch, n: ch * n, st.sampled_from(["a", "é", "中", "\u0301", "😀", "ab", "-", "&"]),
                      st.integers(200, 3000))
texts = st.one_of(any_text, nasty_text, long_word,
                  st.lists(st.one_of(nasty_text, long_word), max_size=3).map(" ".join))


def fixture_tokenizer(name: str) -> FSMTTokenizer:
    src, tgt = golden.langs(name)
    src_dict, tgt_dict = golden.dict_paths(name)
    return FSMTTokenizer.from_fairseq_files(src_dict, tgt_dict, golden.bpecodes_path(name), src, tgt)


@pytest.fixture(scope="module")
def tokenizers() -> dict[str, FSMTTokenizer]:
    return {name: fixture_tokenizer(name) for name in MODELS}


@pytest.fixture(scope="module")
def other_instances() -> dict[str, FSMTTokenizer]:
    return {name: fixture_tokenizer(name) for name in MODELS}


def assert_source_ids(ids: list[int], vocab_size: int) -> None:
    assert isinstance(ids, list) and ids and all(type(i) is int for i in ids)
    assert ids[-1] == 2, ids
    assert all(3 <= i < vocab_size for i in ids[:-1]), ids


def assert_normalized(text: str) -> None:
    assert isinstance(text, str)
    assert text == " ".join(text.split()), repr(text)
    assert not any(unicodedata.category(c) == "Cc" for c in text), repr(text)


@FUZZ
@given(name=st.sampled_from(MODELS), text=texts)
def test_encode_any_text(tokenizers, name, text):
    tok = tokenizers[name]
    ids = tok.encode(text)
    assert_source_ids(ids, len(tok.src_vocab))
    target_ids = tok.encode_target(text)
    assert_source_ids(target_ids, len(tok.tgt_vocab))
    # Whatever came in, what comes out is printable, normalized text.
    assert_normalized(tok.decode(target_ids))
    assert_normalized(tok.decode(ids))


@FUZZ
@given(name=st.sampled_from(MODELS),
       ids=st.lists(st.one_of(st.integers(0, 10_000), st.integers(0, 2**62)), max_size=60))
def test_decode_any_ids(tokenizers, name, ids):
    tok = tokenizers[name]
    text = tok.decode(ids)
    assert_normalized(text)
    assert tok.decode(ids) == text
    if any(i >= len(tok.tgt_vocab) or i == 3 for i in ids):
        assert "<unk>" in text


@FUZZ
@given(name=st.sampled_from(MODELS), ids=st.lists(st.integers(-(2**40), 10), min_size=1, max_size=10))
def test_negative_ids_are_the_documented_error(tokenizers, name, ids):
    if min(ids) >= 0:
        return
    with pytest.raises(InputError, match=">= 0"):
        tokenizers[name].decode(ids)


@pytest.mark.parametrize("bad", [None, b"bytes", 3, 2.5, ["a"], object()])
def test_non_text_is_the_documented_error(tokenizers, bad):
    tok = tokenizers["tiny-en-de-joint"]
    with pytest.raises(InputError):
        tok.encode(bad)
    if not isinstance(bad, list):
        with pytest.raises(InputError):
            tok.decode(bad)


@FUZZ
@given(batch=st.lists(texts, min_size=1, max_size=6))
def test_padded_batches_of_any_text(tokenizers, batch):
    tok = tokenizers["tiny-en-cs-variant"]
    out = tok(batch, padding=True)  # lists, left-padded
    rows, masks = out["input_ids"], out["attention_mask"]
    assert len(rows) == len(batch) and len({len(r) for r in rows}) == 1
    for text, row, mask in zip(batch, rows, masks):
        real = [i for i, m in zip(row, mask) if m]
        assert real == tok.encode(text)  # left padding only, content unchanged
        assert row[: len(row) - len(real)] == [tok.pad_token_id] * (len(row) - len(real))


letters = string.ascii_letters + string.digits + "äöüÄÖÜß"
plain_text = st.builds(lambda words, end: " ".join(words) + (end if words else ""),
                       st.lists(st.text(st.sampled_from(letters), min_size=1, max_size=15), max_size=12),
                       st.sampled_from(["", ".", ",", "!", "?"]))


@settings(FUZZ, max_examples=max(EXAMPLES, 300))
@given(text=plain_text)
def test_exact_round_trip_for_plain_text(tokenizers, text):
    tok = tokenizers["tiny-en-de-joint"]  # joint dictionary: target ids mean the same pieces
    ids = tok.encode(text)
    if tok.unk_token_id in ids:
        assert "<unk>" in tok.decode(ids)
        return
    assert tok.decode(ids) == text


@pytest.mark.parametrize("text, once, twice", [
    # The German detokenizer does not rejoin English "n't", and a second pass moves the quote.
    ("n't n't", "n 't n 't", "n 't n' t"),
    # `` is one moses token that fastBPE cannot spell with this vocabulary the second time.
    ("` ` 0", "`` 0", "<unk> `0"),
])
def test_round_trip_is_not_claimed_in_general(tokenizers, text, once, twice):
    """Documented counterexamples: why only the plain-text round trip is claimed."""
    tok = tokenizers["tiny-en-de-joint"]
    first = tok.decode(tok.encode(text))
    assert first == once
    assert tok.decode(tok.encode(first)) == twice


@FUZZ
@given(name=st.sampled_from(MODELS), text=texts)
def test_same_output_across_calls_and_instances(tokenizers, other_instances, name, text):
    warm = tokenizers[name]
    first = warm.encode(text)
    assert warm.encode(text) == first  # word cache hit
    cold = other_instances[name]
    cold._src_word_ids.cache_clear()  # a cold cache takes the full BPE path
    assert cold.encode(text) == first
    assert warm.decode(first) == cold.decode(tuple(first)) == warm.decode(first)


CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from test_fuzz_tokenizer import fixture_tokenizer, MODELS
corpus = json.loads(sys.stdin.read())
out = {}
for name in MODELS:
    tok = fixture_tokenizer(name)
    ids = [tok.encode(t) for t in corpus]
    out[name] = {"ids": ids, "text": [tok.decode(i) for i in ids]}
print(json.dumps(out))
"""


def random_corpus(seed: int, n: int = 150) -> list[str]:
    rng = random.Random(seed)
    pool = NASTY + string.ascii_letters + "     "
    corpus = ["".join(rng.choice(pool) for _ in range(rng.randint(0, 60))) for _ in range(n)]
    corpus += golden.tricky_inputs() + golden.flickr_lines("en")[:50] + ["é" * 2000, "\x00" * 10, "\ud800abc"]
    return corpus


def test_same_output_across_processes_and_hash_seeds(tokenizers):
    corpus = random_corpus(20240601)
    here = {}
    for name in MODELS:
        ids = [tokenizers[name].encode(t) for t in corpus]
        here[name] = {"ids": ids, "text": [tokenizers[name].decode(i) for i in ids]}
    tests_dir = str(Path(__file__).resolve().parent)
    payload = json.dumps(corpus)  # ensure_ascii: lone surrogates travel as \udXXX escapes
    children = [subprocess.Popen([sys.executable, "-c", CHILD, tests_dir], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONHASHSEED": seed})
                for seed in ("1", "987654")]
    for child in children:
        out, err = child.communicate(payload, timeout=300)
        assert child.returncode == 0, err[-2000:]
        assert json.loads(out) == here
