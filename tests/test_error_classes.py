"""One error class per kind of fault, whichever module meets it (README "Errors").

A missing file is ``MissingFileError`` (also a ``FileNotFoundError``) in the converter,
the configs, the model, the checkpoint reader, the dictionary/BPE readers, the tokenizer
and the text reader; running out of memory is ``OutOfMemoryError``, not a config problem.
"""

from __future__ import annotations

import shutil

import pytest

import golden
from fsmt_port import FSMTConfig, FSMTForConditionalGeneration, FSMTTokenizer
from fsmt_port.errors import ConfigError, MissingFileError, OutOfMemoryError
from fsmt_port.evaluation.oom import generate_with_oom_retry
from fsmt_port.fairseq.checkpoint import load_fairseq_checkpoint
from fsmt_port.fairseq.convert import convert
from fsmt_port.fairseq.dictionary import FairseqDictionary
from fsmt_port.files import read_lines
from fsmt_port.generation.config import GenerationConfig
from fsmt_port.tokenization.bpe import read_bpecodes, read_merges

MODEL = "tiny-en-de-joint"


@pytest.fixture
def archive(tmp_path):
    folder = tmp_path / "archive"
    shutil.copytree(golden.checkpoint_path(MODEL).parent, folder)
    return folder


@pytest.fixture
def model_folder(converted, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(converted(MODEL), folder)
    return folder


def _convert(archive, tmp_path):
    src, tgt = golden.langs(MODEL)
    return convert(archive / golden.CHECKPOINT[MODEL], tmp_path / "out", src_lang=src, tgt_lang=tgt)


def test_a_missing_file_is_missing_file_error_everywhere(archive, model_folder, tmp_path):
    nowhere = tmp_path / "nowhere"
    cases = {
        "checkpoint": lambda: load_fairseq_checkpoint(nowhere / "model1.pt"),
        "fairseq dictionary": lambda: FairseqDictionary.load(nowhere / "dict.en.txt"),
        "bpecodes": lambda: read_bpecodes(nowhere / "bpecodes"),
        "merges.txt": lambda: read_merges(nowhere / "merges.txt"),
        "model folder": lambda: FSMTForConditionalGeneration.from_pretrained(nowhere),
        "config.json": lambda: FSMTConfig.from_pretrained(nowhere),
        "tokenizer folder": lambda: FSMTTokenizer.from_pretrained(nowhere),
        "input text": lambda: read_lines(nowhere / "in.txt"),
    }
    for what, call in cases.items():
        with pytest.raises(MissingFileError) as info:
            call()
        assert isinstance(info.value, FileNotFoundError), what
        assert "nowhere" in str(info.value), (what, str(info.value))

    (archive / "bpecodes").unlink()
    with pytest.raises(MissingFileError, match="bpecodes"):
        _convert(archive, tmp_path)
    (archive / "dict.de.txt").unlink()
    with pytest.raises(MissingFileError, match="dict.de.txt"):
        _convert(archive, tmp_path)

    (model_folder / "model.safetensors").unlink()
    with pytest.raises(MissingFileError, match="model.safetensors"):
        FSMTForConditionalGeneration.from_pretrained(model_folder)
    (model_folder / "vocab-tgt.json").unlink()
    with pytest.raises(MissingFileError, match="vocab-tgt.json"):
        FSMTTokenizer.from_pretrained(model_folder)


def test_out_of_memory_has_its_own_class():
    class Exhausted:
        """Every batch, even one sentence, runs out of memory."""

        def generate_ids(self, *args, **kwargs):
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 TB")

    with pytest.raises(OutOfMemoryError, match="out of memory translating a single sentence") as info:
        generate_with_oom_retry(Exhausted(), [[5, 2], [6, 2]], batch_size=2, max_tokens=None,
                                on_warning=lambda message: None)
    assert isinstance(info.value, MemoryError) and not isinstance(info.value, ConfigError)


def test_no_repeat_ngram_size_1_is_refused_with_the_reason(converted, tmp_path, capsys):
    """Size 1 bans the starting </s> itself, so no hypothesis could end (fairseq 0.10 fails there too)."""
    with pytest.raises(ConfigError, match="no_repeat_ngram_size=1 .*</s> bans </s> itself"):
        GenerationConfig(no_repeat_ngram_size=1)
    from fsmt_port.translation.cli import main

    source = tmp_path / "in.txt"
    source.write_text("Hello world.\n", encoding="utf-8")
    code = main([str(converted(MODEL)), "--input", str(source), "--no-repeat-ngram-size", "1", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err and "no_repeat_ngram_size=1" in err
    GenerationConfig(no_repeat_ngram_size=2)  # the smallest size that can work
