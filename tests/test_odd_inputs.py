"""Long and odd inputs through ``generate``, ``fsmt-translate`` and ``run_eval``.

Each case does what docs/RELIABILITY.md (and ``fsmt_port.files``) says:

* a line longer than ``max_source_positions`` is one clear error naming the
  line and ``--truncate``; with ``--truncate`` it is cut to the limit;
* empty and whitespace-only lines are translated like fairseq does (ids
  ``[</s>]``, an ordinary sentence comes out), one output line each; a batch
  of nothing but empty lines works; an empty file gives an empty output;
* a UTF-8 BOM and CRLF line ends are removed; a last line without ``\\n``
  counts; only ``\\n`` ends a line (U+2028, U+0085, VT, FF, lone CR stay inside);
* invalid UTF-8 is an error naming the file and the line, or, with
  ``--encoding-errors replace``, U+FFFD for the bad bytes.
"""

from __future__ import annotations

import io
import json
import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import golden
from fsmt_port import FSMTForConditionalGeneration, Translator
from fsmt_port.errors import InputError
from fsmt_port.evaluation.run_eval import main as run_eval_main
from fsmt_port.files import decode_lines
from fsmt_port.translation.cli import main as translate_main

MODEL = "tiny-en-de-joint"
GEN = ["--num-beams", "2", "--max-len-b", "12", "--threads", "1", "--quiet"]
LIMIT = 1024
CLEAN = ["A dog runs.", "Two men talk.", "A girl in a red shirt.", "People."]


def run_translate(capsys, model, data: bytes | None, tmp_path, *extra, fmt="jsonl", name="in.txt"):
    """(exit code, output bytes or None, stderr) of fsmt-translate on ``data`` written as a file."""
    source = tmp_path / name
    if data is not None:
        source.write_bytes(data)
    out = tmp_path / f"{name}.out"
    code = translate_main([str(model), "--input", str(source), "--output", str(out), "--format", fmt, "--force",
                           *GEN, *extra])
    err = capsys.readouterr().err
    return code, (out.read_bytes() if out.exists() else None), err


def rows(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode("utf-8").split("\n")[:-1]]


def tokens(data: bytes) -> list[list[list[int]]]:
    return [[h["tokens"] for h in r["hypotheses"]] for r in rows(data)]


def assert_one_line_error(code, err, *needles):
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.fixture(scope="module")
def model(converted):
    return converted(MODEL)


@pytest.fixture(scope="module")
def clean_tokens(model, tmp_path_factory):
    """The reference translation of CLEAN (jsonl tokens), to compare odd encodings of the same text."""
    tmp = tmp_path_factory.mktemp("clean")
    (tmp / "in.txt").write_bytes("".join(line + "\n" for line in CLEAN).encode())
    assert translate_main([str(model), "--input", str(tmp / "in.txt"), "--output", str(tmp / "out"), "--format",
                           "jsonl", *GEN]) == 0
    return tokens((tmp / "out").read_bytes())


# --- longer than the maximum positions -----------------------------------------------------------

def test_a_line_at_the_limit_works_and_one_token_more_is_a_clear_error(capsys, model, tmp_path):
    tok = Translator.from_pretrained(model).tokenizer
    at_limit, over = "a " * (LIMIT - 1), "a " * LIMIT
    assert len(tok.encode(at_limit)) == LIMIT and len(tok.encode(over)) == LIMIT + 1
    code, out, err = run_translate(capsys, model, f"A dog.\n{at_limit}\n".encode(), tmp_path)
    assert code == 0 and len(rows(out)) == 2, err
    code, out, err = run_translate(capsys, model, f"A dog.\n{at_limit}\n{over}\nA cat.\n".encode(), tmp_path,
                                   name="over.txt")
    assert_one_line_error(code, err, "line 3", f"{LIMIT + 1} tokens", f"max_source_positions={LIMIT}",
                          "--truncate")
    assert out is None and not list(tmp_path.glob(".over.txt.out.tmp*"))


def test_truncate_cuts_long_lines_and_leaves_the_others_alone(capsys, model, tmp_path, clean_tokens):
    data = "\n".join([CLEAN[0], "word " * 3000, CLEAN[1], "x" * 5000, CLEAN[2], CLEAN[3]]) + "\n"
    code, out, err = run_translate(capsys, model, data.encode(), tmp_path, "--truncate")
    assert code == 0, err
    got = tokens(out)
    assert len(got) == 6 and [got[0], got[2], got[4], got[5]] == clean_tokens
    assert all(h[-1] == 2 for r in got for h in r)


def test_generate_refuses_too_long_input_clearly(converted):
    for name in (MODEL, "tiny-en-cs-variant"):  # sinusoidal and learned positions
        model = FSMTForConditionalGeneration.from_pretrained(converted(name))
        ids = torch.full((1, LIMIT + 1), 5, dtype=torch.long)
        ids[0, -1] = 2
        with pytest.raises(InputError, match=f"{LIMIT + 1} tokens.*max_source_positions={LIMIT}"):
            model.generate(ids, num_beams=1, max_len_b=3)
        ids = ids[:, 1:]  # exactly at the limit
        assert model.generate(ids, num_beams=1, max_len_b=3).shape[0] == 1


def test_run_eval_long_lines(model, tmp_path, capsys):
    src, ref = tmp_path / "src.en", tmp_path / "ref.de"
    src.write_text(f"A dog.\n{'a ' * 2000}\n", encoding="utf-8")
    ref.write_text("Ein Hund.\nEin a.\n", encoding="utf-8")
    argv = [str(model), str(src), str(tmp_path / "hyp.de"), "--reference-path", str(ref), *GEN]
    code = run_eval_main(argv)
    assert_one_line_error(code, capsys.readouterr().err, "line 2", "--truncate")
    assert not (tmp_path / "hyp.de").exists()
    assert run_eval_main(argv + ["--truncate"]) == 0
    assert (tmp_path / "hyp.de").read_text(encoding="utf-8").count("\n") == 2


# --- empty, whitespace-only, only-empty -------------------------------------------------------------

BLANKS = ["", "   ", "\t", " \t \t ", "\u00a0", "\x0b\x0c", "\x07", "\x00"]  # moses: all become ids [</s>]


def test_empty_and_whitespace_lines_translate_like_fairseqs_empty_input(capsys, model, tmp_path, converted):
    tok = Translator.from_pretrained(model).tokenizer
    assert all(tok.encode(b) == [2] for b in BLANKS)
    data = "".join(line + "\n" for line in ["A dog.", *BLANKS, "A cat."]).encode()
    code, out, err = run_translate(capsys, model, data, tmp_path)
    assert code == 0, err
    got = rows(out)
    assert [r["source"] for r in got] == ["A dog.", *BLANKS, "A cat."]
    blank_tokens = [[h["tokens"] for h in r["hypotheses"]] for r in got[1:-1]]
    assert all(t == blank_tokens[0] for t in blank_tokens) and blank_tokens[0][0][-1] == 2
    assert len(blank_tokens[0][0]) > 1  # an ordinary sentence, as fairseq produces for ids [2]


def test_empty_line_matches_the_fairseq_golden(converted):
    """README of the goldens: '' -> ids [2] -> tiny-en-de-joint beam 5 'Ein Schwimmbecken.'"""
    expected = golden.load_expected(MODEL)
    index = next(s["index"] for s in expected["sentences"] if s["text"] == "")
    config = next(c for c in expected["generation"]["configs"] if c["name"] == "beam5_lenpen1.0")
    want = next(r for r in config["results"] if r["index"] == index)["hypos"][0]
    got = Translator.from_pretrained(converted(MODEL)).translate(["", "   "], num_beams=5, length_penalty=1.0)
    for result in got:
        assert result.hypotheses[0].tokens == want["tokens"] and result.hypotheses[0].text == want["decoded"]


@pytest.mark.parametrize("batch", ["1", "3", "64"])
def test_a_batch_of_only_empty_lines(capsys, model, tmp_path, batch):
    code, out, err = run_translate(capsys, model, b"\n" * 7, tmp_path, "--batch-size", batch, fmt="text")
    assert code == 0, err
    lines = out.decode("utf-8").split("\n")
    assert len(lines) == 8 and lines[-1] == "" and len(set(lines[:-1])) == 1 and lines[0].strip()


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf"], ids=["empty", "bom-only"])
def test_an_empty_file_gives_an_empty_output(capsys, model, tmp_path, data):
    for fmt in ("text", "jsonl"):
        code, out, err = run_translate(capsys, model, data, tmp_path, fmt=fmt)
        assert code == 0 and out == b"", err


def test_run_eval_with_empty_whitespace_and_only_empty_lines(model, tmp_path, capsys):
    src, ref, hyp = tmp_path / "src.en", tmp_path / "ref.de", tmp_path / "hyp.de"
    for source, reference in (("A dog.\n\n   \n\tA cat.\n", "Ein Hund.\n\n\nEine Katze.\n"), ("\n\n\n", "\n\n\n")):
        src.write_text(source, encoding="utf-8")
        ref.write_text(reference, encoding="utf-8")
        code = run_eval_main([str(model), str(src), str(hyp), "--reference-path", str(ref),
                              "--score-path", str(tmp_path / "s.json"), *GEN])
        assert code == 0, capsys.readouterr().err
        n = source.count("\n")
        assert hyp.read_text(encoding="utf-8").count("\n") == n
        assert json.loads((tmp_path / "s.json").read_text())["n_obs"] == n


# --- BOM, CRLF, line separators ---------------------------------------------------------------------

def encodings_of_clean() -> dict[str, bytes]:
    lf = "".join(line + "\n" for line in CLEAN).encode()
    crlf = lf.replace(b"\n", b"\r\n")
    return {"bom": b"\xef\xbb\xbf" + lf, "crlf": crlf, "bom+crlf": b"\xef\xbb\xbf" + crlf,
            "no-final-newline": lf[:-1], "crlf-no-final-newline": crlf[:-2],
            "mixed": lf.replace(b"\n", b"\r\n", 2)}


@pytest.mark.parametrize("variant", list(encodings_of_clean()))
def test_bom_and_crlf_are_removed(capsys, model, tmp_path, clean_tokens, variant):
    code, out, err = run_translate(capsys, model, encodings_of_clean()[variant], tmp_path)
    assert code == 0, err
    assert [r["source"] for r in rows(out)] == CLEAN and tokens(out) == clean_tokens


def test_stdin_follows_the_same_policy(capsys, model, monkeypatch, clean_tokens):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(encodings_of_clean()["bom+crlf"])))
    code = translate_main([str(model), "--format", "jsonl", *GEN])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert tokens(captured.out.encode()) == clean_tokens


def test_only_newline_ends_a_line(capsys, model, tmp_path):
    inside = ["a\u2028b", "c\u2029d", "e\x85f", "g\x0bh", "i\x0cj", "k\x1cl\x1dm\x1en", "lone\rcr", "nul\x00here"]
    data = "".join(f"{x} dog.\n" for x in inside).encode("utf-8")
    code, out, err = run_translate(capsys, model, data, tmp_path)
    assert code == 0, err
    # jsonl escapes U+0085/U+2028/U+2029: one record per line even for str.splitlines() readers
    assert len(out.decode("utf-8").splitlines()) == len(inside)
    assert [r["source"] for r in rows(out)] == [f"{x} dog." for x in inside]
    code, out, err = run_translate(capsys, model, data, tmp_path, fmt="text")
    assert code == 0 and out.count(b"\n") == len(inside) and b"\r" not in out


def test_run_eval_bom_crlf_give_the_same_hypotheses(model, tmp_path, capsys):
    results = []
    for variant in ("lf", "bom+crlf"):
        src, ref, hyp = tmp_path / f"{variant}.en", tmp_path / f"{variant}.de", tmp_path / f"{variant}.hyp"
        lf_src = "".join(line + "\n" for line in CLEAN).encode()
        lf_ref = "Ein Hund läuft.\nZwei Männer reden.\nEin Mädchen.\nLeute.\n".encode()
        if variant != "lf":
            lf_src, lf_ref = (b"\xef\xbb\xbf" + x.replace(b"\n", b"\r\n") for x in (lf_src, lf_ref))
        src.write_bytes(lf_src)
        ref.write_bytes(lf_ref)
        assert run_eval_main([str(model), str(src), str(hyp), "--reference-path", str(ref), *GEN]) == 0
        score = json.loads((tmp_path / f"{variant}.hyp.score.json").read_text())
        results.append((hyp.read_bytes(), score["bleu"], score["n_obs"]))
    assert results[0] == results[1]


# --- invalid UTF-8 ----------------------------------------------------------------------------------

BAD_BYTES = {"lone-continuation": b"\x80", "invalid-start": b"\xff", "overlong": b"\xc0\xaf",
             "utf8-surrogate": b"\xed\xa0\x80", "truncated": b"\xe2\x82"}


@pytest.mark.parametrize("kind", list(BAD_BYTES))
def test_invalid_utf8_names_the_line_or_is_replaced(capsys, model, tmp_path, clean_tokens, kind):
    lines = [line.encode() for line in CLEAN]
    lines.insert(2, b"bad " + BAD_BYTES[kind] + b" byte")
    data = b"\n".join(lines) + b"\n"
    code, out, err = run_translate(capsys, model, data, tmp_path)
    assert_one_line_error(code, err, "in.txt", "line 3", "not valid UTF-8", "--encoding-errors replace")
    assert out is None
    code, out, err = run_translate(capsys, model, data, tmp_path, "--encoding-errors", "replace")
    assert code == 0, err
    got = rows(out)
    assert "\ufffd" in got[2]["source"] and got[2]["source"].startswith("bad ")
    assert [t for i, t in enumerate(tokens(out)) if i != 2] == clean_tokens


def test_run_eval_invalid_utf8_in_the_reference(model, tmp_path, capsys):
    src, ref = tmp_path / "src.en", tmp_path / "ref.de"
    src.write_bytes(b"A dog.\nA cat.\n")
    ref.write_bytes(b"Ein Hund.\nEine \xff Katze.\n")
    argv = [str(model), str(src), str(tmp_path / "hyp"), "--reference-path", str(ref), *GEN]
    assert_one_line_error(run_eval_main(argv), capsys.readouterr().err, str(ref), "line 2", "UTF-8")
    assert run_eval_main(argv + ["--encoding-errors", "replace"]) == 0


# --- the reader, fuzzed -------------------------------------------------------------------------------

chunks = st.sampled_from([b"a", b" ", b"\n", b"\r", b"\r\n", b"\xef\xbb\xbf", b"\xc3\xa9", b"\xe2\x80\xa8",
                          b"\x00", b"\xff", b"\x80", b"\xed\xa0\x80", b"\xf0\x9f\x98\x80", b"\xe2\x82"])
raw_files = st.one_of(st.binary(max_size=200), st.lists(chunks, max_size=40).map(b"".join))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=raw_files)
def test_the_line_reader_on_arbitrary_bytes(data):
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    raw = body.split(b"\n")
    if raw[-1] == b"":
        raw.pop()
    replaced = decode_lines(data, "f.txt", errors="replace")
    assert len(replaced) == len(raw)  # one line per \n (plus an unterminated last one), nothing else
    for line, raw_line in zip(replaced, raw):
        assert "\n" not in line
        assert not any("\ud800" <= c <= "\udfff" for c in line)  # never surrogate-escaped text
        assert line == (raw_line[:-1] if raw_line.endswith(b"\r") else raw_line).decode("utf-8", "replace")
    bad = [i for i, r in enumerate(raw, start=1) if not _valid(r)]
    if bad:
        with pytest.raises(InputError, match=f"f.txt: line {bad[0]} is not valid UTF-8"):
            decode_lines(data, "f.txt")
    else:
        assert decode_lines(data, "f.txt") == replaced


def _valid(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False
