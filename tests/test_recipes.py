"""convert/ recipes on tiny fixtures dressed up as the real archives; eval/ scripts on a tiny model."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import golden
from fsmt_port.generation.config import GenerationConfig

REPO = Path(__file__).resolve().parents[1]


def load_recipes():
    """convert/recipes.py is a script, not a package module: load it by path."""
    spec = importlib.util.spec_from_file_location("fsmt_convert_recipes", REPO / "convert" / "recipes.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


recipes = load_recipes()


def fake_archive(name: str, root: Path, with_files: bool = True) -> Path:
    """A tiny fixture laid out like the recipe's real archive (names, checkpoint, languages).

    en/de/ru pairs borrow tiny-en-de-joint (joined dictionary) or tiny-en-fr-separate (fr plays ru)."""
    recipe = recipes.RECIPES[name]
    folder = root / recipe.archive
    folder.mkdir(parents=True)
    if "ru" in (recipe.src, recipe.tgt):
        fixture = golden.model_dir("tiny-en-fr-separate")
        dicts = {recipe.src: fixture / "dict.en.txt", recipe.tgt: fixture / "dict.fr.txt"}  # shapes must match
    else:
        fixture = golden.model_dir("tiny-en-de-joint")
        dicts = {recipe.src: fixture / "dict.en.txt", recipe.tgt: fixture / "dict.de.txt"}
    shutil.copy(fixture / "model1.pt", folder / recipe.checkpoint)
    files_dir = folder if with_files else root / recipe.companion / "data-bin"
    files_dir.mkdir(parents=True, exist_ok=True)
    for lang, path in dicts.items():
        shutil.copy(path, files_dir / f"dict.{lang}.txt")
    shutil.copy(fixture / "bpecodes", (folder if with_files else root / recipe.companion) / "bpecodes")
    return folder


@pytest.mark.parametrize("name", list(recipes.RECIPES))
def test_each_recipe_converts_its_archive_and_sets_the_length_penalty(name, tmp_path):
    archive = fake_archive(name, tmp_path / "data")
    out = tmp_path / name
    assert recipes.main([name, str(archive), str(out)]) == 0
    wanted = recipes.RECIPES[name].length_penalty
    assert json.loads((out / "generation_config.json").read_text())["length_penalty"] == wanted
    assert GenerationConfig.from_pretrained(out).length_penalty == wanted
    recipe = recipes.RECIPES[name]
    assert json.loads((out / "config.json").read_text())["langs"] == [recipe.src, recipe.tgt]


def test_allenai_archives_find_their_companion_next_to_them_from_the_data_folder(tmp_path):
    fake_archive("wmt16-en-de-dist-6-1", tmp_path / "data", with_files=False)
    out = tmp_path / "out"
    # The parent folder is enough: the archive and its companion are found by their usual names.
    assert recipes.main(["wmt16-en-de-dist-6-1", str(tmp_path / "data"), str(out)]) == 0
    assert GenerationConfig.from_pretrained(out).length_penalty == 0.6


def test_a_missing_companion_is_one_clear_line(tmp_path, capsys):
    archive = fake_archive("wmt19-de-en-6-6-big", tmp_path / "data", with_files=False)
    shutil.rmtree(tmp_path / "data" / "wmt19.de-en")
    assert recipes.main(["wmt19-de-en-6-6-big", str(archive), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dict.de.txt, dict.en.txt, bpecodes not found" in err[0] and "wmt19.de-en" in err[0]


def test_a_folder_without_the_checkpoint_is_one_clear_line(tmp_path, capsys):
    assert recipes.main(["wmt19-en-de", str(tmp_path), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no model4.pt" in err and "wmt19.en-de.joined-dict.ensemble" in err


def test_the_cli_converts_a_tarball(tmp_path):
    archive = fake_archive("wmt19-en-de", tmp_path / "data")
    tarball = tmp_path / "wmt19.en-de.joined-dict.ensemble.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(archive, arcname=archive.name)
    out = tmp_path / "wmt19-en-de"
    done = subprocess.run([sys.executable, str(REPO / "convert" / "recipes.py"), "wmt19-en-de", str(tarball),
                           str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "length_penalty 1.0" in done.stderr and GenerationConfig.from_pretrained(out).length_penalty == 1.0


def test_eval_and_search_scripts_run_on_a_converted_model(converted, tmp_path):
    src, ref = tmp_path / "test.en", tmp_path / "test.de"
    src.write_text("".join(x + "\n" for x in golden.flickr_lines("en")[:6]), encoding="utf-8")
    ref.write_text("".join(x + "\n" for x in golden.flickr_lines("de")[:6]), encoding="utf-8")
    model = converted("tiny-en-de-joint")
    env = {**os.environ, "PYTHON": sys.executable, "OUT_DIR": str(tmp_path / "eval_out"),
           "SEARCH": "length_penalty=0.6:1.0"}
    for script in ("eval_wmt19.sh", "search_wmt19.sh"):
        done = subprocess.run(["bash", str(REPO / "eval" / script), str(model), str(src), str(ref), "--threads", "1",
                               "--quiet"], capture_output=True, text=True, env=env, timeout=180)
        assert done.returncode == 0, done.stderr
    out = tmp_path / "eval_out" / model.name
    assert json.loads((out / "test.en.score.json").read_text())["n_obs"] == 6
    assert len(json.loads((out / "test.en.search" / "results.json").read_text())["results"]) == 2


@pytest.mark.parametrize("name", ["wmt19-lm-de", "wmt19-lm-en"])
def test_language_model_recipes_convert_a_transformer_lm_archive(name, tmp_path):
    """The WMT19 LM archives (model.pt, dict.txt, bpecodes), played by the small German LM fixture."""
    recipe = recipes.LM_RECIPES[name]
    folder = tmp_path / "data" / recipe.archive
    folder.mkdir(parents=True)
    for file in ("model.pt", "dict.txt", "bpecodes"):
        shutil.copy(golden.FIXTURES / "small-en-de-lm" / file, folder / file)
    out = tmp_path / name
    assert recipes.main([name, str(tmp_path / "data"), str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "fsmt_port_lm" and config["tokenizer"] == "moses" and config["lang"] == "en"
    from fsmt_port import LanguageModel

    lm = LanguageModel.from_pretrained(out)
    assert lm.score("Ein Mann.").tokens == lm.tokenizer.tgt_dict.encode_line("Ein Mann .")[:-1]  # moses splits "."


def test_every_noisy_channel_role_has_a_recipe():
    for direction, roles in recipes.NOISY_CHANNEL.items():
        assert direction in recipes.RECIPES and roles["channel"] in recipes.RECIPES
        assert roles["lm"] in recipes.LM_RECIPES
        reverse = recipes.RECIPES[roles["channel"]]
        assert (reverse.src, reverse.tgt) == (recipes.RECIPES[direction].tgt, recipes.RECIPES[direction].src)
        assert recipes.LM_RECIPES[roles["lm"]].lang == recipes.RECIPES[direction].tgt
