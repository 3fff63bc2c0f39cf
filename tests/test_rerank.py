"""Noisy-channel reranking against fairseq (noisy_channel.json): every component score of the 50-best
lists of 100 sentences, fairseq's get_score and the reranked choices under all three weight settings,
fsmt-rerank end to end with fairseq's option names, and the tuning search."""

from __future__ import annotations

import functools
import json
import random

import pytest

import golden
from fsmt_port.reranking.cli import main as rerank_main
from fsmt_port.reranking.combine import Weights, get_score
from fsmt_port.reranking.components import bitext_sums, lm_sums, remove_bpe
from fsmt_port.reranking.reranker import rerank
from fsmt_port.reranking.tune import random_trials
from fsmt_port.scoring.language_model import LanguageModel
from fsmt_port.translation.translator import Translator

LM_DIR = golden.FIXTURES / "small-en-de-lm"
CHANNEL_DIR = golden.FIXTURES / "small-de-en-channel"
#: golden component name -> ours
COMPONENTS = {"channel": "channel_sum", "forward": "forward_sum"}


@functools.lru_cache(maxsize=None)
def noisy_channel() -> dict:
    return golden._read_json_gz(LM_DIR / "noisy_channel.json.gz")


@pytest.fixture(scope="module")
def folders(converted, tmp_path_factory):
    from fsmt_port.fairseq.convert import convert

    root = tmp_path_factory.mktemp("noisy")
    return {"forward": converted("small-en-de"),
            "channel": convert(CHANNEL_DIR / "model1.pt", root / "channel", src_lang="de", tgt_lang="en"),
            "lm": convert(LM_DIR / "model.pt", root / "lm")}


def golden_sentences(setting: dict) -> list[dict]:
    """The golden n-best lists with the golden components named as the reranker names them."""
    out = []
    for s in noisy_channel()["sentences"]:
        hypos = []
        for h in s["hypos"]:
            components = {"forward": h["forward_sum"], "channel": h["channel_sum"]}
            hypos.append({"target_len_words": h["target_len_words"], "tgt_len_bpe_tokens": h["tgt_len_bpe_tokens_excl_eos"],
                          "bitext1_sum": components[setting["bitext1"]],
                          "bitext2_sum": components[setting["bitext2"]] if setting["bitext2"] else None,
                          "lm_sum": h["lm_sum_incl_eos"], "text": h["decoded"]})
        out.append({"src_len_bpe_tokens": s["hypos"][0]["src_len_bpe_tokens_excl_eos"], "hypos": hypos})
    return out


def weights_of(setting: dict) -> Weights:
    return Weights(setting["a_weight1"], setting["b_weight2"], setting["c_weight3"], setting["lenpen"])


@pytest.mark.parametrize("index", [0, 1, 2])
def test_get_score_and_choices_match_fairseq(index):
    setting = noisy_channel()["rerank"][index]
    backwards = (setting["bitext1_backwards"], setting["bitext2_backwards"] if setting["bitext2"] else None)
    chosen, scores = rerank(golden_sentences(setting), weights_of(setting), backwards, setting["normalize"])
    assert chosen == [c["chosen_hypo"] for c in setting["choices"]]
    for row, choice in zip(scores, setting["choices"]):
        assert max(abs(a - b) for a, b in zip(row, choice["rerank_scores"])) <= 1e-9


def test_get_score_normalize_follows_fairseq():
    # LM normalized by the SOURCE length, a backwards bitext by the source, a forward one by the target
    assert get_score(1, 2, 3, 4, -8.0, -6.0, -10.0, 1.0, src_len=5, tgt_len=2, bitext1_backwards=True,
                     normalize=True) == pytest.approx((-8 / 5 + 2 * -6 / 2 + 3 * -10 / 5) / 4)
    assert get_score(1, 0, 0, 9, -3.0, lenpen=0.5) == pytest.approx(-1.0)
    assert get_score(1, 5, 0, 1, -3.0, None, None) == -3.0  # no second model: b ignored


@pytest.mark.parametrize("per_sentence", [10, pytest.param(50, marks=pytest.mark.slow)])
def test_components_match_fairseq(folders, per_sentence):
    """Channel (SequenceScorer of source | hypothesis) and LM (incl. EOS) sums of the hypotheses of all
    100 sentences (the first 10 of each, all 50 in the slow run), and their word / BPE lengths."""
    data = {"sentences": [{**s, "hypos": s["hypos"][:per_sentence]} for s in noisy_channel()["sentences"]]}
    gen = Translator.from_pretrained(folders["forward"])
    tok = gen.tokenizer
    sentences = []
    for s in data["sentences"]:
        src_ids = gen.encode([s["source"]])[0]
        assert len(src_ids) - 1 == s["hypos"][0]["src_len_bpe_tokens_excl_eos"]
        hypos = [{"bpe": tok.string(h["tokens"])} for h in s["hypos"]]
        for h, mine in zip(s["hypos"], hypos):
            assert len(remove_bpe(mine["bpe"]).split()) == h["target_len_words"]
            assert len(mine["bpe"].split()) == h["tgt_len_bpe_tokens_excl_eos"]
        sentences.append({"source_bpe": tok.src_dict.string(src_ids), "hypos": hypos})
    channel = bitext_sums(Translator.from_pretrained(folders["channel"]), sentences, True, batch_size=64)
    lm = lm_sums(LanguageModel.from_pretrained(folders["lm"]), sentences, batch_size=64)
    for s, channel_row, lm_row in zip(data["sentences"], channel, lm):
        for h, ch, lm_sum in zip(s["hypos"], channel_row, lm_row):
            assert abs(ch - h["channel_sum"]) <= max(1e-4, abs(h["channel_sum"]) * 2 ** -20)
            assert abs(lm_sum - h["lm_sum_incl_eos"]) <= max(1e-4, abs(h["lm_sum_incl_eos"]) * 2 ** -20)


N_END_TO_END = 6


def test_fsmt_rerank_end_to_end_all_settings(folders, tmp_path):
    """fsmt-rerank with fairseq's option names: 50-best generation, scores and choices of the first
    sentences under the three golden settings; the second and third runs come from the cache."""
    data = noisy_channel()
    sentences = data["sentences"][:N_END_TO_END]
    (tmp_path / "src.en").write_text("".join(s["source"] + "\n" for s in sentences), encoding="utf-8")
    cache = tmp_path / "cache"
    for setting in data["rerank"]:
        roles = {"channel": [str(folders["channel"]), "--backwards1"] if setting["bitext1"] == "channel" else
                 [str(folders["forward"])]}
        argv = ["--input", str(tmp_path / "src.en"), "--output", str(tmp_path / "out.de"), "--jsonl",
                str(tmp_path / "out.jsonl"), "--force", "--quiet", "--cache-dir", str(cache),
                "--gen-model", str(folders["forward"]), "--score-model1", *roles["channel"],
                "--language-model", str(folders["lm"]), "--num-rescore", "50",
                "--weight1", str(setting["a_weight1"]), "--weight2", str(setting["b_weight2"]),
                "--weight3", str(setting["c_weight3"]), "--lenpen", str(setting["lenpen"])]
        if setting["bitext2"] == "forward":
            argv += ["--score-model2", str(folders["forward"])]
        assert rerank_main(argv) == 0
        records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
        lines = (tmp_path / "out.de").read_text(encoding="utf-8").splitlines()
        for s, choice, record, line in zip(sentences, setting["choices"], records, lines):
            assert [h["tokens"] for h in record["hypotheses"]] == [h["tokens"] for h in s["hypos"]]
            assert record["chosen"] == choice["chosen_hypo"]
            assert line == s["hypos"][choice["chosen_hypo"]]["decoded"]
            for mine, want in zip(record["hypotheses"], choice["rerank_scores"]):
                assert abs(mine["rerank_score"] - want) <= 1e-4
            for mine, theirs in zip(record["hypotheses"], s["hypos"]):
                assert abs(mine["forward_sum"] - theirs["forward_sum"]) <= 1e-4
                assert abs(mine["lm_sum"] - theirs["lm_sum_incl_eos"]) <= 1e-4
                if setting["bitext1"] == "channel":
                    assert abs(mine["bitext1_sum"] - theirs["channel_sum"]) <= 1e-4
    assert len(list(cache.glob("*.json"))) == 3  # n-best, channel, LM; forward reused from the generator


def test_random_search_draws_as_fairseq():
    rng = random.Random(1)  # rerank_tune.py: random.seed(args.seed); one uniform per tuned param per trial
    expected = [[rng.uniform(-0.7, 3), rng.uniform(0, 2)] for _ in range(5)]
    trials = random_trials(Weights(1, 0.5, 0.3, 1), ["lenpen", "weight3"], [-0.7, 0], [3, 2], 5, seed=1)
    assert [[t.lenpen, t.weight3] for t in trials] == expected
    assert all(t.weight1 == 1 and t.weight2 == 0.5 for t in trials)
    shared = random_trials(Weights(), ["weight2"], [0], [1], 3, seed=1, share_weights=True)
    assert all(t.weight2 == t.weight3 for t in shared)


def test_tune_uses_the_cache_and_reports(folders, tmp_path, capsys):
    data = noisy_channel()
    sentences = data["sentences"][:N_END_TO_END]
    (tmp_path / "dev.en").write_text("".join(s["source"] + "\n" for s in sentences), encoding="utf-8")
    (tmp_path / "dev.de").write_text("".join(s["reference"] + "\n" for s in sentences), encoding="utf-8")
    base = ["--input", str(tmp_path / "dev.en"), "--reference", str(tmp_path / "dev.de"), "--quiet",
            "--cache-dir", str(tmp_path / "cache"), "--gen-model", str(folders["forward"]), "--score-model1",
            str(folders["forward"]), "--language-model", str(folders["lm"]), "--num-rescore", "8"]
    assert rerank_main(base + ["--output", str(tmp_path / "a.de"), "--score-path", str(tmp_path / "score.json")]) == 0
    entries = sorted(p.stat().st_mtime_ns for p in (tmp_path / "cache").glob("*.json"))
    assert rerank_main(base + ["--output", str(tmp_path / "b.de"), "--tune", "--tune-param", "weight3", "lenpen",
                               "--lower-bound", "0", "0", "--upper-bound", "1", "2", "--num-trials", "20",
                               "--search", "weight3=0:0.5", "--results-dir", str(tmp_path / "tune")]) == 0
    assert sorted(p.stat().st_mtime_ns for p in (tmp_path / "cache").glob("*.json")) == entries  # nothing recomputed
    out = capsys.readouterr().out
    assert "| trial | weight1 | weight2 | weight3 | lenpen | bleu |" in out and "best:" in out
    best = json.loads((tmp_path / "tune" / "best_weights.json").read_text())
    assert best["n_trials"] == 1 + 20 + 2
    trials = (tmp_path / "tune" / "trials.csv").read_text().splitlines()
    assert len(trials) == 1 + best["n_trials"]
    assert max(float(line.split(",")[5]) for line in trials[1:]) == pytest.approx(best["bleu"])

    # the model card puts the reranked BLEU in its evaluation table
    from fsmt_port.evaluation.model_card import main as card_main

    score = json.loads((tmp_path / "score.json").read_text())
    assert score["reranking"]["language_model"] == [str(folders["lm"])] and score["num_beams"] == 8
    assert card_main([str(folders["forward"]), "--scores", str(tmp_path / "score.json"), "--name", "small",
                      "--out-dir", str(tmp_path / "cards")]) == 0
    card = (tmp_path / "cards" / "small" / "README.md").read_text(encoding="utf-8")
    row = next(line for line in card.splitlines() if "reranked" in line)
    assert f"{score['bleu']:.2f}" in row and "LM lm (w3 1)" in row


@pytest.mark.parametrize("extra,message", [
    (["--tune"], "--reference"),
    (["--weight1", "1", "2", "--weight2", "1", "2", "3"], "same number of values"),
    (["--backwards2"], "--backwards2 without --score-model2"),
])
def test_bad_options_are_one_clear_error(folders, tmp_path, capsys, extra, message):
    (tmp_path / "in.en").write_text("A man.\n", encoding="utf-8")
    argv = ["--input", str(tmp_path / "in.en"), "--output", str(tmp_path / "out"), "--gen-model",
            str(folders["forward"]), "--score-model1", str(folders["forward"]), "--quiet", *extra]
    assert rerank_main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_fairseq_checkpoints_are_converted_on_the_fly(folders, tmp_path):
    """As fairseq's rerank.py, models may be given as checkpoint files (-s/-t give the languages)."""
    (tmp_path / "in.en").write_text("A man in an orange hat starring at something.\nTwo dogs play.\n", encoding="utf-8")
    common = ["--input", str(tmp_path / "in.en"), "--num-rescore", "4", "--quiet", "--backwards1",
              "--weight1", "0.5", "--weight3", "0.3", "--lenpen", "0.7"]
    pt = ["--gen-model", str(golden.checkpoint_path("small-en-de")), "--score-model1", str(CHANNEL_DIR / "model1.pt"),
          "--score-model2", str(golden.checkpoint_path("small-en-de")), "--language-model", str(LM_DIR / "model.pt"),
          "-s", "en", "-t", "de", "--cache-dir", str(tmp_path / "cache")]
    dirs = ["--gen-model", str(folders["forward"]), "--score-model1", str(folders["channel"]),
            "--score-model2", str(folders["forward"]), "--language-model", str(folders["lm"])]
    assert rerank_main(common + pt + ["--output", str(tmp_path / "a.de"), "--jsonl", str(tmp_path / "a.jsonl")]) == 0
    assert rerank_main(common + dirs + ["--output", str(tmp_path / "b.de"), "--jsonl", str(tmp_path / "b.jsonl")]) == 0
    assert (tmp_path / "a.de").read_text() == (tmp_path / "b.de").read_text()
    a = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert [r["hypotheses"] for r in a] == [r["hypotheses"] for r in b]
    assert len(list((tmp_path / "cache" / "converted").iterdir())) == 3  # gen (= score-model2), channel, LM


def test_several_folders_per_role_are_an_ensemble():
    from fsmt_port.reranking.cli import _folders, build_parser

    args = build_parser().parse_args(["--input", "x", "--output", "y", "--gen-model", "m1:m2", "m3",
                                      "--score-model1", "c1", "c2", "-b1", "-lm", "lm1:lm2"])
    assert _folders(args.gen_model) == ["m1", "m2", "m3"]
    assert _folders(args.score_model1) == ["c1", "c2"] and args.backwards1
    assert _folders(args.language_model) == ["lm1", "lm2"]
