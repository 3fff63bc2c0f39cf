"""fairseq Dictionary semantics and the '</w>' vocab rewrite, checked against the goldens."""

from __future__ import annotations

import pytest

from fsmt_port.fairseq.dictionary import (
    FairseqDictionary,
    dictionary_from_bpe_vocab,
    from_bpe_vocab,
    piece_to_symbol,
    symbol_to_piece,
    to_bpe_vocab,
)
from fsmt_port.errors import DictionaryFormatError, FSMTPortError

from golden import ALL_MODELS, dict_paths, load_expected


def _load(name: str, side: str) -> FairseqDictionary:
    src, tgt = dict_paths(name)
    return FairseqDictionary.load(src if side == "src" else tgt)


@pytest.mark.parametrize("name", ALL_MODELS)
@pytest.mark.parametrize("side", ["src", "tgt"])
def test_dictionary_matches_fairseq_meta(name, side):
    meta = load_expected(name)["meta"][f"{side}_dict"]
    d = _load(name, side)
    assert len(d) == meta["size"]
    specials = (d.bos_index, d.pad_index, d.eos_index, d.unk_index)
    assert specials == (meta["bos"], meta["pad"], meta["eos"], meta["unk"])
    assert d.symbols[: len(meta["first_symbols"])] == meta["first_symbols"]
    assert d.symbols[-len(meta["last_symbols"]):] == meta["last_symbols"]
    assert sum(s.startswith("madeupword") for s in d.symbols) == meta["n_madeupword"]


@pytest.mark.parametrize("name", ALL_MODELS)
def test_encode_line_and_string_match_goldens(name):
    expected = load_expected(name)
    src, tgt = _load(name, "src"), _load(name, "tgt")
    for entry in expected["tokenizer"]:
        assert src.encode_line(entry["bpe"]) == entry["ids"], entry["text"]
        assert src.string(entry["ids"]) == entry["ids_string"], entry["text"]
    for entry in expected["target_roundtrip"]:
        assert tgt.encode_line(entry["bpe"]) == entry["ids"], entry["text"]
        assert tgt.string(entry["ids"]) == entry["string"], entry["text"]


@pytest.mark.parametrize("name", ALL_MODELS)
@pytest.mark.parametrize("side", ["src", "tgt"])
def test_bpe_vocab_keeps_ids_and_round_trips(name, side):
    d = _load(name, side)
    vocab = to_bpe_vocab(d.symbols)
    assert len(vocab) == len(d)
    assert [vocab[s] for s in ("<s>", "<pad>", "</s>", "<unk>")] == [0, 1, 2, 3]
    for idx, symbol in enumerate(d.symbols):
        assert vocab[symbol_to_piece(symbol)] == idx
    assert from_bpe_vocab(vocab) == d.symbols
    assert dictionary_from_bpe_vocab(vocab).symbols == d.symbols


def test_symbol_piece_rewrite_rules():
    assert symbol_to_piece("starr@@") == "starr"
    assert symbol_to_piece("ing") == "ing</w>"
    assert symbol_to_piece("@-@") == "@-@</w>"
    assert symbol_to_piece("@@@") == "@"  # the non-final piece of '@'
    assert symbol_to_piece("madeupword0000") == "madeupword0000</w>"
    for special in ("<s>", "<pad>", "</s>", "<unk>"):
        assert symbol_to_piece(special) == special
        assert piece_to_symbol(special) == special
    for symbol in ("starr@@", "ing", "@-@", "@@@", "madeupword0000", "."):
        assert piece_to_symbol(symbol_to_piece(symbol)) == symbol


def test_string_drops_eos_and_bos_everywhere_and_prints_unk_pad():
    d = FairseqDictionary.from_lines(["hello@@ 5\n", "world 3\n"])
    assert d.string([4, 0, 5, 2, 3, 1, 2]) == "hello@@ world <unk> <pad>"
    assert d.string([99]) == "<unk>"  # past the end prints as unk, like fairseq
    assert d.string([]) == ""


def test_encode_line_maps_unknown_to_unk_and_appends_eos():
    d = FairseqDictionary.from_lines(["a 5\n", "b 3\n"])
    assert d.encode_line("a  b\tzzz ") == [4, 5, 3, 2]
    assert d.encode_line("") == [2]
    assert d.index("<s>") == 0 and d.index("</s>") == 2 and d.index("nope") == 3


def test_overwrite_flag_appends_a_new_id_like_fairseq():
    d = FairseqDictionary.from_lines(["a 5\n", "b 3\n", "a 7 #fairseq:overwrite\n"])
    assert d.symbols == ["<s>", "<pad>", "</s>", "<unk>", "a", "b", "a"]
    assert d.index("a") == 6
    assert d.counts[6] == 7
    with pytest.raises(DictionaryFormatError, match="both become 'a</w>'"):
        to_bpe_vocab(d.symbols)


def test_word_with_spaces_is_split_from_the_right():
    d = FairseqDictionary.from_lines(["a b 5\n"])
    assert d.symbols[4] == "a b"


@pytest.mark.parametrize(
    "bad_line",
    ["justaword\n", "word notanumber\n", "\n", "word 1.5\n", "word #fairseq:overwrite\n"],
)
def test_malformed_line_names_file_and_line(tmp_path, bad_line):
    path = tmp_path / "dict.en.txt"
    path.write_text("good 10\nfine 5\n" + bad_line + "later 1\n", encoding="utf-8")
    with pytest.raises(DictionaryFormatError) as err:
        FairseqDictionary.load(path)
    message = str(err.value)
    assert f"{path}:3:" in message
    assert repr(bad_line.rstrip()) in message
    assert "<token> <count>" in message
    assert isinstance(err.value, ValueError) and isinstance(err.value, FSMTPortError)


def test_duplicate_entry_is_an_error(tmp_path):
    path = tmp_path / "dict.de.txt"
    path.write_text("Haus 10\nMaus 5\nHaus 2\n", encoding="utf-8")
    with pytest.raises(DictionaryFormatError) as err:
        FairseqDictionary.load(path)
    message = str(err.value)
    assert f"{path}:3:" in message and "'Haus'" in message and "#fairseq:overwrite" in message


def test_special_symbol_in_file_is_a_duplicate(tmp_path):
    path = tmp_path / "dict.en.txt"
    path.write_text("<unk> 10\n", encoding="utf-8")
    with pytest.raises(DictionaryFormatError, match=":1: duplicate token '<unk>'"):
        FairseqDictionary.load(path)


def test_missing_file_says_which_dictionary(tmp_path):
    path = tmp_path / "dict.xx.txt"
    with pytest.raises(FileNotFoundError) as err:
        FairseqDictionary.load(path, what="target dictionary")
    assert str(path) in str(err.value) and "target dictionary" in str(err.value)
    assert isinstance(err.value, FSMTPortError)


def test_non_utf8_file_is_a_format_error(tmp_path):
    path = tmp_path / "dict.en.txt"
    path.write_bytes(b"caf\xe9 3\n")
    with pytest.raises(DictionaryFormatError, match="not valid UTF-8"):
        FairseqDictionary.load(path)


def test_from_bpe_vocab_rejects_bad_ids():
    with pytest.raises(DictionaryFormatError, match="distinct integers"):
        from_bpe_vocab({"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "a</w>": 3})
    with pytest.raises(DictionaryFormatError, match="id 0 must be '<s>'"):
        from_bpe_vocab({"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3})
