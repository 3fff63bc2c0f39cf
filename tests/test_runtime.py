"""``fsmt_port.cli.tune_malloc``: the CLIs opt in, generate() alone leaves malloc alone, the env var turns it off."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from fsmt_port import cli as runtime

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="mallopt tuning is glibc-only; elsewhere it is a documented no-op")
def test_generate_stops_per_step_page_faults(converted):
    """After tuning, decoding a batch again reuses the heap instead of faulting in fresh pages."""
    import resource

    import torch

    from fsmt_port import FSMTForConditionalGeneration

    model = FSMTForConditionalGeneration.from_pretrained(converted("tiny-en-de-joint"))
    src = torch.tensor([[5, 6, 7, 8, 9, 2]] * 8)
    assert runtime.tune_malloc() is True  # what the CLIs do before decoding
    assert runtime.tune_malloc() is True  # idempotent: the cached result
    model.generate(src, num_beams=5)  # warms the heap
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    model.generate(src, num_beams=5)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before < 50


def test_env_var_turns_tuning_off():
    code = "from fsmt_port.cli import tune_malloc; print(tune_malloc())"
    done = subprocess.run([sys.executable, "-c", code], env={"FSMT_PORT_MALLOC_TUNING": "0", "PATH": ""},
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_generate_alone_leaves_malloc_alone(converted):
    """A library user's process is not retuned: only the CLIs opt in."""
    code = ("import torch, fsmt_port.cli as cli; from fsmt_port import FSMTForConditionalGeneration as M; "
            f"m = M.from_pretrained({str(converted('tiny-en-de-joint'))!r}); "
            "m.generate(torch.tensor([[5, 6, 7, 2]]), num_beams=2); print(cli._applied)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "None"
