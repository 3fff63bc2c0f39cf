"""A huggingface_hub cache in a temporary folder, in the exact layout ``snapshot_download`` writes.

``models--ORG--NAME/blobs/<etag>`` holds each file once (etag: sha256 for LFS files such as weights, the git
blob sha1 for the others), ``snapshots/<commit>/<file>`` are relative symlinks to the blobs, and
``refs/<branch or tag>`` holds the commit hash (no newline). Loading an id from it with
``HF_HUB_OFFLINE=1`` goes through huggingface_hub's real cache look-up.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

LFS_SUFFIXES = (".safetensors", ".bin", ".pt")


def repo_folder(cache: Path, repo_id: str) -> Path:
    return cache / ("models--" + repo_id.replace("/", "--"))


def etag(name: str, data: bytes) -> str:
    if name.endswith(LFS_SUFFIXES):
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def add_snapshot(cache: Path, repo_id: str, files: dict[str, bytes], ref: str = "main") -> str:
    """Store ``files`` as one commit of ``repo_id`` and point ``refs/<ref>`` at it; returns the commit hash."""
    storage = repo_folder(cache, repo_id)
    content = b"".join(name.encode() + etag(name, data).encode() for name, data in sorted(files.items()))
    commit = hashlib.sha1(repo_id.encode() + ref.encode() + content).hexdigest()
    snapshot = storage / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    (storage / "blobs").mkdir(exist_ok=True)
    for name, data in files.items():
        blob = etag(name, data)
        (storage / "blobs" / blob).write_bytes(data)
        os.symlink(f"../../blobs/{blob}", snapshot / name)
    (storage / "refs").mkdir(exist_ok=True)
    (storage / "refs" / ref).write_text(commit, encoding="utf-8")
    return commit


def folder_files(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.name not in skip}


def use_cache(monkeypatch: pytest.MonkeyPatch, cache: Path, offline: bool = True, endpoint: str | None = None):
    """Point huggingface_hub at ``cache`` as HF_HUB_CACHE / HF_HUB_OFFLINE would at start-up.

    huggingface_hub reads these variables once, into ``huggingface_hub.constants``, when it is imported; a
    test process has imported it already, so the constants are set along with the variables. (Subprocess
    tests set only the variables.)
    """
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    if endpoint is not None:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        monkeypatch.setattr(constants, "ENDPOINT", endpoint)


def hub_env(cache: Path) -> dict[str, str]:
    """Environment for a subprocess that must find models in ``cache`` and never use the network."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1")
    return env
