"""fairseq's SequenceScorer (``--score-reference``): every visible ``score_reference`` run reproduced
(tiny models, small-en-de model4, model3+4 and the 4-model ensemble), through the API and fsmt-score."""

from __future__ import annotations

import functools
import json
import math

import pytest

import golden
from fsmt_port.modeling.model import FSMTForConditionalGeneration
from fsmt_port.scoring.cli import main as score_main
from fsmt_port.scoring.scorer import score_translations
from fsmt_port.translation.translator import Translator

MODELS = ("tiny-en-de-joint", "tiny-en-cs-variant", "small-en-de")


@functools.lru_cache(maxsize=None)
def ext(name: str) -> dict:
    return golden._read_json_gz(golden.model_dir(name) / "expected_ext.json.gz")


def runs():
    for name in MODELS:
        for run in ext(name)["score_reference"]["runs"]:
            yield pytest.param(name, run["checkpoint_file"], id=f"{name}-{run['checkpoint_file']}")


def assert_close(expected: dict, got) -> None:
    assert got.tokens == expected["tokens"]
    assert len(got.positional_scores) == len(expected["positional_scores"])
    for want, have in zip(expected["positional_scores"], got.positional_scores):
        assert abs(want - have) <= 1e-4
    assert abs(expected["score"] - got.score) <= max(1e-4, abs(sum(expected["positional_scores"])) * 2 ** -20)


@pytest.mark.parametrize("name,checkpoints", list(runs()))
def test_score_reference_matches_fairseq(converted, name, checkpoints):
    run = next(r for r in ext(name)["score_reference"]["runs"] if r["checkpoint_file"] == checkpoints)
    models = [FSMTForConditionalGeneration.from_pretrained(converted(name, c)) for c in checkpoints.split(":")]
    source_ids = {t["index"]: t["ids"] for t in golden.load_expected(name)["tokenizer"]}
    references = {r["index"]: r["tgt_ids"] for r in ext(name)["references"]}
    results = run["results"]
    assert len(results) == 100
    scored = score_translations(models, [source_ids[r["index"]] for r in results],
                                [references[r["index"]] for r in results], batch_size=8)
    for result, got in zip(results, scored):
        assert_close(result["hypos"][0], got)
    if len(models) == 1:  # model.score is the same scorer
        first = models[0].score([source_ids[results[0]["index"]]], [references[results[0]["index"]]])[0]
        assert_close(results[0]["hypos"][0], first)


def test_translator_score_and_cli_text_in(converted, tmp_path):
    """Text in: the Translator and fsmt-score tokenize source and reference as fairseq-generate's data did."""
    name = "tiny-en-de-joint"
    run = ext(name)["score_reference"]["runs"][0]
    refs = {r["index"]: r["text"] for r in ext(name)["references"]}
    texts = golden.sentence_texts(name)
    rows = run["results"][:12]
    sources, targets = [texts[r["index"]] for r in rows], [refs[r["index"]] for r in rows]
    model_dir = converted(name)
    for row, got in zip(rows, Translator.from_pretrained(model_dir).score(sources, targets)):
        assert_close(row["hypos"][0], got)
    (tmp_path / "src").write_text("\n".join(sources) + "\n", encoding="utf-8")
    (tmp_path / "tgt").write_text("\n".join(targets) + "\n", encoding="utf-8")
    out = tmp_path / "scores.jsonl"
    assert score_main([str(model_dir), "--source", str(tmp_path / "src"), "--input", str(tmp_path / "tgt"),
                       "--output", str(out), "--quiet"]) == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == list(range(len(rows)))
    for row, line in zip(rows, lines):
        assert line["tokens"] == row["hypos"][0]["tokens"]
        assert math.isclose(line["score"], row["hypos"][0]["score"], abs_tol=1e-4)
    # nothing is overwritten without --force; mismatched inputs are one clear error
    assert score_main([str(model_dir), "--source", str(tmp_path / "src"), "--input", str(tmp_path / "tgt"),
                       "--output", str(out), "--quiet"]) == 2
    (tmp_path / "short").write_text("one line\n", encoding="utf-8")
    assert score_main([str(model_dir), "--source", str(tmp_path / "short"), "--input", str(tmp_path / "tgt"),
                       "--quiet"]) == 2
    assert score_main([str(model_dir), "--input", str(tmp_path / "tgt"), "--quiet"]) == 2
