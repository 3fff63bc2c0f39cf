"""fairseq transformer_lm: conversion (modern cfg and 2019 args layouts), LanguageModel.score exactly as
the LM hub's score(), fsmt-score on an LM folder, and shallow fusion (lm_path/lm_weight) in generate."""

from __future__ import annotations

import argparse
import functools
import json
import math

import pytest
import torch

import golden
from fsmt_port import LanguageModel
from fsmt_port.errors import CheckpointError
from fsmt_port.fairseq.checkpoint import load_torch_file
from fsmt_port.fairseq.convert import convert
from fsmt_port.scoring.cli import main as score_main
from fsmt_port.translation.translator import Translator

LM_DIR = golden.FIXTURES / "small-en-de-lm"
#: modern-only fields that a 2019 (fairseq 0.8) transformer_lm Namespace does not have
POST_2019 = ("no_scale_embedding", "layernorm_embedding", "checkpoint_activations", "offload_activations",
             "quant_noise_pq", "quant_noise_pq_block_size", "quant_noise_scalar", "min_params_to_wrap",
             "base_layers", "base_sublayers", "base_shuffle", "scale_fc", "scale_attn", "scale_heads",
             "scale_resids", "decoder_xformers_att_config", "decoder_layerdrop", "tpu", "_name")


@functools.lru_cache(maxsize=None)
def expected_lm() -> dict:
    return golden._read_json_gz(LM_DIR / "expected_lm.json.gz")


def write_2019_layout(modern: dict, path) -> None:
    """The same LM in the layout fairseq 0.8 wrote: ``args`` Namespace, fused ``in_proj``, no output matrix
    (tied to the embeddings), sinusoidal placeholder buffer; no ``cfg``."""
    cfg = modern["cfg"]
    flat = {k: v for section in ("task", "model") for k, v in dict(cfg[section]).items() if k not in POST_2019}
    args = argparse.Namespace(**flat, arch="transformer_lm", task="language_modeling")
    state = {}
    for key, tensor in modern["model"].items():
        if key == "decoder.output_projection.weight":
            continue
        if ".self_attn.q_proj." in key:
            kind = key.rsplit(".", 1)[1]
            prefix = key.split(".q_proj.")[0]
            state[f"{prefix}.in_proj_{kind}"] = torch.cat(
                [modern["model"][f"{prefix}.{p}_proj.{kind}"] for p in "qkv"], dim=0)
        elif ".self_attn.k_proj." in key or ".self_attn.v_proj." in key:
            continue
        else:
            state[key] = tensor
    state["decoder.embed_positions._float_tensor"] = torch.zeros(1)
    torch.save({"args": args, "model": state, "optimizer_history": [], "extra_state": {}, "last_optimizer_state": {}},
               path)


@pytest.fixture(scope="module")
def lm_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    modern = convert(LM_DIR / "model.pt", root / "modern")
    legacy_src = root / "legacy_archive"
    legacy_src.mkdir()
    for name in ("dict.txt", "bpecodes"):
        (legacy_src / name).write_bytes((LM_DIR / name).read_bytes())
    write_2019_layout(load_torch_file(LM_DIR / "model.pt"), legacy_src / "model.pt")
    legacy = convert(legacy_src / "model.pt", root / "legacy")
    return {"modern": modern, "legacy": legacy}


def check_scored(got, tokens, positional, score) -> None:
    assert got.tokens == tokens
    assert len(got.positional_scores) == len(positional)
    assert max((abs(a - b) for a, b in zip(got.positional_scores, positional)), default=0.0) <= 1e-4
    assert abs(got.score - score) <= 1e-4


def test_converted_config_keeps_the_projections(lm_dirs):
    config = json.loads((lm_dirs["modern"] / "config.json").read_text())
    assert config["model_type"] == "fsmt_port_lm"
    assert (config["decoder_input_dim"], config["decoder_embed_dim"], config["decoder_output_dim"]) == (512, 256, 512)
    assert config["max_target_positions"] == 256  # tokens_per_sample, as transformer_lm's build_model
    assert config["decoder_normalize_before"] is False and config["decoder_final_layer_norm"] is False


@pytest.mark.parametrize("layout", ["modern", "legacy"])
def test_lm_score_on_text_matches_hub(lm_dirs, layout):
    lm = LanguageModel.from_pretrained(lm_dirs[layout])
    examples = expected_lm()["lm_scores"]["lm_score_on_text_examples"]
    results = lm.score([e["text"] for e in examples])
    for example, got in zip(examples, results):
        check_scored(got, example["encoded_tokens"], example["positional_scores"], example["score"])
        assert got["score"] == got.score  # fairseq's dict-style access works too
    empty = lm.score("")
    assert empty.tokens == [] and empty.positional_scores == [] and math.isnan(empty.score)


@pytest.mark.parametrize("layout", ["modern", "legacy"])
def test_lm_scores_of_all_golden_hypotheses(lm_dirs, layout):
    """765 hypotheses (153 sentences x 5): the hub's scores without the final EOS."""
    lm = LanguageModel.from_pretrained(lm_dirs[layout])
    hypos = [h for s in expected_lm()["lm_scores"]["results"] for h in s["hypos"]]
    assert len(hypos) == 765
    assert all(h["tokens"][:-1] == h["lm_hub_score_tokens"] for h in hypos)
    results = lm.score_ids([h["lm_hub_score_tokens"] for h in hypos], batch_size=64)
    for h, got in zip(hypos, results):
        check_scored(got, h["lm_hub_score_tokens"], h["lm_hub_positional_scores"], h["lm_hub_score"])
    # the eval_lm convention (EOS scored too) from the same model
    with_eos = lm.score_ids([h["tokens"] for h in hypos[:20]])
    for h, got in zip(hypos[:20], with_eos):
        assert max(abs(a - b) for a, b in zip(got.positional_scores, h["lm_forward_positional_incl_eos"])) <= 1e-4


def test_score_cli_on_an_lm_folder(lm_dirs, tmp_path):
    examples = expected_lm()["lm_scores"]["lm_score_on_text_examples"]
    (tmp_path / "in.txt").write_text("\n".join(e["text"] for e in examples) + "\n\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert score_main([str(lm_dirs["modern"]), "--input", str(tmp_path / "in.txt"), "--output", str(out),
                       "--quiet"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == len(examples) + 1
    for example, line in zip(examples, lines):
        assert line["tokens"] == example["encoded_tokens"]
        assert abs(line["score"] - example["score"]) <= 1e-4
    assert lines[-1]["tokens"] == [] and math.isnan(lines[-1]["score"])


def test_lm_conversion_refuses_unsupported_options(tmp_path):
    ckpt = load_torch_file(LM_DIR / "model.pt")
    ckpt["cfg"]["model"]["adaptive_input"] = True
    ckpt["cfg"]["model"]["character_embeddings"] = True
    (tmp_path / "a").mkdir()
    for name in ("dict.txt", "bpecodes"):
        (tmp_path / "a" / name).write_bytes((LM_DIR / name).read_bytes())
    torch.save(ckpt, tmp_path / "a" / "model.pt")
    with pytest.raises(CheckpointError) as err:
        convert(tmp_path / "a" / "model.pt", tmp_path / "out")
    assert "adaptive_input=True" in str(err.value) and "character_embeddings=True" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_lm_conversion_reports_unused_keys(tmp_path):
    ckpt = load_torch_file(LM_DIR / "model.pt")
    ckpt["model"]["decoder.extra_thing.weight"] = torch.zeros(2)
    (tmp_path / "a").mkdir()
    for name in ("dict.txt", "bpecodes"):
        (tmp_path / "a" / name).write_bytes((LM_DIR / name).read_bytes())
    torch.save(ckpt, tmp_path / "a" / "model.pt")
    with pytest.raises(CheckpointError, match="decoder.extra_thing.weight"):
        convert(tmp_path / "a" / "model.pt", tmp_path / "out")


@pytest.mark.parametrize("index", [0, 1])
def test_shallow_fusion_matches_fairseq(converted, lm_dirs, index):
    config = expected_lm()["shallow_fusion"]["configs"][index]
    source_ids = {t["index"]: t["ids"] for t in golden.load_expected("small-en-de")["tokenizer"]}
    translator = Translator.from_pretrained(converted("small-en-de"))
    results = config["results"]
    hypos = translator.generate_ids([source_ids[r["index"]] for r in results], batch_size=8,
                                    num_beams=5, lm_path=str(lm_dirs["modern"]), lm_weight=config["lm_weight"])
    for result, got in zip(results, hypos):
        assert [h["tokens"] for h in result["hypos"]] == [h.tokens.tolist() for h in got]
        for want, have in zip(result["hypos"], got):
            assert abs(want["score"] - have.score) <= 1e-4
            assert max(abs(a - b) for a, b in zip(want["positional_scores"], have.positional_scores.tolist())) <= 1e-4
    plain = expected_lm()["shallow_fusion"]["plain_beam5_same_calls"]["results"]
    changed = sum(p["hypos"][0]["tokens"] != r["hypos"][0]["tokens"] for p, r in zip(plain, results))
    assert changed > 0  # fusion changes translations: the LM is really in the search


def test_translate_cli_fuses_with_lm_path(converted, lm_dirs, tmp_path):
    from fsmt_port.translation.cli import main as translate_main

    config = expected_lm()["shallow_fusion"]["configs"][1]
    texts = golden.sentence_texts("small-en-de")
    rows = config["results"][:3]
    (tmp_path / "in.en").write_text("".join(texts[r["index"]] + "\n" for r in rows), encoding="utf-8")
    assert translate_main([str(converted("small-en-de")), "--input", str(tmp_path / "in.en"), "--output",
                           str(tmp_path / "out.jsonl"), "--format", "jsonl", "--num-beams", "5", "--lm-path",
                           str(lm_dirs["modern"]), "--lm-weight", str(config["lm_weight"]), "--quiet"]) == 0
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    for row, record in zip(rows, records):
        assert [h["tokens"] for h in record["hypotheses"]] == [h["tokens"] for h in row["hypos"]]
        assert abs(record["hypotheses"][0]["score"] - row["hypos"][0]["score"]) <= 1e-4
