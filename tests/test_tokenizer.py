"""FSMTTokenizer against fairseq's hub goldens, file round trips and transformers interop."""

from __future__ import annotations

import functools
import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fsmt_port.errors import ConfigError, FSMTPortError, InputError
from fsmt_port.tokenization.tokenizer import FSMTTokenizer

from golden import (
    ALL_MODELS,
    bpecodes_path,
    dict_paths,
    flickr_lines,
    langs,
    load_expected,
    load_norepeat_fixed,
)


@functools.lru_cache(maxsize=None)
def tokenizer(name: str) -> FSMTTokenizer:
    """Built from the raw fairseq files, like the hub (not from a converted folder)."""
    src_dict, tgt_dict = dict_paths(name)
    return FSMTTokenizer.from_fairseq_files(src_dict, tgt_dict, bpecodes_path(name), *langs(name))


def _hypotheses(name: str):
    """Every (tokens, string, decoded) fairseq printed for this model."""
    expected = load_expected(name)
    runs = list(expected["generation"]["configs"])
    runs += [expected[k] for k in ("single_sentence_generation",) if k in expected]
    runs += expected.get("ensembles", [])
    runs += (load_norepeat_fixed(name) or {}).get("configs", [])
    for run in runs:
        for result in run["results"]:
            for hypo in result["hypos"]:
                yield hypo


@pytest.mark.parametrize("name", ALL_MODELS)
def test_source_side_matches_hub(name):
    tok = tokenizer(name)
    for entry in load_expected(name)["tokenizer"]:
        text = entry["text"]
        assert tok.moses_tokenize(text, tok.src_lang) == entry["moses"], text
        assert tok.apply_bpe(entry["moses"]) == entry["bpe"], text
        assert tok.encode(text) == entry["ids"], text
        assert tok.src_dict.string(entry["ids"]) == entry["ids_string"], text


@pytest.mark.parametrize("name", ALL_MODELS)
def test_target_roundtrip_matches_hub(name):
    tok = tokenizer(name)
    for entry in load_expected(name)["target_roundtrip"]:
        text = entry["text"]
        assert tok.moses_tokenize(text, tok.tgt_lang) == entry["moses"], text
        assert tok.apply_bpe(entry["moses"]) == entry["bpe"], text
        assert tok.encode_target(text) == entry["ids"], text
        assert tok.string(entry["ids"]) == entry["string"], text
        assert tok.decode(entry["ids"]) == entry["decoded"], text


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_generated_hypothesis_decodes_like_hub(name):
    tok = tokenizer(name)
    count = 0
    for hypo in _hypotheses(name):
        assert tok.string(hypo["tokens"]) == hypo["string"]
        assert tok.decode(hypo["tokens"]) == hypo["decoded"], hypo["string"]
        count += 1
    assert count > 1000


def test_batch_decode_and_tensor_input():
    tok = tokenizer("tiny-en-de-joint")
    hypos = [h for _, h in zip(range(20), _hypotheses("tiny-en-de-joint"))]
    assert tok.batch_decode([h["tokens"] for h in hypos]) == [h["decoded"] for h in hypos]
    assert tok.decode(torch.tensor(hypos[0]["tokens"])) == hypos[0]["decoded"]


def _fairseq_decode(tok: FSMTTokenizer, ids) -> str:
    """The hub's decode, literally: string -> remove '@@ ' -> moses detokenize."""
    text = (tok.string(ids) + " ").replace("@@ ", "").rstrip()
    return tok.moses_detokenize(text.split(), tok.tgt_lang)


def test_decode_edge_cases_follow_fairseq_string_semantics():
    tok = tokenizer("tiny-en-de-joint")
    cont = next(i for i, s in enumerate(tok.tgt_dict.symbols) if s.endswith("@@") and len(s) > 3)
    word = tok.tgt_dict.index("Hund")
    cases = [
        [cont],  # a trailing non-final piece just loses its '@@'
        [cont, 3, word, 2],  # '<unk>' joins the non-final piece before it
        [cont, 1, word],  # so does '<pad>'
        [cont, 2, word],  # EOS in the middle is dropped, the pieces join
        [0, word, 0, 2, 2],
        [len(tok.tgt_dict) + 5, word],  # past the end prints '<unk>'
        [],
    ]
    for ids in cases:
        assert tok.decode(ids) == _fairseq_decode(tok, ids), ids


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=6100), max_size=25))
def test_decode_equals_fairseq_pipeline_on_random_ids(ids):
    tok = tokenizer("tiny-en-de-joint")
    assert tok.decode(ids) == _fairseq_decode(tok, ids)


@pytest.mark.parametrize("name", ["tiny-en-de-joint", "tiny-en-fr-separate", "tiny-en-cs-variant"])
def test_save_and_load_round_trip(tmp_path, name):
    tok = tokenizer(name)
    paths = tok.save_pretrained(tmp_path)
    assert sorted(p.rsplit("/", 1)[-1] for p in paths) == [
        "merges.txt", "tokenizer_config.json", "vocab-src.json", "vocab-tgt.json",
    ]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    config = json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["langs"] == list(langs(name)) and config["tokenizer_class"] == "FSMTTokenizer"
    assert config["model_max_length"] == 1024 and config["do_lower_case"] is False
    assert config["moses_punct_normalization"] is False
    assert (tmp_path / "merges.txt").read_text(encoding="utf-8").endswith("\n")

    loaded = FSMTTokenizer.from_pretrained(tmp_path)
    expected = load_expected(name)
    for entry in expected["tokenizer"]:
        assert loaded.encode(entry["text"]) == entry["ids"], entry["text"]
    for entry in expected["target_roundtrip"]:
        assert loaded.encode_target(entry["text"]) == entry["ids"]
        assert loaded.decode(entry["ids"]) == entry["decoded"]
        assert loaded.string(entry["ids"]) == entry["string"]
    lines = flickr_lines("en")[100:300]
    assert loaded.batch_encode(lines) == tok.batch_encode(lines)


@pytest.mark.parametrize("name", ["tiny-en-de-joint", "tiny-en-fr-separate", "tiny-en-cs-variant"])
def test_transformers_reads_our_folder_and_agrees(tmp_path, name):
    transformers = pytest.importorskip("transformers")
    ours = tokenizer(name)
    ours.save_pretrained(tmp_path)
    hf = transformers.FSMTTokenizer.from_pretrained(str(tmp_path))
    assert (hf.src_lang, hf.tgt_lang) == langs(name)
    for line in flickr_lines("en")[:100]:
        # transformers always runs moses punctuation normalization (fairseq's hub never
        # does); ids can only agree where it changes nothing, which holds for all 100 lines.
        assert hf.moses_pipeline(line, hf.src_lang) == line
        assert hf(line)["input_ids"] == ours.encode(line), line


def test_call_left_pads_like_fairseq():
    tok = tokenizer("tiny-en-de-joint")
    texts = ["A dog.", "A man in an orange hat starring at something.", ""]
    rows = tok.batch_encode(texts)
    batch = tok(texts, return_tensors="pt")
    width = max(map(len, rows))
    assert batch["input_ids"].shape == (3, width) and batch["input_ids"].dtype == torch.long
    for row, ids, mask in zip(rows, batch["input_ids"].tolist(), batch["attention_mask"].tolist()):
        assert ids == [1] * (width - len(row)) + row
        assert mask == [0] * (width - len(row)) + [1] * len(row)
    assert tok(texts, padding=True)["input_ids"][2] == [1] * (width - 1) + [2]
    single = tok("A dog.", return_tensors="np")
    assert single["input_ids"].tolist() == [rows[0]]
    with pytest.raises(InputError, match="padding=True"):
        tok(texts, return_tensors="pt", padding=False)
    with pytest.raises(ConfigError, match="return_tensors"):
        tok(texts, return_tensors="tf")
    assert tok([], return_tensors="pt")["input_ids"].shape == (0, 0)


def test_punct_normalization_is_opt_in():
    src_dict, tgt_dict = dict_paths("tiny-en-de-joint")
    norm = FSMTTokenizer.from_fairseq_files(
        src_dict, tgt_dict, bpecodes_path("tiny-en-de-joint"), "en", "de", moses_punct_normalization=True
    )
    text = "He said „hello“ — twice."
    assert tokenizer("tiny-en-de-joint").moses_tokenize(text, "en") != norm.moses_tokenize(text, "en")
    assert norm.moses_tokenize(text, "en") == "He said &quot; hello &quot; - twice ."


def test_missing_files_point_to_the_converter(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        FSMTTokenizer.from_pretrained(tmp_path)
    assert "tokenizer_config.json" in str(err.value) and "converter" in str(err.value)
    assert isinstance(err.value, FSMTPortError)
    tokenizer("tiny-en-de-joint").save_pretrained(tmp_path)
    for name in ("vocab-tgt.json", "merges.txt"):
        (tmp_path / name).unlink()
        with pytest.raises(FileNotFoundError, match=f"{name}.*converter"):
            FSMTTokenizer.from_pretrained(tmp_path)
        tokenizer("tiny-en-de-joint").save_pretrained(tmp_path)


def test_missing_fairseq_files(tmp_path):
    src_dict, tgt_dict = dict_paths("tiny-en-de-joint")
    codes = bpecodes_path("tiny-en-de-joint")
    with pytest.raises(FileNotFoundError, match="target dictionary"):
        FSMTTokenizer.from_fairseq_files(src_dict, tmp_path / "dict.de.txt", codes, "en", "de")
    with pytest.raises(FileNotFoundError, match="bpecodes"):
        FSMTTokenizer.from_fairseq_files(src_dict, tgt_dict, tmp_path / "bpecodes", "en", "de")


def test_bad_config_and_input(tmp_path):
    tok = tokenizer("tiny-en-de-joint")
    tok.save_pretrained(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text('{"model_max_length": 1024}', encoding="utf-8")
    with pytest.raises(ConfigError, match="langs"):
        FSMTTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid JSON"):
        FSMTTokenizer.from_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="langs"):
        FSMTTokenizer(tok.src_vocab, tok.tgt_vocab, tok.bpe.merges, ["en"])
    with pytest.raises(InputError, match="str"):
        tok.encode(None)
    with pytest.raises(InputError, match="token ids"):
        tok.decode("Hund")
    with pytest.raises(InputError, match=">= 0"):
        tok.decode([5, -1])
