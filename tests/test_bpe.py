"""fastBPE-exact BPE: hand-worked merge order, file formats, golden parity."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsmt_port.tokenization.bpe import FastBPE, read_bpecodes, read_merges, split_word, write_merges
from fsmt_port.errors import DictionaryFormatError, FSMTPortError

from golden import ALL_MODELS, bpecodes_path, load_expected

# rank 0: a+a, rank 1: b+a</w>, rank 2: aa+b (only a NON-final b).
HAND_CODES = "a a 9\nb a</w> 7\naa b 5\n"


@pytest.fixture
def hand_bpe(tmp_path):
    path = tmp_path / "bpecodes"
    path.write_text(HAND_CODES, encoding="utf-8")
    return FastBPE.from_codes_file(path)


@pytest.mark.parametrize(
    "word, pieces",
    [
        # a a b a</w>: rank 0 -> aa b a</w>; then (aa,b)=2 vs (b,a</w>)=1: the LOWER rank wins
        # although it is further right -> aa ba</w>; (aa,ba</w>) is no code.
        ("aaba", ("aa", "ba</w>")),
        # a a a b a</w>: all non-overlapping (a,a) left to right -> aa a b a</w>; then rank 1.
        ("aaaba", ("aa", "a", "ba</w>")),
        # a a b</w>: 'aa b' does not match the final 'b</w>'.
        ("aab", ("aa", "b</w>")),
        # a a b b</w> -> aa b b</w> -> aab b</w>.
        ("aabb", ("aab", "b</w>")),
        ("ba", ("ba</w>",)),
        ("x", ("x</w>",)),
        # a a a a</w>: (a,a) at 0 merges; the next pair is (a,a</w>), no code -> aa a a</w>;
        # then neither (aa,a) nor (a,a</w>) is a code.
        ("aaaa", ("aa", "a", "a</w>")),
    ],
)
def test_hand_made_codes_merge_by_rank(hand_bpe, word, pieces):
    assert hand_bpe.word_pieces(word) == pieces


def test_hand_made_codes_sentence_string(hand_bpe):
    # Empty words (double spaces) are skipped exactly like fastBPE's split().
    assert hand_bpe.apply("aaba  aab x") == "aa@@ ba aa@@ b x"
    assert hand_bpe.pieces("aaba  aab x") == ["aa", "ba</w>", "aa", "b</w>", "x</w>"]
    assert hand_bpe.apply("") == ""


def test_split_word_code_points_and_nul_quirk():
    assert split_word("café") == ["c", "a", "f", "é</w>"]
    assert split_word("😀x") == ["😀", "x</w>"]
    # fastBPE's char loop stops at NUL, and the last char keeps the rest of the bytes.
    assert split_word("ab\0cd") == ["a", "b\0cd</w>"]
    assert split_word("\0cd") == ["\0cd</w>"]


@pytest.mark.parametrize("name", ALL_MODELS)
def test_bpe_matches_fastbpe_goldens(name):
    expected = load_expected(name)
    bpe = FastBPE.from_codes_file(bpecodes_path(name))
    for entry in expected["tokenizer"] + expected["target_roundtrip"]:
        assert bpe.apply(entry["moses"]) == entry["bpe"], entry["text"]


def test_word_cache_is_used(hand_bpe):
    hand_bpe.apply("aaba aaba aaba")
    info = hand_bpe.word_pieces.cache_info()
    assert info.misses == 1 and info.hits == 2


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab🙂 x\0"), max_size=20))
def test_pieces_always_spell_the_words(text):
    bpe = FastBPE([("a", "a"), ("b", "a</w>"), ("aa", "b"), ("🙂", "x</w>")])
    words = [w for w in text.split(" ") if w]
    for word in words:
        pieces = bpe.word_pieces(word)
        assert "".join(pieces) == word + "</w>"
        assert all(not p.endswith("</w>") for p in pieces[:-1])
    assert (bpe.apply(text) + " ").replace("@@ ", "").rstrip() == " ".join(words)


def test_real_codes_read_and_merges_round_trip(tmp_path):
    merges = read_bpecodes(bpecodes_path("tiny-en-de-joint"))
    assert len(merges) == 6000
    assert merges[:3] == [("i", "n"), ("e", "n</w>"), ("i", "n</w>")]
    out = tmp_path / "merges.txt"
    write_merges(merges, out)
    text = out.read_text(encoding="utf-8")
    assert text.endswith("\n") and not text.endswith("\n\n")
    # transformers' FSMT reader: read().split("\n")[:-1], then split() each line.
    assert [tuple(line.split()[:2]) for line in text.split("\n")[:-1]] == merges
    assert read_merges(out) == merges


@pytest.mark.parametrize(
    "content, line, needle",
    [
        ("a b 3\nc d\n", 2, "merges.txt"),
        ("a b 3\nc d e f\n", 2, "LEFT RIGHT COUNT"),
        ("a b x\n", 1, "LEFT RIGHT COUNT"),
        ("a b 3\n\n", 2, "LEFT RIGHT COUNT"),
        ("a b 3\nc d 2\na b 1\n", 3, "already appeared on line 1"),
    ],
)
def test_bad_bpecodes_line_names_file_and_line(tmp_path, content, line, needle):
    path = tmp_path / "bpecodes"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DictionaryFormatError) as err:
        read_bpecodes(path)
    assert f"{path}:{line}:" in str(err.value) and needle in str(err.value)


def test_missing_bpecodes_and_merges(tmp_path):
    with pytest.raises(FileNotFoundError, match="bpecodes") as err:
        read_bpecodes(tmp_path / "bpecodes")
    assert isinstance(err.value, FSMTPortError)
    with pytest.raises(FileNotFoundError, match="converter"):
        read_merges(tmp_path / "merges.txt")


def test_bad_merges_line(tmp_path):
    path = tmp_path / "merges.txt"
    path.write_text("a b\nc d 5\n", encoding="utf-8")
    with pytest.raises(DictionaryFormatError, match=":2: malformed merges line"):
        read_merges(path)
