"""``fsmt_port.runtime.tune_malloc``: applied once by generate, and switched off by the env var."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from fsmt_port import runtime

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="mallopt tuning is glibc-only; elsewhere it is a documented no-op")
def test_generate_stops_per_step_page_faults(converted):
    """After tuning, decoding a batch again reuses the heap instead of faulting in fresh pages."""
    import resource

    import torch

    from fsmt_port import FSMTForConditionalGeneration

    model = FSMTForConditionalGeneration.from_pretrained(converted("tiny-en-de-joint"))
    src = torch.tensor([[5, 6, 7, 8, 9, 2]] * 8)
    model.generate(src, num_beams=5)  # first call: tunes malloc, warms the heap
    assert runtime.tune_malloc() is True  # idempotent: the cached result
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    model.generate(src, num_beams=5)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before < 50


def test_env_var_turns_tuning_off():
    code = "from fsmt_port import runtime; print(runtime.tune_malloc())"
    done = subprocess.run([sys.executable, "-c", code], env={"FSMT_PORT_MALLOC_TUNING": "0", "PATH": ""},
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
