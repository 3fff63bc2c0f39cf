"""The converter: every fixture checkpoint converts, strictly, and bad input fails clearly."""

from __future__ import annotations

import argparse
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

import golden
from fsmt_port.modeling.configuration import FSMTConfig
from fsmt_port.fairseq.convert import main as convert_main

EXPECTED_FILES = {"config.json", "model.safetensors", "vocab-src.json", "vocab-tgt.json", "merges.txt",
                  "tokenizer_config.json", "generation_config.json", "fsmt_port_conversion.json"}


@pytest.mark.parametrize("name", golden.ALL_MODELS)
def test_conversion_writes_a_complete_folder_matching_fairseq_args(name, converted):
    out = converted(name)
    assert {p.name for p in out.iterdir()} == EXPECTED_FILES
    config = FSMTConfig.from_pretrained(out)
    args = golden.load_expected(name)["meta"]["model_args"]
    assert config.encoder_layers == args["encoder_layers"] and config.decoder_layers == args["decoder_layers"]
    assert config.encoder_embed_dim == args["encoder_embed_dim"]
    assert config.encoder_ffn_dim == args["encoder_ffn_embed_dim"]
    assert config.decoder_attention_heads == args["decoder_attention_heads"]
    assert config.encoder_normalize_before == args["encoder_normalize_before"]
    assert config.decoder_normalize_before == args["decoder_normalize_before"]
    assert config.activation_function == args["activation_fn"]
    assert config.scale_embedding == (not args["no_scale_embedding"])
    assert config.layernorm_embedding == args["layernorm_embedding"]
    assert config.encoder_learned_pos == args["encoder_learned_pos"]
    assert config.share_all_embeddings == args["share_all_embeddings"]
    meta = golden.load_expected(name)["meta"]
    assert (config.src_vocab_size, config.tgt_vocab_size) == (meta["src_dict"]["size"], meta["tgt_dict"]["size"])
    weights = load_file(str(out / "model.safetensors"))
    # Sinusoidal positions are computed, never stored.
    if not config.encoder_learned_pos:
        assert not any("embed_positions" in k for k in weights)
    else:
        assert weights["model.encoder.embed_positions.weight"].shape[0] == config.max_source_positions + 2
    # No optimizer state or other training leftovers made it into the weights.
    assert all(k.startswith("model.") for k in weights)


@pytest.mark.parametrize("modern,legacy", [("tiny-en-de-joint", "tiny-en-de-joint-legacy"),
                                           ("tiny-en-fr-separate", "tiny-en-fr-separate-legacy")])
def test_2019_layout_converts_to_the_same_weights_as_the_modern_one(modern, legacy, converted):
    a = load_file(str(converted(modern) / "model.safetensors"))
    b = load_file(str(converted(legacy) / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_fp16_checkpoint_keeps_fp16_storage_and_loads_as_fp32(converted):
    from fsmt_port import FSMTForConditionalGeneration

    out = converted("small-en-de")
    weights = load_file(str(out / "model.safetensors"))
    assert {t.dtype for t in weights.values()} == {torch.float16}
    assert FSMTForConditionalGeneration.from_pretrained(out).dtype == torch.float32


def test_transformers_compatibility_is_declared_in_the_config(converted):
    post = json.loads((converted("tiny-en-de-joint") / "config.json").read_text())
    pre = json.loads((converted("tiny-en-cs-variant") / "config.json").read_text())
    assert post["model_type"] == "fsmt" and post["transformers_compatible"] is True
    assert pre["model_type"] == "fsmt_port" and pre["transformers_compatible"] is False
    assert "pre-norm" in pre["transformers_incompatible"] and "learned" in pre["transformers_incompatible"]


# --- bad input: one clear line, non-zero exit, nothing written ------------------------------------

@pytest.fixture
def archive(tmp_path):
    """A writable copy of a tiny fairseq archive folder."""
    folder = tmp_path / "archive"
    shutil.copytree(golden.model_dir("tiny-en-fr-separate"), folder)
    return folder


def run_convert(capsys, archive, out, *extra):
    code = convert_main(["--fsmt-path", str(archive / "model1.pt"), "--output-dir", str(out),
                         "--src-lang", "en", "--tgt-lang", "fr", *extra])
    err = capsys.readouterr().err.strip()
    return code, err


def assert_failed_cleanly(code, err, out, *needles):
    assert code == 2
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.tmp")]


def test_missing_dictionary(capsys, archive, tmp_path):
    (archive / "dict.fr.txt").unlink()
    code, err = run_convert(capsys, archive, tmp_path / "out")
    assert_failed_cleanly(code, err, tmp_path / "out", "dict.fr.txt", "--tgt-dict")


def test_missing_bpecodes(capsys, archive, tmp_path):
    (archive / "bpecodes").unlink()
    code, err = run_convert(capsys, archive, tmp_path / "out")
    assert_failed_cleanly(code, err, tmp_path / "out", "bpecodes", "--bpecodes")


def test_old_bpecodes_name_code_is_found(capsys, archive, tmp_path):
    (archive / "bpecodes").rename(archive / "code")
    code, _ = run_convert(capsys, archive, tmp_path / "out")
    assert code == 0 and (tmp_path / "out" / "merges.txt").is_file()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_truncated_or_corrupt_checkpoint(capsys, archive, tmp_path, damage):
    path = archive / "model1.pt"
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x00not a checkpoint" * 100,
                      "empty": b""}[damage])
    code, err = run_convert(capsys, archive, tmp_path / "out")
    assert_failed_cleanly(code, err, tmp_path / "out", "model1.pt")


def test_pt_that_is_not_a_fairseq_checkpoint(capsys, archive, tmp_path):
    torch.save({"weights": torch.zeros(3)}, archive / "model1.pt")
    code, err = run_convert(capsys, archive, tmp_path / "out")
    assert_failed_cleanly(code, err, tmp_path / "out", "not a fairseq checkpoint")


def _rewrite_args(archive, **changes):
    path = archive / "model1.pt"
    with torch.serialization.safe_globals([argparse.Namespace]):
        ckpt = torch.load(path, weights_only=True)
    for key, value in changes.items():
        setattr(ckpt["cfg"]["model"], key, value)
    torch.save(ckpt, path)


def test_pt_that_is_not_a_transformer(capsys, archive, tmp_path):
    _rewrite_args(archive, arch="lstm", _name="lstm")
    code, err = run_convert(capsys, archive, tmp_path / "out")
    assert_failed_cleanly(code, err, tmp_path / "out", "arch='lstm'", "not a fairseq translation transformer")


def test_all_unsupported_options_are_named_in_one_error(capsys, archive, tmp_path):
    _rewrite_args(archive, adaptive_input=True, cross_self_attention=True)
    code, err = run_convert(capsys, archive, tmp_path / "out")
    assert_failed_cleanly(code, err, tmp_path / "out", "adaptive_input=True", "cross_self_attention=True")


def test_malformed_dictionary_line(capsys, archive, tmp_path):
    lines = (archive / "dict.en.txt").read_text(encoding="utf-8").splitlines()
    lines[9] = "thisline hasnocount"
    (archive / "dict.en.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, err = run_convert(capsys, archive, tmp_path / "out")
    assert_failed_cleanly(code, err, tmp_path / "out", "dict.en.txt", "10")


def test_dictionary_size_disagrees_with_embedding_rows(capsys, archive, tmp_path):
    with open(archive / "dict.en.txt", "a", encoding="utf-8") as handle:
        handle.write("extraword 1\n")
    code, err = run_convert(capsys, archive, tmp_path / "out")
    assert_failed_cleanly(code, err, tmp_path / "out", "encoder.embed_tokens.weight", "3960 rows", "3961 entries")


def test_existing_output_is_refused_without_force(capsys, archive, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, err = run_convert(capsys, archive, out)
    assert code == 2 and "--force" in err and (out / "keep.txt").read_text() == "mine"
    code, _ = run_convert(capsys, archive, out, "--force")
    assert code == 0 and not (out / "keep.txt").exists() and (out / "model.safetensors").is_file()


def test_missing_languages_lists_the_dictionaries(capsys, archive, tmp_path):
    code = convert_main(["--fsmt-path", str(archive / "model1.pt"), "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "--src-lang" in err and "dict.en.txt" in err and "dict.fr.txt" in err


@pytest.mark.parametrize("umask,file_mode,folder_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_every_file_of_a_converted_folder_gets_the_umasks_mode(archive, tmp_path, umask, file_mode, folder_mode):
    """One atomic writer for all 8 files: a folder on a shared server is readable when the umask says so."""
    import os
    import stat

    from fsmt_port.fairseq.convert import convert

    previous = os.umask(umask)
    try:
        out = convert(archive / "model1.pt", tmp_path / "out", src_lang="en", tgt_lang="fr")
    finally:
        os.umask(previous)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    assert set(modes) == EXPECTED_FILES
    assert modes == {name: file_mode for name in EXPECTED_FILES}
    assert stat.S_IMODE(out.stat().st_mode) == folder_mode
