"""fsmt-translate --output commits window by window: killed runs resume, changed runs refuse.

* SIGKILL once the state file shows committed windows; the same command again translates only the
  rest (the count it reports is checked against the state file) and writes the same bytes as an
  uninterrupted run; the part files are gone at the end.
* Other generation arguments, another input or another world size refuse with one line; --restart
  starts over.
* Invalid UTF-8 deep in the input stops at that line with the windows before it committed; a full
  disk is one clear error and stays resumable; an output under a file is a clear error.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import golden
from fsmt_port.translation.cli import main as translate_main

MODEL = "tiny-en-de-joint"
N_LINES = 300
WINDOW = 4
TIMEOUT = 240


def write_input(path: Path, n_lines: int) -> Path:
    lines = golden.flickr_lines("en")
    path.write_text("".join(lines[i % len(lines)] + "\n" for i in range(n_lines)), encoding="utf-8")
    return path


def argv(model: Path, source: Path, out: Path, *extra) -> list[str]:
    return [str(model), "-i", str(source), "-o", str(out), "--num-beams", "2", "--max-len-b", "20",
            "--buffer-size", str(WINDOW), "--threads", "1", "--quiet", *map(str, extra)]


def state_path(out: Path, rank: int = 0, world: int = 1) -> Path:
    return out.parent / f".{out.name}.rank{rank}-of-{world}.state.json"


def committed_lines(state: Path) -> int:
    return json.loads(state.read_text())["committed"]["lines"]


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (torchrun starts its workers in sessions of their own)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo.extend(children.get(tree[-1], []))
    return tree


def kill_after_first_commit(command: list[str], states: list[Path], **popen) -> None:
    """Start ``command``; SIGKILL it and its descendants as soon as one state file shows a committed window."""
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **popen)
    deadline = time.monotonic() + TIMEOUT
    try:
        while not any(s.exists() for s in states):
            assert child.poll() is None, f"finished or failed before it was killed:\n{child.stderr.read()[-3000:]}"
            assert time.monotonic() < deadline, "no window committed in time"
            time.sleep(0.02)  # polling the state file, not a timing assertion
        tree = process_tree(child.pid)
        for sig in (signal.SIGSTOP, signal.SIGKILL):  # freeze all first, so none reacts to another's death
            for pid in tree:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        child.wait(timeout=TIMEOUT)
        for pid in tree[1:]:
            _wait_gone(pid, deadline)
    finally:
        if child.poll() is None:
            child.kill()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL


def _wait_gone(pid: int, deadline: float) -> None:
    """A killed grandchild is reaped by init; wait until it no longer exists (or is a zombie)."""
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} survived SIGKILL")


def run(capsys, *args) -> tuple[int, str, str]:
    code = translate_main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def corpus(converted, tmp_path_factory):
    """The input and the output of an uninterrupted run of it."""
    folder = tmp_path_factory.mktemp("resume")
    source = write_input(folder / "in.en", N_LINES)
    reference = folder / "reference.de"
    assert translate_main(argv(converted(MODEL), source, reference)) == 0
    return source, reference.read_bytes()


@pytest.mark.slow
def test_a_killed_run_resumes_and_translates_only_the_rest(capsys, converted, corpus, tmp_path):
    source, expected = corpus
    out = tmp_path / "out.de"
    command = [sys.executable, "-m", "fsmt_port.translate", *argv(converted(MODEL), source, out)]
    kill_after_first_commit(command, [state_path(out)])
    assert not out.exists()
    done = committed_lines(state_path(out))
    assert done >= WINDOW and done % WINDOW == 0

    # Other arguments or another input refuse to mix with what is committed.
    code, _, err = run(capsys, *argv(converted(MODEL), source, out, "--length-penalty", "0.5"))
    assert code == 2 and err.count("\n") == 1 and "different generation" in err and "--restart" in err, err
    changed = write_input(tmp_path / "changed.en", N_LINES)
    changed.write_text("Something else entirely.\n" + changed.read_text(encoding="utf-8"), encoding="utf-8")
    code, _, err = run(capsys, *argv(converted(MODEL), changed, out))
    assert code == 2 and "different input" in err, err
    assert committed_lines(state_path(out)) == done and not out.exists()  # refusing changed nothing

    # SIGKILL in the middle of a state write leaves the atomic writer's temporary file behind.
    half_written = state_path(out).with_name(f".{state_path(out).name}.tmp-killed")  # files.atomic_path's name
    half_written.write_text('{"version"', encoding="utf-8")
    code, _, err = run(capsys, *argv(converted(MODEL), source, out))
    assert code == 0, err
    assert f"resumed after {done} lines; translating {N_LINES - done} more" in err
    assert out.read_bytes() == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["changed.en", "out.de"]  # no part or temp files left


def test_restart_starts_over_and_force_still_guards_the_final_file(capsys, converted, corpus, tmp_path):
    source, expected = corpus
    out = tmp_path / "out.de"
    short = write_input(tmp_path / "short.en", 10)
    # A run that stopped after two windows (invalid UTF-8 on line 10).
    short.write_bytes(short.read_bytes().rsplit(b"\n", 2)[0] + b"\nbad \xff\n")
    code, _, err = run(capsys, *argv(converted(MODEL), short, out))
    assert code == 2 and "line 10 is not valid UTF-8" in err, err
    assert committed_lines(state_path(out)) == 8 and not out.exists()
    committed_input = short.read_bytes()
    short.write_bytes(b"Changed." + committed_input[committed_input.index(b"\n"):])  # same path, other text
    code, _, err = run(capsys, *argv(converted(MODEL), short, out))
    assert code == 2 and "its first 8 lines differ from those the interrupted run committed" in err, err
    short.write_bytes(committed_input)
    code, _, err = run(capsys, *argv(converted(MODEL), source, out, "--num-beams", "1"))
    assert code == 2 and "--restart" in err
    code, _, err = run(capsys, *argv(converted(MODEL), source, out, "--restart"))
    assert code == 0 and "resumed" not in err, err
    assert out.read_bytes() == expected
    code, _, err = run(capsys, *argv(converted(MODEL), source, out))
    assert code == 2 and "already exists" in err and "--force" in err
    code, _, err = run(capsys, *argv(converted(MODEL), short, out, "--force", "--encoding-errors", "replace"))
    assert code == 0 and out.read_text(encoding="utf-8").count("\n") == 10, err


def test_invalid_utf8_deep_in_the_input_keeps_earlier_windows(capsys, converted, tmp_path):
    source = write_input(tmp_path / "in.en", 23)
    good = source.read_bytes()
    source.write_bytes(good + b"caf\xe9 au lait\n" + b"A dog.\n")
    out = tmp_path / "out.de"
    code, _, err = run(capsys, *argv(converted(MODEL), source, out))
    assert code == 2 and err.count("\n") == 1 and "line 24 is not valid UTF-8" in err, err
    assert committed_lines(state_path(out)) == 20
    source.write_bytes(good + b"cafe au lait\n" + b"A dog.\n")  # fixed after the committed windows
    code, _, err = run(capsys, *argv(converted(MODEL), source, out))
    assert code == 0 and "resumed after 20 lines; translating 5 more" in err, err
    fresh = tmp_path / "fresh.de"
    assert run(capsys, *argv(converted(MODEL), source, fresh))[0] == 0
    assert out.read_bytes() == fresh.read_bytes()


def test_a_full_disk_is_one_clear_error_and_stays_resumable(capsys, converted, tmp_path, monkeypatch):
    import errno

    import fsmt_port.translation.resume as resume

    source = write_input(tmp_path / "in.en", 14)
    out = tmp_path / "out.de"
    real_fsync, calls = os.fsync, []

    def fsync_until_full(fd):
        calls.append(fd)
        if len(calls) > 6:  # 3 fsyncs per commit: the third window finds the disk full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(resume.os, "fsync", fsync_until_full)
    code, _, err = run(capsys, *argv(converted(MODEL), source, out))
    assert code == 2 and err.count("\n") == 1, err
    assert "No space left on device" in err and "8 lines are committed" in err and "resume" in err
    monkeypatch.setattr(resume.os, "fsync", real_fsync)
    code, _, err = run(capsys, *argv(converted(MODEL), source, out))
    assert code == 0 and "resumed after 8 lines; translating 6 more" in err, err
    fresh = tmp_path / "fresh.de"
    assert run(capsys, *argv(converted(MODEL), source, fresh))[0] == 0
    assert out.read_bytes() == fresh.read_bytes()


def test_unwritable_outputs_and_other_world_sizes_are_clear_errors(capsys, converted, tmp_path):
    source = write_input(tmp_path / "in.en", 3)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, _, err = run(capsys, *argv(converted(MODEL), source, blocker / "out.de"))
    assert code == 2 and err.count("\n") == 1 and "cannot write its part files" in err, err
    (tmp_path / "folder.de").mkdir()
    code, _, err = run(capsys, *argv(converted(MODEL), source, tmp_path / "folder.de"))
    assert code == 2 and "output is a folder" in err, err
    out = tmp_path / "out.de"
    state_path(out, 1, 2).write_text("{}")
    code, _, err = run(capsys, *argv(converted(MODEL), source, out))
    assert code == 2 and re.search(r"interrupted run of 2 process.*this run has 1", err), err
    code, _, err = run(capsys, *argv(converted(MODEL), source, out, "--restart"))
    assert code == 0 and out.exists() and not state_path(out, 1, 2).exists(), err


def test_an_interrupt_before_the_first_commit_leaves_nothing(capsys, converted, tmp_path, monkeypatch):
    import fsmt_port.translation.corpus as corpus_module

    source = write_input(tmp_path / "in.en", 6)
    real = corpus_module.format_lines

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt("signal 15")

    monkeypatch.setattr(corpus_module, "format_lines", interrupted)
    code, _, err = run(capsys, *argv(converted(MODEL), source, tmp_path / "out.de"))
    assert code == 130 and "nothing partial was left behind" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.en"]
    calls = []

    def second_window_interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("signal 15")
        return real(*args, **kwargs)

    monkeypatch.setattr(corpus_module, "format_lines", second_window_interrupted)
    code, _, err = run(capsys, *argv(converted(MODEL), source, tmp_path / "out.de"))
    assert code == 130 and "4 lines are committed" in err and "run the same command again to resume" in err, err
