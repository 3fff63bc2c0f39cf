"""fsmt-translate streams: window by window, answered as lines arrive, identical whatever the window.

* A pipe with --buffer-size 1 gets line 1's translation before line 2 is written (timeout-bounded read).
* --buffer-size 1, 7, 2000 and the whole-file translation give byte-identical text, and jsonl with the
  same tokens and texts and scores within the parity tolerance.
* ``Translator.translate_iterable`` never reads more than one window ahead of what it has yielded.
* The incremental line reader keeps the files.py text policy (BOM, CRLF, invalid UTF-8 naming the line).
"""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys

import pytest

import golden
from fsmt_port.errors import FSMTPortError, InputError
from fsmt_port.files import decode_line_stream, iter_lines, read_lines
from fsmt_port.translation.cli import main as translate_main
from fsmt_port.translation.formatting import format_lines
from fsmt_port.translation.translator import Translator
from fsmt_port.translation.windows import count_lines, default_buffer_size, lines_in_windows, read_windows

MODEL = "tiny-en-de-joint"
READ_TIMEOUT = 120


@pytest.fixture(scope="module")
def translator(converted):
    return Translator.from_pretrained(converted(MODEL))


@pytest.fixture(scope="module")
def source_lines():
    """Flickr sentences plus the odd ones: an empty line, a very short one, one with a lone CR inside."""
    lines = golden.flickr_lines("en")[:30]
    return lines[:10] + ["", "Hi", "a\rb c"] + lines[10:]


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = translate_main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _read_line_within(pipe, timeout: float) -> bytes:
    """One line from ``pipe``, or fail after ``timeout`` seconds (the child never answered)."""
    data = b""
    fd = pipe.fileno()
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], timeout)
        assert ready, f"no complete output line within {timeout} s (got {data!r})"
        chunk = os.read(fd, 1)
        assert chunk, f"the child closed its output early (got {data!r})"
        data += chunk
    return data


def test_a_pipe_is_answered_line_by_line(converted, translator):
    first, second = "A man in an orange hat starring at something.", "Two dogs play in the snow."
    expected = [t.hypotheses[0].text for t in translator.translate([first, second], num_beams=2)]
    child = subprocess.Popen([sys.executable, "-m", "fsmt_port.translate", str(converted(MODEL)), "--buffer-size",
                              "1", "--num-beams", "2", "--threads", "1", "--quiet"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        child.stdin.write(first.encode() + b"\n")
        child.stdin.flush()
        # Line 2 has not been written yet: the answer to line 1 must arrive on its own.
        assert _read_line_within(child.stdout, READ_TIMEOUT).decode() == expected[0] + "\n"
        child.stdin.write(second.encode() + b"\n")
        child.stdin.close()
        assert _read_line_within(child.stdout, READ_TIMEOUT).decode() == expected[1] + "\n"
        assert child.wait(timeout=READ_TIMEOUT) == 0, child.stderr.read().decode()
        assert child.stdout.read() == b""
    finally:
        if child.poll() is None:
            child.kill()


def test_window_size_never_changes_the_output(capsys, converted, translator, source_lines, tmp_path):
    source = tmp_path / "in.en"
    source.write_text("".join(x + "\n" for x in source_lines), encoding="utf-8")
    whole_file = translator.translate(source_lines, num_beams=3)  # today's whole-file path
    expected_text = "".join(format_lines(whole_file, "text", 2))
    options = ["-i", source, "--num-beams", 3, "--threads", "1", "--quiet"]
    for size in ("1", "7", "2000", None):
        extra = ["--buffer-size", size] if size else []
        code, text, err = _run(capsys, converted(MODEL), *options, "--nbest", 2, *extra)
        assert code == 0, err
        assert text == expected_text, f"--buffer-size {size}: text differs from the whole-file translation"
        code, out, err = _run(capsys, converted(MODEL), *options, "--format", "jsonl", *extra)
        assert code == 0, err
        rows = [json.loads(line) for line in out.splitlines()]
        assert [r["id"] for r in rows] == list(range(len(source_lines)))
        assert [r["source"] for r in rows] == source_lines
        for row, want in zip(rows, whole_file):
            assert [(h["tokens"], h["text"]) for h in row["hypotheses"]] == [(h.tokens, h.text) for h in
                                                                              want.hypotheses]
            for got, ref in zip(row["hypotheses"], want.hypotheses):
                tolerance = max(1e-4, abs(sum(ref.positional_scores)) * 2 ** -20)
                assert abs(got["score"] - ref.score) <= tolerance
                assert max(abs(a - b) for a, b in zip(got["positional_scores"], ref.positional_scores)) <= tolerance


def test_translate_iterable_reads_at_most_one_window_ahead(translator, source_lines):
    consumed = []

    def lines():
        for line in source_lines:
            consumed.append(line)
            yield line

    results = translator.translate_iterable(lines(), buffer_size=4, num_beams=2, nbest=1)
    first = next(results)
    assert first.id == 0 and first.source == source_lines[0] and len(consumed) == 4
    rest = list(results)
    assert [r.id for r in rest] == list(range(1, len(source_lines)))
    expected = translator.translate(source_lines, num_beams=2, nbest=1)
    assert [h.hypotheses[0].tokens for h in [first, *rest]] == [h.hypotheses[0].tokens for h in expected]


def test_translate_file_writes_what_the_cli_writes(capsys, converted, translator, source_lines, tmp_path):
    source = tmp_path / "in.en"
    source.write_text("".join(x + "\n" for x in source_lines), encoding="utf-8")
    assert translator.translate_file(source, tmp_path / "api.de", buffer_size=5, num_beams=2) == len(source_lines)
    code, _, err = _run(capsys, converted(MODEL), "-i", source, "-o", tmp_path / "cli.de", "--num-beams", 2,
                        "--buffer-size", 5, "--quiet")
    assert code == 0, err
    assert (tmp_path / "api.de").read_bytes() == (tmp_path / "cli.de").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["api.de", "cli.de", "in.en"]  # no part files left


def test_windows_are_numbered_and_shared_round_robin():
    lines = [str(i) for i in range(10)]
    assert [(w.index, w.first, w.lines) for w in read_windows(lines, 4)] == [
        (0, 0, ["0", "1", "2", "3"]), (1, 4, ["4", "5", "6", "7"]), (2, 8, ["8", "9"])]
    assert [w.index for w in read_windows(lines, 3, start=1, stride=2)] == [1, 3]
    assert [w.index for w in read_windows(lines, 5)] == [0, 1]  # no empty window at the end
    assert lines_in_windows(10, 3, 1, 2) == 3 + 1 and lines_in_windows(10, 3, 0, 2) == 3 + 3
    assert lines_in_windows(0, 3) == 0


def test_line_reader_keeps_the_text_policy_and_reads_lazily(tmp_path):
    data = b"\xef\xbb\xbffirst\r\nsecond\n\nlone\rcr\nlast"
    assert list(decode_line_stream(io.BytesIO(data), "x")) == ["first", "second", "", "lone\rcr", "last"]
    assert read_lines(_write(tmp_path / "a", data)) == ["first", "second", "", "lone\rcr", "last"]
    assert read_lines(_write(tmp_path / "b", b"\xef\xbb\xbf")) == [] and read_lines(_write(tmp_path / "c", b"\n")) == [""]
    lines = iter_lines(_write(tmp_path / "d", b"ok\nfine\n" + b"x\n" * 100 + b"bad \xff\n"))
    assert next(lines) == "ok" and next(lines) == "fine"  # what comes before the bad line is usable
    with pytest.raises(InputError, match=r"line 103 is not valid UTF-8.*--encoding-errors replace"):
        list(lines)
    assert count_lines(tmp_path / "a") == 5 and count_lines(tmp_path / "c") == 1 and count_lines("-") is None


@pytest.mark.parametrize("case,needle", [("missing", "input file not found"),
                                         ("folder", "the input path is a folder, not a file")])
def test_an_unusable_input_is_named(case, needle, tmp_path):
    path = tmp_path / "nope.en"
    if case == "folder":
        path.mkdir()
    with pytest.raises(FSMTPortError, match=f"{path}: {needle}"):  # MissingFileError / InputError
        iter_lines(path)


def test_a_terminal_gets_one_line_windows(monkeypatch):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    assert default_buffer_size("-") == 1
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False, raising=False)
    assert default_buffer_size("-") == default_buffer_size("file.en") == default_buffer_size("f", 16) == 4096
    assert default_buffer_size("file.en", 256) == 64 * 256  # enough batches per window to sort well


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_a_window_must_hold_a_line(capsys, converted, tmp_path):
    source = tmp_path / "in.en"
    source.write_text("A dog.\n", encoding="utf-8")
    for out in ([], ["-o", tmp_path / "out.de"]):
        code, text, err = _run(capsys, converted(MODEL), "-i", source, "--buffer-size", 0, "--quiet", *out)
        assert code == 2 and text == "" and err == "error: --buffer-size must be >= 1, got 0\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.en"]
