"""Hostile checkpoints: loading never runs code from the file.

Every payload below creates a marker file when it runs. Each test proves two
things: with the default (safe) loading the marker is NOT created and the user
gets one clear error naming ``--trust-checkpoint``; and, as a positive control,
the same file loaded with ``trust=True`` DOES create the marker, so the payload
was live and the refusal is what stopped it.
"""

from __future__ import annotations

import argparse
import builtins
import io
import os
import pickle
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import golden
from fsmt_port import FSMTForConditionalGeneration, Translator
from fsmt_port.fairseq.checkpoint import load_fairseq_checkpoint, load_torch_file
from fsmt_port.fairseq.convert import main as convert_main
from fsmt_port.errors import CheckpointError, UnsafeCheckpointError
from fsmt_port.modeling.model import LEGACY_WEIGHTS_NAME, WEIGHTS_NAME
from fsmt_port.translation.cli import main as translate_main

MODEL = "tiny-en-de-joint"


class Payload:
    """Pickles as ``func(*args)``: what a malicious ``__reduce__`` does."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def payloads(marker: Path) -> dict:
    m = str(marker)
    return {
        "open": Payload(open, m, "w"),
        "os.system": Payload(os.system, f"touch {shlex.quote(m)}"),
        "exec": Payload(builtins.exec, f"open({m!r}, 'w').close()"),
        "eval": Payload(builtins.eval, f"open({m!r}, 'w').close()"),
        "os.makedirs": Payload(os.makedirs, m),
        "numpy-object-array": np.array([Payload(os.makedirs, m)], dtype=object),
    }


PAYLOAD_NAMES = list(payloads(Path("x")))
# Where a payload can hide in a fairseq checkpoint, and how the file is written.
PLACES = ["extra_state", "args", "model-tensor"]
FORMATS = {"zip": {}, "legacy-non-zip": {"_use_new_zipfile_serialization": False}}


def tiny_fairseq_checkpoint() -> dict:
    """The real tiny checkpoint's content (read safely)."""
    with torch.serialization.safe_globals([argparse.Namespace]):
        return torch.load(golden.checkpoint_path(MODEL), weights_only=True, map_location="cpu")


def fake_checkpoint(place: str, payload) -> dict:
    ckpt = {"model": {"encoder.embed_tokens.weight": torch.zeros(4, 2)},
            "args": argparse.Namespace(arch="transformer"), "extra_state": {"epoch": 1}}
    if place == "extra_state":
        ckpt["extra_state"] = {"val_loss": payload}
    elif place == "args":
        ckpt["args"] = payload
    else:
        ckpt["model"]["decoder.embed_tokens.weight"] = payload
    return ckpt


def assert_refused(err: BaseException, path: Path) -> None:
    text = str(err)
    assert isinstance(err, UnsafeCheckpointError)
    assert str(path) in text and "--trust-checkpoint" in text and "refused" in text
    assert "\n" not in text and "Traceback" not in text


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_code_in_a_checkpoint_never_runs(tmp_path, name, place, fmt):
    marker = tmp_path / "PWNED"
    path = tmp_path / "model1.pt"
    torch.save(fake_checkpoint(place, payloads(marker)[name]), path, **FORMATS[fmt])
    assert not marker.exists()  # saving does not run it

    with pytest.raises(UnsafeCheckpointError) as info:
        load_fairseq_checkpoint(path)
    assert_refused(info.value, path)
    assert not marker.exists(), "the payload ran during a safe load"

    # Positive control: the escape hatch really unpickles, so the payload was live.
    try:
        load_torch_file(path, trust=True)
    except CheckpointError:
        pass
    assert marker.exists(), "control failed: this payload would not have run anyway"


def test_the_refusal_names_what_the_pickle_asked_for(tmp_path):
    marker = tmp_path / "PWNED"
    for fmt, kwargs in FORMATS.items():
        path = tmp_path / f"{fmt}.pt"
        torch.save(fake_checkpoint("args", payloads(marker)["os.system"]), path, **kwargs)
        with pytest.raises(UnsafeCheckpointError, match="posix.system|nt.system"):
            load_torch_file(path)
    path = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), path)  # a whole pickled module: legitimate-looking, still code
    with pytest.raises(UnsafeCheckpointError, match="torch.nn.modules.linear.Linear"):
        load_torch_file(path)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol 4")
def test_a_raw_pickle_and_a_protocol_4_file_are_refused(tmp_path):
    marker = tmp_path / "PWNED"
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(payloads(marker)["os.system"], protocol=0))
    with pytest.raises(UnsafeCheckpointError) as info:
        load_torch_file(raw)
    assert_refused(info.value, raw)
    # torch's safe unpickler cannot check protocol-4 framing: refused, with that reason.
    proto4 = tmp_path / "p4.pt"
    torch.save(fake_checkpoint("extra_state", payloads(marker)["exec"]), proto4, pickle_protocol=4)
    with pytest.raises(UnsafeCheckpointError, match="cannot check") as info:
        load_torch_file(proto4)
    assert_refused(info.value, proto4)
    assert not marker.exists()


def test_benign_allow_listed_content_still_loads(tmp_path):
    """The allow-list is not 'refuse everything': fairseq's Namespace, numpy scalars, OrderedDict load."""
    path = tmp_path / "ok.pt"
    ckpt = fake_checkpoint("extra_state", np.float64(1.5))
    ckpt["extra_state"]["order"] = __import__("collections").OrderedDict(a=1)
    torch.save(ckpt, path)
    loaded = load_torch_file(path)
    assert loaded["args"].arch == "transformer" and float(loaded["extra_state"]["val_loss"]) == 1.5


# --- through the converter CLI --------------------------------------------------------------------

@pytest.fixture
def hostile_archive(tmp_path):
    """A copy of the tiny fairseq archive whose real checkpoint carries a payload in extra_state."""
    folder = tmp_path / "archive"
    folder.mkdir()
    for item in golden.model_dir(MODEL).iterdir():
        if item.name.startswith("dict.") or item.name == "bpecodes":
            shutil.copy(item, folder / item.name)
    marker = tmp_path / "PWNED"
    ckpt = tiny_fairseq_checkpoint()
    ckpt["extra_state"] = {"val_loss": Payload(open, str(marker), "w")}
    torch.save(ckpt, folder / "model1.pt")
    return folder, marker


def run_convert(capsys, archive: Path, out: Path, *extra: str) -> tuple[int, str]:
    code = convert_main(["--fsmt-path", str(archive / "model1.pt"), "--output-dir", str(out),
                         "--src-lang", "en", "--tgt-lang", "de", *extra])
    return code, capsys.readouterr().err.strip()


def test_convert_refuses_a_hostile_checkpoint_and_writes_nothing(capsys, tmp_path, hostile_archive):
    archive, marker = hostile_archive
    out = tmp_path / "out"
    code, err = run_convert(capsys, archive, out)
    assert code == 2 and err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert "io.open" in err and "--trust-checkpoint" in err
    assert not marker.exists() and not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp")]


def test_trust_checkpoint_is_the_escape_hatch(capsys, tmp_path, hostile_archive, converted):
    archive, marker = hostile_archive
    out = tmp_path / "out"
    code, _ = run_convert(capsys, archive, out, "--trust-checkpoint")
    assert code == 0 and marker.exists()  # the documented consequence of trusting a file
    # Same weights as the clean conversion: the payload sat in training-only state we drop.
    a, b = load_file(str(out / WEIGHTS_NAME)), load_file(str(converted(MODEL) / WEIGHTS_NAME))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _is_pickle_or_torch_zip(data: bytes) -> bool:
    return data[:1] == b"\x80" or data[:2] == b"PK"


@pytest.mark.parametrize("name", golden.ALL_MODELS)
def test_converted_folders_hold_no_pickle(converted, name):
    out = converted(name)
    for path in out.iterdir():
        data = path.read_bytes()
        assert not _is_pickle_or_torch_zip(data), path
        assert path.suffix in {".json", ".txt", ".safetensors"}, path
    header_len = int.from_bytes((out / WEIGHTS_NAME).read_bytes()[:8], "little")
    header = (out / WEIGHTS_NAME).read_bytes()[8: 8 + header_len]
    assert header.startswith(b"{") and b'"format":"pt"' in header  # safetensors, not pickle


# --- a transformers / hub folder with only pytorch_model.bin ----------------------------------------

def hub_folder(src: Path, dst: Path, state: dict | object) -> Path:
    """A transformers-style folder: tokenizer + config files, weights as pytorch_model.bin."""
    dst.mkdir()
    for item in src.iterdir():
        if item.name != WEIGHTS_NAME:
            shutil.copy(item, dst / item.name)
    torch.save(state, dst / LEGACY_WEIGHTS_NAME)
    return dst


def test_pytorch_model_bin_folder_loads_safely_and_translates_the_same(converted, tmp_path):
    src = converted(MODEL)
    folder = hub_folder(src, tmp_path / "hub", load_file(str(src / WEIGHTS_NAME)))
    lines = ["A man in an orange hat starring at something.", ""]
    ours = Translator.from_pretrained(src).translate(lines, num_beams=2, max_len_b=20)
    theirs = Translator.from_pretrained(folder).translate(lines, num_beams=2, max_len_b=20)
    assert [r.to_json() for r in ours] == [r.to_json() for r in theirs]


@pytest.mark.slow
def test_a_state_dict_saved_from_transformers_fsmt_loads(converted, tmp_path):
    """What hub FSMT repos ship: ``torch.save(transformers_model.state_dict())`` (tied + positions)."""
    transformers = pytest.importorskip("transformers")
    src = converted(MODEL)
    hf = transformers.FSMTForConditionalGeneration.from_pretrained(src)
    folder = hub_folder(src, tmp_path / "hub", hf.state_dict())
    model = FSMTForConditionalGeneration.from_pretrained(folder)
    reference = FSMTForConditionalGeneration.from_pretrained(src)
    for (k, a), (_, b) in zip(model.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(a, b), k


def test_hostile_pytorch_model_bin_is_refused(converted, tmp_path, capsys):
    src = converted(MODEL)
    marker = tmp_path / "PWNED"
    state = dict(load_file(str(src / WEIGHTS_NAME)))
    state["model.encoder.embed_tokens.weight"] = Payload(builtins.eval, f"open({str(marker)!r}, 'w').close()")
    folder = hub_folder(src, tmp_path / "hub", state)
    with pytest.raises(UnsafeCheckpointError) as info:
        FSMTForConditionalGeneration.from_pretrained(folder)
    assert_refused(info.value, folder / LEGACY_WEIGHTS_NAME)
    assert not marker.exists()

    source = tmp_path / "in.txt"
    source.write_text("Hello world.\n", encoding="utf-8")
    code = translate_main([str(folder), "--input", str(source), "--output", str(tmp_path / "out.txt"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "--trust-checkpoint" in err and "\n" not in err
    assert not marker.exists() and not (tmp_path / "out.txt").exists()

    # Positive control: the Python API's trust_checkpoint=True does unpickle it.
    with pytest.raises(CheckpointError):  # the payload returns None, not a tensor
        FSMTForConditionalGeneration.from_pretrained(folder, trust_checkpoint=True)
    assert marker.exists()


def test_every_loading_entry_point_offers_the_trust_checkpoint_the_hint_names(converted, tmp_path, capsys):
    """The refusal says "pass --trust-checkpoint (in Python: trust_checkpoint=True)": each of fsmt-translate,
    run_eval, run_eval_search and Translator.from_pretrained accepts it and hands it to the loader (the
    payload then runs: the marker appears; it returns None, so loading still fails cleanly)."""
    from fsmt_port.evaluation.run_eval import main as run_eval_main
    from fsmt_port.evaluation.run_eval_search import main as run_eval_search_main

    src = converted(MODEL)
    marker = tmp_path / "PWNED"
    state = dict(load_file(str(src / WEIGHTS_NAME)))
    state["model.encoder.embed_tokens.weight"] = Payload(builtins.eval, f"open({str(marker)!r}, 'w').close()")
    folder = hub_folder(src, tmp_path / "hub", state)
    text = tmp_path / "in.txt"
    text.write_text("Hello world.\n", encoding="utf-8")
    data = [str(folder), str(text), str(tmp_path / "hyp.txt"), "--reference-path", str(text), "--quiet"]
    commands = {
        "fsmt-translate": lambda *extra: translate_main([str(folder), "--input", str(text), "--quiet", *extra]),
        "run_eval": lambda *extra: run_eval_main([*data, *extra]),
        "run_eval_search": lambda *extra: run_eval_search_main([*data, "--search", "num_beams=1:2", *extra]),
    }
    for name, command in commands.items():
        assert command() == 2, name
        assert "--trust-checkpoint" in capsys.readouterr().err and not marker.exists(), name
        assert command("--trust-checkpoint") == 2, name
        err = capsys.readouterr().err
        assert marker.exists() and "not a state_dict of tensors" in err, (name, err)
        marker.unlink()
    with pytest.raises(UnsafeCheckpointError, match=r"trust_checkpoint=True"):
        Translator.from_pretrained(folder)
    with pytest.raises(CheckpointError, match="not a state_dict of tensors"):
        Translator.from_pretrained(folder, trust_checkpoint=True)
    assert marker.exists()


def test_truncated_pytorch_model_bin_is_a_clear_error(converted, tmp_path):
    src = converted(MODEL)
    buffer = io.BytesIO()
    torch.save(load_file(str(src / WEIGHTS_NAME)), buffer)
    folder = hub_folder(src, tmp_path / "hub", {})
    (folder / LEGACY_WEIGHTS_NAME).write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 3])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        FSMTForConditionalGeneration.from_pretrained(folder)
