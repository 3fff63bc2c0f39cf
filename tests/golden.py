"""Paths and loaders for the fairseq golden fixtures in tests/fixtures/.

The fixtures are made by ``tests/fixtures/make_fixtures.py`` from the golden
folder (see its README for the schema). Loaded goldens are cached and shared
between tests: treat them as read-only.
"""

from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"

TINY_MODELS = (
    "tiny-en-de-joint",
    "tiny-en-de-joint-legacy",
    "tiny-en-fr-separate",
    "tiny-en-fr-separate-legacy",
    "tiny-en-cs-variant",
)
SMALL_MODEL = "small-en-de"
ALL_MODELS = TINY_MODELS + (SMALL_MODEL,)
# The checkpoint each model's single-model goldens were made with.
CHECKPOINT = {**{name: "model1.pt" for name in TINY_MODELS}, SMALL_MODEL: "model4.pt"}
SAME_AS_KEY = "sections_identical_to"


def model_dir(name: str) -> Path:
    """Fixture folder of one model (a fairseq-archive-like folder)."""
    if name not in ALL_MODELS:
        raise KeyError(f"unknown fixture model {name!r}; expected one of {ALL_MODELS}")
    path = FIXTURES / name
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is missing; run `python tests/fixtures/make_fixtures.py`")
    return path


def _read_json_gz(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; run `python tests/fixtures/make_fixtures.py`")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


@functools.lru_cache(maxsize=None)
def load_expected(name: str) -> dict:
    """The trimmed ``expected.json`` of a model (legacy fixtures completed from their modern twin)."""
    expected = _read_json_gz(model_dir(name) / "expected.json.gz")
    twin = expected.pop(SAME_AS_KEY, None)
    if twin is not None:
        expected = {**load_expected(twin), **expected}
    return expected


@functools.lru_cache(maxsize=None)
def load_norepeat_fixed(name: str) -> dict | None:
    """``expected_norepeat_fixed.json`` where the golden has one, else None."""
    path = model_dir(name) / "expected_norepeat_fixed.json.gz"
    return _read_json_gz(path) if path.is_file() else None


def langs(name: str) -> tuple[str, str]:
    meta = load_expected(name)["meta"]
    return meta["source_lang"], meta["target_lang"]


def dict_paths(name: str) -> tuple[Path, Path]:
    """(source dict, target dict) file paths."""
    src, tgt = langs(name)
    return model_dir(name) / f"dict.{src}.txt", model_dir(name) / f"dict.{tgt}.txt"


def bpecodes_path(name: str) -> Path:
    return model_dir(name) / "bpecodes"


def checkpoint_path(name: str, file: str | None = None) -> Path:
    """Path of ``file`` (default: the checkpoint the single-model goldens used)."""
    return model_dir(name) / (file or CHECKPOINT[name])


def sentence_texts(name: str) -> dict[int, str]:
    """Golden sentence index -> source text."""
    return {s["index"]: s["text"] for s in load_expected(name)["sentences"]}


def flickr_lines(lang: str) -> list[str]:
    """All lines of ``test_2016_flickr.<lang>`` (en and de are in the fixtures)."""
    with open(FIXTURES / f"test_2016_flickr.{lang}", encoding="utf-8", newline="\n") as handle:
        lines = handle.read().split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def tricky_inputs() -> list[str]:
    with open(FIXTURES / "tricky_visible.json", encoding="utf-8") as handle:
        return json.load(handle)


EXT_MODELS = ("tiny-en-de-joint", "tiny-en-cs-variant", SMALL_MODEL)


@functools.lru_cache(maxsize=None)
def load_ext(name: str) -> dict:
    """``expected_ext.json``: fairseq's other inference modes (golden README, "Extended inference goldens")."""
    return _read_json_gz(model_dir(name) / "expected_ext.json.gz")
