"""run_eval_search: a sorted table with one row per combination, resumable cache, config update, plot."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import sacrebleu

import golden
from fsmt_port.errors import ConfigError
from fsmt_port.evaluation.cache import TranslationCache, base_key_fields
from fsmt_port.evaluation.grid import expand, parse_search
from fsmt_port.generation.config import GenerationConfig
from fsmt_port.evaluation.run_eval_search import main
from fsmt_port.translation.translator import Translator

TINY = "tiny-en-de-joint"
N_LINES = 12
SEARCH = "num_beams=1:3 length_penalty=0.6:1.1"


@pytest.fixture
def setup(converted, tmp_path):
    """A private copy of the tiny model (--update-config writes into it) and a 12-line test set."""
    model = tmp_path / "model"
    shutil.copytree(converted(TINY), model)
    src, ref = tmp_path / "dev.en", tmp_path / "dev.de"
    src.write_text("".join(x + "\n" for x in golden.flickr_lines("en")[:N_LINES]), encoding="utf-8")
    ref.write_text("".join(x + "\n" for x in golden.flickr_lines("de")[:N_LINES]), encoding="utf-8")
    return model, src, ref, tmp_path


def search(model, src, ref, out, *extra, search_text=SEARCH) -> int:
    return main([str(model), str(src), str(out), "--reference-path", str(ref), "--search", search_text,
                 "--threads", "1", "--quiet", *extra])


def parse_table(stdout: str) -> tuple[list[str], list[list[str]]]:
    """transformers' run_eval_search table: ``bleu | name | ...``, a dashes line, then the rows."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("bleu "))
    rows = []
    for line in lines[start + 2:]:
        if " | " not in line:
            break
        rows.append([c.strip() for c in line.split(" | ")])
    return [c.strip() for c in lines[start].split(" | ")], rows


def count_translations(monkeypatch) -> list[str]:
    """Record the description of every combination that really gets translated."""
    import fsmt_port.evaluation.run_eval_search as module

    calls: list[str] = []
    real = module.translate_corpus

    def counting(*args, **kwargs):
        calls.append(kwargs["desc"])
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "translate_corpus", counting)
    return calls


def test_prints_a_sorted_table_with_one_row_per_combination(setup, capsys):
    model, src, ref, tmp = setup
    out = tmp / "best.de"
    assert search(model, src, ref, out, search_text=f"{SEARCH} early_stopping=true") == 0
    stdout = capsys.readouterr().out
    header, rows = parse_table(stdout)
    assert header == ["bleu", "num_beams", "length_penalty", "early_stopping"]
    assert len(rows) == 4
    bleus = [float(r[0]) for r in rows]
    assert bleus == sorted(bleus, reverse=True)
    assert {(r[1], r[2]) for r in rows} == {("1", "0.6"), ("1", "1.1"), ("3", "0.6"), ("3", "1.1")}
    assert all(r[3] == "true" for r in rows)
    assert f"best: num_beams={rows[0][1]} length_penalty={rows[0][2]} early_stopping=true" in stdout
    assert f"as options: --num-beams {rows[0][1]} --length-penalty {rows[0][2]}" in stdout

    # Every row's BLEU is what an independent translation + sacrebleu gives; OUTPUT is the best one's.
    results = json.loads((tmp / "best.de.search" / "results.json").read_text())
    lines, refs = golden.flickr_lines("en")[:N_LINES], golden.flickr_lines("de")[:N_LINES]
    translator = Translator.from_pretrained(model)
    for row in results["results"]:
        hyps = [t.hypotheses[0].text for t in translator.translate(lines, num_beams=row["num_beams"],
                                                                   length_penalty=row["length_penalty"])]
        assert row["bleu"] == pytest.approx(sacrebleu.BLEU().corpus_score(hyps, [refs]).score, abs=1e-9)
        if row is results["results"][0]:
            assert out.read_text(encoding="utf-8") == "".join(h + "\n" for h in hyps)
    assert results["best"]["bleu"] == max(r["bleu"] for r in results["results"])
    assert results["grid"] == {"num_beams": [1, 3], "length_penalty": [0.6, 1.1], "early_stopping": [True]}
    with open(tmp / "best.de.search" / "results.csv", newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 4 and set(GenerationConfig().to_dict()) <= set(table[0]) and "bleu" in table[0]


def test_an_interrupted_search_resumes_without_redoing_finished_combinations(setup, monkeypatch, capsys):
    model, src, ref, tmp = setup
    out = tmp / "best.de"
    import fsmt_port.evaluation.run_eval_search as module

    real = module.translate_corpus
    done: list[str] = []

    def interrupted_after_two(*args, **kwargs):
        if len(done) == 2:
            raise KeyboardInterrupt
        done.append(kwargs["desc"])
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "translate_corpus", interrupted_after_two)
    assert search(model, src, ref, out) == 130
    assert len(list((tmp / "best.de.search" / "cache").glob("*.json"))) == 2 and not out.exists()

    monkeypatch.setattr(module, "translate_corpus", real)
    calls = count_translations(monkeypatch)
    capsys.readouterr()
    assert search(model, src, ref, out) == 0
    assert len(calls) == 2 and "4 combinations, 2 cached, 2 to translate" in capsys.readouterr().err
    assert [c.split("] ")[1] for c in calls] == ["num_beams=3 length_penalty=0.6", "num_beams=3 length_penalty=1.1"]
    resumed = json.loads((tmp / "best.de.search" / "results.json").read_text())
    assert sum(r["cached"] for r in resumed["results"]) == 2

    # A third run translates nothing and gives the same table as a fresh search in another folder.
    calls.clear()
    assert search(model, src, ref, out) == 0 and calls == []
    assert search(model, src, ref, tmp / "fresh.de") == 0 and len(calls) == 4
    fresh = json.loads((tmp / "fresh.de.search" / "results.json").read_text())
    assert [(r["num_beams"], r["length_penalty"], r["bleu"]) for r in fresh["results"]] == \
        [(r["num_beams"], r["length_penalty"], r["bleu"]) for r in resumed["results"]]
    assert (tmp / "fresh.de").read_bytes() == out.read_bytes()


def test_the_cache_key_follows_the_data_the_model_and_the_arguments(setup):
    model, src, ref, tmp = setup
    reading, runtime = {"encoding_errors": "strict"}, {"dtype": "fp32"}
    base = base_key_fields([str(model)], src, reading, runtime)
    cache = TranslationCache(tmp / "cache")
    generation = GenerationConfig().to_dict()
    cache.put({**base, "generation": generation}, ["x"] * N_LINES, 1.0)
    assert cache.get({**base, "generation": generation}, N_LINES)["hypotheses"] == ["x"] * N_LINES
    assert cache.get({**base, "generation": {**generation, "num_beams": 4}}, N_LINES) is None
    src.write_text("Something else.\n" * N_LINES, encoding="utf-8")
    assert cache.get({**base_key_fields([str(model)], src, reading, runtime), "generation": generation},
                     N_LINES) is None
    (model / "model.safetensors").write_bytes((model / "model.safetensors").read_bytes() + b" ")
    assert base_key_fields([str(model)], src, reading, runtime)["models"] != base["models"]


def test_update_config_writes_the_best_values_with_provenance(setup, capsys):
    model, src, ref, tmp = setup
    before = json.loads((model / "generation_config.json").read_text())
    assert search(model, src, ref, tmp / "best.de", "--update-config") == 0
    results = json.loads((tmp / "best.de.search" / "results.json").read_text())
    after = json.loads((model / "generation_config.json").read_text())
    best = results["best"]
    assert (after["num_beams"], after["length_penalty"]) == (best["num_beams"], best["length_penalty"])
    assert after["eos_token_id"] == before["eos_token_id"] and after["max_length"] == after["max_len_b"]
    provenance = after["fsmt_port_provenance"]
    assert provenance["search"] == SEARCH and provenance["data_file"] == str(src.resolve())
    assert provenance["bleu"] == pytest.approx(best["bleu"], abs=1e-4) and provenance["date"]
    assert provenance["previous"] == before["fsmt_port_provenance"]
    loaded = GenerationConfig.from_pretrained(model)
    assert (loaded.num_beams, loaded.length_penalty) == (best["num_beams"], best["length_penalty"])


def test_plot_writes_a_png(setup):
    model, src, ref, tmp = setup
    assert search(model, src, ref, tmp / "best.de", "--plot", search_text="num_beams=1:2") == 0
    assert (tmp / "best.de.search" / "bleu_vs_args.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_is_a_clear_error_before_any_work(setup, monkeypatch, capsys):
    model, src, ref, tmp = setup
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    calls = count_translations(monkeypatch)
    assert search(model, src, ref, tmp / "best.de", "--plot") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--plot needs matplotlib" in err[0] and calls == []


def test_an_argument_cannot_be_both_searched_and_fixed(setup, capsys):
    model, src, ref, tmp = setup
    assert search(model, src, ref, tmp / "best.de", "--num-beams", "4") == 2
    assert "num_beams is both searched and fixed" in capsys.readouterr().err


def test_an_invalid_combination_fails_before_translating(setup, monkeypatch, capsys):
    model, src, ref, tmp = setup
    calls = count_translations(monkeypatch)
    assert search(model, src, ref, tmp / "best.de", search_text="num_beams=2:1 num_return_sequences=2") == 2
    assert "num_return_sequences must be between 1 and num_beams" in capsys.readouterr().err and calls == []


# --- the grid --------------------------------------------------------------------------------------

def test_search_strings_parse_to_typed_values_in_order():
    grid = parse_search("num_beams=5:8 lenpen=0.6:1.1 early-stopping=true:false max_len_b=50:50")
    assert grid == {"num_beams": [5, 8], "length_penalty": [0.6, 1.1], "early_stopping": [True, False],
                    "max_len_b": [50]}
    combos = expand(grid)
    assert len(combos) == 8 and combos[0] == {"num_beams": 5, "length_penalty": 0.6, "early_stopping": True,
                                               "max_len_b": 50}
    assert combos[1]["early_stopping"] is False  # the last name varies fastest


@pytest.mark.parametrize("text,message", [
    ("", "--search is empty"),
    ("beams=5", "unknown generation argument 'beams'"),
    ("num_beams=five", "'five' is not a valid int"),
    ("early_stopping=maybe", "'maybe' is not true or false"),
    ("num_beams", "must look like name=value1:value2"),
    ("num_beams=:", "has no values"),
    ("num_beams=4 beam=5", "num_beams is given twice"),
])
def test_bad_search_strings_are_clear_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_search(text)
