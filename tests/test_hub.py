"""Hub repo ids wherever a model folder is accepted, through huggingface_hub's real cache code, offline.

The cache is built in a temporary folder in huggingface_hub's own layout (``hub_cache.py``); hub failures are
provoked through the real client against a local HTTP server that answers like the hub does.
"""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hub_cache import add_snapshot, folder_files, hub_env, repo_folder, use_cache
from fsmt_port import FSMTForConditionalGeneration, FSMTTokenizer, Translator
from fsmt_port.errors import ConfigError, HubError, MissingFileError
from fsmt_port.hub import is_repo_id, resolve_model_dir
from fsmt_port.translation.cli import main as translate_main

TINY = "tiny-en-de-joint"
OURS = "fsmt-port/tiny-en-de"  # a folder written by our converter, pushed as is
THEIRS = "facebook/tiny-wmt19-style"  # transformers' layout: pytorch_model.bin, no generation_config.json
LINES = ["A dog runs in the snow.", "Two men are talking."]


@pytest.fixture(scope="module")
def cache(converted, tmp_path_factory):
    root = tmp_path_factory.mktemp("hub") / "hub"
    folder = converted(TINY)
    add_snapshot(root, OURS, folder_files(folder))
    v2 = folder_files(folder)
    config = json.loads(v2["generation_config.json"])
    config["num_beams"] = 2
    v2["generation_config.json"] = json.dumps(config).encode()
    add_snapshot(root, OURS, v2, ref="v2")
    theirs = folder_files(folder, skip=("model.safetensors", "generation_config.json"))
    bin_path = Path(str(root) + "-pytorch_model.bin")
    torch.save(load_file(str(folder / "model.safetensors")), bin_path)
    theirs["pytorch_model.bin"] = bin_path.read_bytes()
    add_snapshot(root, THEIRS, theirs)
    add_snapshot(root, "fsmt-port/no-weights", folder_files(folder, skip=("model.safetensors",)))
    return root


def _best(translator: Translator, **kwargs) -> list[str]:
    return [t.hypotheses[0].text for t in translator.translate(LINES, **kwargs)]


def test_repo_ids_and_local_paths_are_told_apart(tmp_path):
    assert is_repo_id("facebook/wmt19-en-de") and is_repo_id("allenai/wmt16-en-de-dist-12-1")
    assert not any(is_repo_id(x) for x in ("wmt19-en-de", "/abs/path", "./rel/x", "a/b/c", "../x", "a/.."))
    assert resolve_model_dir(tmp_path) == tmp_path  # an existing folder is used as it is
    with pytest.raises(MissingFileError, match="model folder not found, and not a hub repo id"):
        resolve_model_dir(tmp_path / "missing")


def test_model_tokenizer_and_translator_load_a_repo_id_from_the_hub_cache_offline(cache, converted, monkeypatch):
    use_cache(monkeypatch, cache)
    folder = converted(TINY)
    snapshot = resolve_model_dir(OURS)
    assert snapshot.parent.parent == repo_folder(cache, OURS) and (snapshot / "model.safetensors").is_symlink()

    tok = FSMTTokenizer.from_pretrained(OURS)
    model = FSMTForConditionalGeneration.from_pretrained(OURS)
    reference = FSMTForConditionalGeneration.from_pretrained(folder)
    batch = tok(LINES, return_tensors="pt")
    assert torch.equal(model.generate(**batch), reference.generate(**batch))
    assert _best(Translator.from_pretrained(OURS)) == _best(Translator.from_pretrained(folder))


def test_transformers_format_repo_loads_its_pytorch_model_bin_through_the_safe_loader(cache, converted,
                                                                                       monkeypatch):
    use_cache(monkeypatch, cache)
    snapshot = resolve_model_dir(THEIRS)
    assert (snapshot / "pytorch_model.bin").is_file() and not (snapshot / "model.safetensors").exists()
    ours = FSMTForConditionalGeneration.from_pretrained(converted(TINY))
    theirs = FSMTForConditionalGeneration.from_pretrained(THEIRS)
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values()))
    assert _best(Translator.from_pretrained(THEIRS), num_beams=5) == _best(Translator.from_pretrained(OURS))


def test_revision_picks_the_snapshot(cache, monkeypatch):
    use_cache(monkeypatch, cache)
    main_commit = (repo_folder(cache, OURS) / "refs" / "main").read_text()
    assert FSMTForConditionalGeneration.from_pretrained(OURS).generation_config.num_beams == 5
    assert FSMTForConditionalGeneration.from_pretrained(OURS, revision="v2").generation_config.num_beams == 2
    assert Translator.from_pretrained(OURS, revision="v2").generation_config.num_beams == 2
    assert resolve_model_dir(OURS, revision=main_commit).name == main_commit
    with pytest.raises(HubError, match=r"fsmt-port/tiny-en-de \(revision v9\): not in the local hub cache"):
        FSMTTokenizer.from_pretrained(OURS, revision="v9")


def test_offline_misses_are_one_clear_line(cache, monkeypatch, tmp_path, capsys):
    use_cache(monkeypatch, cache)
    with pytest.raises(HubError, match="not in the local hub cache and downloads are off"):
        FSMTForConditionalGeneration.from_pretrained("fsmt-port/absent")
    with pytest.raises(HubError, match="the cached snapshot lacks model.safetensors or pytorch_model.bin"):
        Translator.from_pretrained("fsmt-port/no-weights")
    source = tmp_path / "in.en"
    source.write_text("Hello.\n", encoding="utf-8")
    assert translate_main(["fsmt-port/absent", "--input", str(source), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: fsmt-port/absent: not in the local hub cache")


def test_local_files_only_never_touches_the_network(cache, monkeypatch):
    use_cache(monkeypatch, cache, offline=False, endpoint=f"http://127.0.0.1:{_closed_port()}")
    assert Translator.from_pretrained(OURS, local_files_only=True).generation_config.num_beams == 5
    with pytest.raises(HubError, match="not in the local hub cache and downloads are off"):
        FSMTTokenizer.from_pretrained("fsmt-port/absent", local_files_only=True)


class _HubLike(http.server.BaseHTTPRequestHandler):
    """Answers every request with the status and ``X-Error-Code`` the real hub sends for one failure."""
    status, code = 404, "RepoNotFound"

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(self.status)
        if self.code:
            self.send_header("X-Error-Code", self.code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error": "simulated"}')

    do_HEAD = do_GET

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("status, code, expected", [
    (404, "RepoNotFound", "no such repo on the hub"),
    (401, None, "no such repo on the hub"),  # what the hub answers for private repos without a token
    (403, "GatedRepo", "the repo is gated; accept its terms"),
    (404, "RevisionNotFound", "revision 'v9' not found on the hub"),
    (500, None, "the hub cannot be reached and the repo is not in the local hub cache"),
])
def test_hub_failures_are_one_clear_line(cache, monkeypatch, status, code, expected):
    handler = type("Handler", (_HubLike,), {"status": status, "code": code})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        use_cache(monkeypatch, cache, offline=False, endpoint=f"http://127.0.0.1:{server.server_port}")
        with pytest.raises(HubError) as info:
            FSMTForConditionalGeneration.from_pretrained("someone/missing-model", revision="v9")
    finally:
        server.shutdown()
        server.server_close()
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_no_network_is_one_clear_line(cache, monkeypatch):
    use_cache(monkeypatch, cache, offline=False, endpoint=f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(HubError, match="the hub cannot be reached and the repo is not in the local hub cache"):
        FSMTTokenizer.from_pretrained("someone/missing-model")


def test_cli_loads_a_repo_id_with_only_the_environment_set(cache, converted, tmp_path):
    """A fresh process: HF_HUB_CACHE and HF_HUB_OFFLINE=1 in the environment, nothing else."""
    source = tmp_path / "in.en"
    source.write_text("".join(line + "\n" for line in LINES), encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "fsmt_port.translate", OURS, "--revision", "v2", "--input",
                          str(source), "--quiet"], env=hub_env(cache), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == _best(Translator.from_pretrained(converted(TINY)), num_beams=2)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_export_ct2_and_run_eval_search_take_a_repo_id(cache, monkeypatch, tmp_path, capsys):
    pytest.importorskip("ctranslate2")
    from fsmt_port.evaluation.run_eval_search import main as search_main
    from fsmt_port.export.ct2 import main as export_main

    use_cache(monkeypatch, cache)
    assert export_main([OURS, str(tmp_path / "ct2"), "--revision", "v2"]) == 0
    info = json.loads((tmp_path / "ct2" / "fsmt_port_export.json").read_text())
    assert info["exported_from"] == OURS and (tmp_path / "ct2" / "model.bin").is_file()

    source, reference = tmp_path / "dev.en", tmp_path / "dev.de"
    source.write_text("A dog.\n", encoding="utf-8")
    reference.write_text("Ein Hund.\n", encoding="utf-8")
    argv = [OURS, str(source), str(tmp_path / "out.de"), "--reference_path", str(reference), "--quiet",
            "--search", "num_beams=1:2"]
    assert search_main([*argv, "--update-config"]) == 2  # the shared cache snapshot is not the user's to edit
    assert "is a hub repo id (its cached snapshot is shared)" in capsys.readouterr().err
    assert search_main(argv) == 0 and (tmp_path / "out.de").is_file()
