"""The porting blog's run_eval / run_eval_search command lines, verbatim but for the model and the data.

They use transformers' ``examples/legacy/seq2seq`` spellings (``--reference_path``, ``--score_path``, ``--bs``,
``--task translation``, ``--search="..."``); each is split like a shell would and run through the CLI's
``main``, in a folder holding ``val.source``/``val.target``, with the model given as a hub repo id (from a
local hub cache, offline) or as a folder.
"""

from __future__ import annotations

import json
import re
import shlex

import pytest
import sacrebleu

import golden
from hub_cache import add_snapshot, folder_files, use_cache
from fsmt_port.evaluation.run_eval import main as run_eval_main
from fsmt_port.evaluation.run_eval_search import main as run_eval_search_main
from fsmt_port.translation.translator import Translator

TINY = "tiny-en-de-joint"
REPO_ID = "fsmt-port/tiny-en-de"
N_LINES = 3
BLOG_RUN_EVAL = ("run_eval MODEL val.source out.txt --reference_path val.target --score_path scores.json "
                 "--task translation --bs 32")
BLOG_SEARCH = ('run_eval_search MODEL val.source out.txt --reference_path val.target --score_path bleu.json --bs 32 '
               '--task translation --search="num_beams=5:8:11:15 length_penalty=0.6:0.7:0.8:0.9:1.0:1.1 '
               'early_stopping=true:false"')
MAINS = {"run_eval": run_eval_main, "run_eval_search": run_eval_search_main}


def run(command: str, model: str, *extra: str) -> int:
    program, *argv = shlex.split(command.replace("MODEL", model))
    return MAINS[program]([*argv, "--quiet", "--threads", "1", *extra])


@pytest.fixture
def workdir(converted, tmp_path, monkeypatch):
    """cwd = a folder with val.source / val.target; REPO_ID is in the (offline) hub cache."""
    (tmp_path / "val.source").write_text("".join(x + "\n" for x in golden.flickr_lines("en")[:N_LINES]),
                                         encoding="utf-8")
    (tmp_path / "val.target").write_text("".join(x + "\n" for x in golden.flickr_lines("de")[:N_LINES]),
                                         encoding="utf-8")
    add_snapshot(tmp_path / "hub", REPO_ID, folder_files(converted(TINY)))
    use_cache(monkeypatch, tmp_path / "hub")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _bleu(hyps_file, refs_file) -> float:
    hyps = hyps_file.read_text(encoding="utf-8").splitlines()
    refs = refs_file.read_text(encoding="utf-8").splitlines()
    return sacrebleu.corpus_bleu(hyps, [refs]).score


def test_blog_run_eval_command(workdir, converted):
    assert run(BLOG_RUN_EVAL, REPO_ID) == 0
    scores = json.loads((workdir / "scores.json").read_text())
    expected = [t.hypotheses[0].text for t in Translator.from_pretrained(converted(TINY)).translate(
        golden.flickr_lines("en")[:N_LINES])]
    assert (workdir / "out.txt").read_text(encoding="utf-8").splitlines() == expected
    assert scores["bleu"] == pytest.approx(_bleu(workdir / "out.txt", workdir / "val.target"), abs=1e-9)
    assert scores["n_obs"] == N_LINES and scores["batch_size"] == 32 and scores["models"] == [REPO_ID]


@pytest.mark.slow
def test_blog_run_eval_search_command_with_the_blog_grid(workdir, converted, capsys):
    assert run(BLOG_SEARCH, str(converted(TINY))) == 0
    stdout = capsys.readouterr().out
    lines = stdout.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("bleu ")))
    assert [c.strip() for c in lines[start].split("|")] == ["bleu", "num_beams", "length_penalty", "early_stopping"]
    assert re.fullmatch(r"-+ \| -+ \| -+ \| -+", lines[start + 1])
    rows = [[c.strip() for c in line.split("|")] for line in lines[start + 2: start + 2 + 48]]
    assert {(r[1], r[2], r[3]) for r in rows} == {(b, p, e) for b in ("5", "8", "11", "15")
                                                  for p in ("0.6", "0.7", "0.8", "0.9", "1", "1.1")
                                                  for e in ("true", "false")}
    bleus = [float(r[0]) for r in rows]
    assert bleus == sorted(bleus, reverse=True)

    scores = json.loads((workdir / "bleu.json").read_text())  # --score_path: the search's results
    assert len(scores["results"]) == 48 and scores["batch_size"] == 32
    assert [round(r["bleu"], 2) for r in scores["results"]] == bleus
    best = scores["results"][0]
    assert best["bleu"] == pytest.approx(_bleu(workdir / "out.txt", workdir / "val.target"), abs=1e-9)
    assert scores == json.loads((workdir / "out.txt.search" / "results.json").read_text())


def test_transformers_spellings_of_the_other_run_eval_options(workdir, capsys):
    assert run(BLOG_RUN_EVAL, REPO_ID, "--n_obs", "2", "--num_beams", "2", "--length_penalty=0.7", "--info",
               "--dump-args", "--device", "cpu", "--max_len_b", "20") == 0
    scores = json.loads((workdir / "scores.json").read_text())
    assert scores["n_obs"] == 2 and len((workdir / "out.txt").read_text().splitlines()) == 2
    assert (scores["num_beams"], scores["length_penalty"], scores["max_len_b"]) == (2, 0.7, 20)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", scores["info"])  # --info without a value: now
    printed = json.loads(capsys.readouterr().out.strip())  # --dump-args: the scores with every argument
    assert printed["bleu"] == scores["bleu"] and printed["num_beams"] == 2
    assert run(BLOG_RUN_EVAL, REPO_ID, "--fp16") == 0
    assert json.loads((workdir / "scores.json").read_text())["dtype"] == "fp16"


@pytest.mark.parametrize("command", [BLOG_RUN_EVAL, BLOG_SEARCH])
def test_tasks_other_than_translation_are_refused_in_one_line(workdir, capsys, command):
    assert run(command.replace("--task translation", "--task summarization"), REPO_ID) == 2
    err = capsys.readouterr().err
    assert err == ("error: --task 'summarization': fsmt_port evaluates translation only (BLEU); "
                   "give --task translation or leave it out\n")
    assert not (workdir / "out.txt").exists()
