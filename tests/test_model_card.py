"""Model cards: correct metadata, a usage snippet that really runs, a table from real score files."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest
import yaml

import golden
from hub_cache import add_snapshot, folder_files, use_cache
from fsmt_port.evaluation.model_card import main as card_main
from fsmt_port.evaluation.run_eval import main as run_eval_main

TINY = "tiny-en-de-joint"
REPO = Path(__file__).resolve().parents[1]


def front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


@pytest.fixture(scope="module")
def score_file(converted, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("card_scores")
    src, ref = tmp / "flickr.en", tmp / "flickr.de"
    src.write_text("".join(x + "\n" for x in golden.flickr_lines("en")[:8]), encoding="utf-8")
    ref.write_text("".join(x + "\n" for x in golden.flickr_lines("de")[:8]), encoding="utf-8")
    score = tmp / "score.json"
    assert run_eval_main([str(converted(TINY)), str(src), str(tmp / "hyps.de"), "--reference-path", str(ref),
                          "--score-path", str(score), "--threads", "1", "--quiet"]) == 0
    return score


def test_card_has_metadata_a_working_snippet_and_the_real_scores(converted, score_file, tmp_path):
    model = converted(TINY)
    assert card_main([str(model), "--scores", str(score_file), "--fairseq-bleu", "12.34", "--name", "tiny-en-de",
                      "--out-dir", str(tmp_path / "cards")]) == 0
    text = (tmp_path / "cards" / "tiny-en-de" / "README.md").read_text(encoding="utf-8")

    meta = front_matter(text)
    assert meta["language"] == ["en", "de"]
    assert {"translation", "fsmt", "fairseq"} <= set(meta["tags"]) and "wmt19" not in meta["tags"]
    assert meta["metrics"] == ["bleu"] and meta["license"] and meta["datasets"] == ["flickr"]

    score = json.loads(score_file.read_text())
    row = next(line for line in text.splitlines() if line.startswith("| tiny"))
    assert "| 12.34 |" in row and f"| {score['bleu']:.2f} |" in row and "| flickr.en | 8 | 5 | 1.0 |" in row
    assert score["signature"] in text
    assert "## Default generation settings" in text and "| num_beams | 5 |" in text
    assert "## Porting notes" in text and "## Limitations" in text

    # The usage snippet runs against the real folder and prints what the card says it prints.
    (snippet,) = code_blocks(text, "python")
    assert 'mname = "tiny-en-de"' in snippet
    assert run_snippet(snippet.replace('"tiny-en-de"', json.dumps(str(model)))) == claimed_output(snippet)


def claimed_output(snippet: str) -> str:
    """What the card says its snippet prints: the comment after ``print(...)``."""
    (claim,) = re.findall(r"^print\(.*\)  # (.+)$", snippet, flags=re.M)
    return claim


def run_snippet(code: str) -> str:
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        exec(code, {})
    return stdout.getvalue().strip()


def test_the_committed_cards_snippet_runs_against_the_folder_and_the_hub_id(converted, tmp_path, monkeypatch):
    """The python block of model_cards/small-en-de/README.md, as committed, prints what it claims: with the
    converted folder, and with a hub repo id served from a local hub cache (offline)."""
    text = (REPO / "model_cards" / "small-en-de" / "README.md").read_text(encoding="utf-8")
    (snippet,) = code_blocks(text, "python")
    assert 'mname = "small-en-de"' in snippet and "return_tensors=\"pt\"" in snippet
    claim = claimed_output(snippet)
    folder = converted("small-en-de")
    assert run_snippet(snippet.replace('"small-en-de"', json.dumps(str(folder)))) == claim

    add_snapshot(tmp_path / "hub", "fsmt-port/small-en-de", folder_files(folder))
    use_cache(monkeypatch, tmp_path / "hub")
    assert run_snippet(snippet.replace('"small-en-de"', '"fsmt-port/small-en-de"')) == claim


def test_a_card_for_a_hub_id_names_the_id(converted, score_file, tmp_path, monkeypatch):
    add_snapshot(tmp_path / "hub", "fsmt-port/tiny-en-de", folder_files(converted(TINY)))
    use_cache(monkeypatch, tmp_path / "hub")
    assert card_main(["fsmt-port/tiny-en-de", "--scores", str(score_file), "--out-dir", str(tmp_path / "cards")]) == 0
    (snippet,) = code_blocks((tmp_path / "cards" / "tiny-en-de" / "README.md").read_text(encoding="utf-8"), "python")
    assert 'mname = "fsmt-port/tiny-en-de"' in snippet
    assert run_snippet(snippet) == claimed_output(snippet)


def test_wmt19_names_get_the_wmt19_tag_and_dataset(converted, score_file, tmp_path):
    assert card_main([str(converted(TINY)), "--scores", str(score_file), "--name", "wmt19-en-de",
                      "--out-dir", str(tmp_path)]) == 0
    meta = front_matter((tmp_path / "wmt19-en-de" / "README.md").read_text(encoding="utf-8"))
    assert "wmt19" in meta["tags"] and meta["datasets"] == ["wmt19"]


def test_unknown_fairseq_bleu_and_several_scores(converted, score_file, tmp_path):
    assert card_main([str(converted(TINY)), "--scores", str(score_file), str(score_file), "--fairseq-bleu", "-",
                      "11.5", "--name", "x", "--out-dir", str(tmp_path)]) == 0
    rows = [line for line in (tmp_path / "x" / "README.md").read_text().splitlines() if line.startswith("| tiny")]
    assert len(rows) == 2 and "| – |" in rows[0] and "| 11.50 |" in rows[1]


@pytest.mark.parametrize("extra,message", [
    (["--fairseq-bleu", "1", "2"], "--fairseq-bleu has 2 values for 1 --scores files"),
    (["--scores", "missing.json"], "missing.json: cannot read the score file"),
])
def test_bad_card_inputs_are_one_clear_line(converted, score_file, tmp_path, capsys, extra, message):
    args = [str(converted(TINY)), "--scores", str(score_file), "--out-dir", str(tmp_path), *extra]
    assert card_main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_a_score_file_that_is_not_from_run_eval_is_rejected(converted, tmp_path, capsys):
    other = tmp_path / "other.json"
    other.write_text('{"score": 1}')
    assert card_main([str(converted(TINY)), "--scores", str(other), "--out-dir", str(tmp_path)]) == 2
    assert "is this a run_eval --score-path JSON?" in capsys.readouterr().err


def test_the_committed_small_en_de_card_is_what_the_code_writes_from_the_recorded_scores(converted, tmp_path):
    """model_cards/small-en-de/README.md = model_card run on eval/results' score files (as
    eval/make_small_en_de_card.sh does): the committed card cannot drift from the code or the scores."""
    script = (REPO / "eval" / "make_small_en_de_card.sh").read_text(encoding="utf-8")
    note = re.search(r'--note "(.*?)"\n', script, flags=re.S).group(1).replace("\\\n", "").replace("\\`", "`")
    results = REPO / "eval" / "results" / "small-en-de"
    fairseq_bleu = ["35.28", "35.60"]  # sacrebleu on fairseq's own hypothesis files (byte-identical to ours)
    assert card_main([str(converted(golden.SMALL_MODEL)), "--name", "small-en-de", "--out-dir", str(tmp_path),
                      "--license", "mit", "--datasets", "multi30k",
                      "--scores", str(results / "model4.score.json"),
                      str(results / "model1+model2+model3+model4.score.json"),
                      "--fairseq-bleu", *fairseq_bleu, "--example", "Two dogs are playing in the snow.",
                      "--note", note]) == 0
    committed = (REPO / "model_cards" / "small-en-de" / "README.md").read_text(encoding="utf-8")
    assert (tmp_path / "small-en-de" / "README.md").read_text(encoding="utf-8") == committed
