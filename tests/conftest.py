"""Session fixtures: every fixture checkpoint converted once, through the real converter."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import golden  # noqa: E402

# The goldens were made with 2 threads; fewer or more only moves the last bits.
torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def golden_thread_count():
    """Every test starts at the goldens' 2 threads: command lines run in-process (``--threads 1``) set
    the process-wide count, which would otherwise leak into whichever test runs next."""
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def converted(tmp_path_factory):
    """name -> converted folder, for every fixture model (small-en-de: model4 and model3)."""
    from fsmt_port.fairseq.convert import convert

    root = tmp_path_factory.mktemp("converted")
    cache: dict[str, Path] = {}

    def get(name: str, checkpoint: str | None = None) -> Path:
        key = f"{name}:{checkpoint or golden.CHECKPOINT[name]}"
        if key not in cache:
            src, tgt = golden.langs(name)
            out = root / key.replace(":", "_")
            convert(golden.checkpoint_path(name, checkpoint), out, src_lang=src, tgt_lang=tgt)
            cache[key] = out
        return cache[key]

    return get
