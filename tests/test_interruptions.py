"""Ctrl-C / SIGTERM during conversion and fsmt-translate never leave partial output.

Real subprocesses get real signals. To hit the dangerous moments on purpose,
a small driver wraps one library function so the child announces
"HOOK:<point>" on stderr (and, for the write phase, pauses there); the parent
sends the signal when it reads that line. Nothing else is changed in the code
under test. The fsmt-translate "progress started" cases use no hook at all:
the child's stderr is a pseudo-terminal so its own tqdm progress bar appears,
and the signal is sent once it does.

Documented behaviour (docs/RELIABILITY.md):
* fsmt-translate: SIGINT and SIGTERM both exit 130 with one line
  "interrupted; nothing partial was left behind"; no --output file (a
  pre-existing one is left byte-identical) and no temporary file remain.
* convert: no output folder (a pre-existing one is left intact) and no
  temporary folder remain. Exit 130 once writing has started; a SIGTERM that
  arrives while the checkpoint is still being read ends the process by the
  signal itself (nothing has been written yet).
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

import golden

MODEL = "tiny-en-de-joint"
INTERRUPTED = 130
TIMEOUT = 180

DRIVER = r"""
import contextlib, os, sys, time
point = os.environ["FSMT_TEST_HOOK"]

def say(what):
    print("HOOK:" + what, file=sys.stderr, flush=True)

if point == "convert-writing":      # weights written into the temp folder, tokenizer files not yet
    from fsmt_port.modeling import model as modeling_fsmt
    original = modeling_fsmt.FSMTForConditionalGeneration.save_pretrained
    def save_pretrained(self, *args, **kwargs):
        original(self, *args, **kwargs)
        say("weights-written"); time.sleep(120)
    modeling_fsmt.FSMTForConditionalGeneration.save_pretrained = save_pretrained
    from fsmt_port.fairseq.convert import main
elif point == "convert-reading":    # before anything is written
    import fsmt_port.fairseq.convert as convert
    original = convert.load_fairseq_checkpoint
    def load(*args, **kwargs):
        say("reading"); time.sleep(120); return original(*args, **kwargs)
    convert.load_fairseq_checkpoint = load
    main = convert.main
elif point == "translate-writing":  # half of the window's output is in the part file, not yet committed
    import fsmt_port.translation.resume as resume
    import fsmt_port.translation.cli as translate
    real_commit = resume.RankParts.commit
    def commit(self, window_index, n_lines, data, digest):
        partial = self._handles[0]
        partial.write(data[: len(data) // 2]); partial.flush()
        say("half-written"); time.sleep(120)
        real_commit(self, window_index, n_lines, data, digest)
    resume.RankParts.commit = commit
    main = translate.main
sys.exit(main(sys.argv[1:]))
"""


def _default_sigint() -> None:
    # A child of a non-interactive shell may inherit SIGINT ignored; Ctrl-C must reach it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_with_hook(point: str, argv: list[str], sig: int) -> tuple[int, str]:
    """Start the driver, wait for HOOK:<...>, send ``sig``; return (exit code, stderr)."""
    child = subprocess.Popen([sys.executable, "-c", DRIVER, *argv], stderr=subprocess.PIPE, text=True,
                             stdout=subprocess.DEVNULL, env={**os.environ, "FSMT_TEST_HOOK": point},
                             preexec_fn=_default_sigint)
    watchdog = threading.Timer(TIMEOUT, child.kill)
    watchdog.start()
    seen = []
    try:
        for line in child.stderr:
            seen.append(line)
            if line.startswith("HOOK:"):
                child.send_signal(sig)
                break
        seen.append(child.stderr.read())
        child.wait()
    finally:
        watchdog.cancel()
    err = "".join(seen)
    assert any(s.startswith("HOOK:") for s in seen), f"the hook never fired:\n{err[-3000:]}"
    return child.returncode, err


def leftovers(folder: Path, name: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}."))


def assert_clean_interrupt(code: int, err: str) -> None:
    assert code == INTERRUPTED, err[-3000:]
    assert "interrupted; nothing partial was left behind" in err and "Traceback" not in err, err[-3000:]


# --- conversion -------------------------------------------------------------------------------------

def convert_argv(out: Path, *extra: str) -> list[str]:
    return ["--fsmt-path", str(golden.checkpoint_path(MODEL)), "--output-dir", str(out),
            "--src-lang", "en", "--tgt-lang", "de", *extra]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_convert_interrupted_while_writing_leaves_no_folder(tmp_path, sig):
    out = tmp_path / "out"
    code, err = run_with_hook("convert-writing", convert_argv(out), sig)
    assert_clean_interrupt(code, err)
    assert not out.exists() and leftovers(tmp_path, "out") == []


@pytest.mark.slow
def test_convert_interrupted_while_replacing_keeps_the_old_folder(tmp_path, converted):
    out = tmp_path / "out"
    shutil.copytree(converted(MODEL), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, err = run_with_hook("convert-writing", convert_argv(out, "--force"), signal.SIGTERM)
    assert_clean_interrupt(code, err)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert leftovers(tmp_path, "out") == []


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_convert_interrupted_while_reading_writes_nothing(tmp_path, sig):
    out = tmp_path / "out"
    code, err = run_with_hook("convert-reading", convert_argv(out), sig)
    # SIGINT: KeyboardInterrupt -> 130. SIGTERM before the output phase: ended by the signal.
    assert code == (INTERRUPTED if sig == signal.SIGINT else -signal.SIGTERM), err[-3000:]
    assert not out.exists() and leftovers(tmp_path, "out") == []


def test_interrupt_between_the_two_renames_restores_the_old_folder(tmp_path, monkeypatch):
    """atomic_directory's only non-atomic moment: old folder moved aside, new one not yet in place."""
    from fsmt_port.files import atomic_directory

    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    real_rename = Path.rename

    def rename(self, target):
        if Path(target) == out and self.name.startswith(".out.tmp-"):
            raise KeyboardInterrupt("signal 15")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        with atomic_directory(out, force=True) as tmp:
            (tmp / "new.txt").write_text("new")
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    assert leftovers(tmp_path, "out") == []


# --- fsmt-translate -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def long_input(tmp_path_factory) -> Path:
    """3000 lines: far longer to translate than it takes to see the progress bar and signal."""
    path = tmp_path_factory.mktemp("interrupt") / "long.en"
    lines = golden.flickr_lines("en")
    path.write_text("".join(lines[i % len(lines)] + "\n" for i in range(3000)), encoding="utf-8")
    return path


def translate_argv(model: Path, source: Path, out: Path, *extra: str) -> list[str]:
    return [str(model), "--input", str(source), "--output", str(out), "--num-beams", "1", "--threads", "1",
            *extra]


def run_until_progress(argv: list[str], sig: int) -> tuple[int, str]:
    """fsmt-translate as users run it, stderr on a pseudo-terminal; signal once its progress bar shows."""
    master, slave = pty.openpty()
    # A pty starts 0x0; tqdm would then draw an empty bar. Give it a normal size.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    child = subprocess.Popen([sys.executable, "-m", "fsmt_port.translate", *argv], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=slave, preexec_fn=_default_sigint)
    os.close(slave)
    chunks: list[bytes] = []
    sent = False
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    data = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
                if not sent and re.search(rb"translating:\s+\d+%", b"".join(chunks)):
                    child.send_signal(sig)
                    sent = True
            elif child.poll() is not None:
                break
        child.wait(timeout=TIMEOUT)
    finally:
        if child.poll() is None:
            child.kill()
        os.close(master)
    err = b"".join(chunks).decode("utf-8", "replace")
    assert sent, f"no progress bar seen:\n{err[-3000:]}"
    return child.returncode, err


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_translate_interrupted_mid_run_leaves_no_output(tmp_path, converted, long_input, sig):
    out = tmp_path / "out.txt"
    code, err = run_until_progress(translate_argv(converted(MODEL), long_input, out), sig)
    assert_clean_interrupt(code, err)
    assert not out.exists() and leftovers(tmp_path, "out.txt") == []


@pytest.mark.slow
def test_translate_interrupted_mid_run_keeps_a_previous_output(tmp_path, converted, long_input):
    out = tmp_path / "out.txt"
    out.write_bytes(b"previous complete result\n")
    code, err = run_until_progress(translate_argv(converted(MODEL), long_input, out, "--force"), signal.SIGTERM)
    assert_clean_interrupt(code, err)
    assert out.read_bytes() == b"previous complete result\n" and leftovers(tmp_path, "out.txt") == []


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_translate_interrupted_while_writing_leaves_no_truncated_file(tmp_path, converted, sig):
    source = tmp_path / "in.en"
    source.write_text("".join(line + "\n" for line in golden.flickr_lines("en")[:20]), encoding="utf-8")
    out = tmp_path / "out.txt"
    out.write_bytes(b"previous complete result\n")
    code, err = run_with_hook("translate-writing",
                              translate_argv(converted(MODEL), source, out, "--force", "--quiet",
                                             "--max-len-b", "10"), sig)
    assert_clean_interrupt(code, err)
    assert out.read_bytes() == b"previous complete result\n"  # never the half-written text
    assert leftovers(tmp_path, "out.txt") == []


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_translate_with_workers_interrupted_mid_run_leaves_no_output(tmp_path, converted, long_input, sig):
    out = tmp_path / "out.txt"
    argv = translate_argv(converted(MODEL), long_input, out, "--workers", "2", "--batch-size", "8")
    argv[argv.index("--threads") + 1] = "2"  # one intra-op thread per worker
    code, err = run_until_progress(argv, sig)
    assert_clean_interrupt(code, err)
    assert not out.exists() and leftovers(tmp_path, "out.txt") == []
