"""run_eval: translations in input order, a complete score JSON, OOM retry, and one clear error per bad input."""

from __future__ import annotations

import json
import time

import pytest
import sacrebleu
import torch

import golden
from fsmt_port.evaluation.oom import is_out_of_memory
from fsmt_port.evaluation.scoring import BleuScorer
from fsmt_port.generation.config import GenerationConfig
from fsmt_port.evaluation.run_eval import build_parser, main
from fsmt_port.translation.translator import Translator

TINY = "tiny-en-de-joint"
SMALL_HYPS = golden.FIXTURES / "small-en-de" / "test_2016_flickr.model4.hyp.de"


@pytest.fixture
def pair(tmp_path):
    """(input, reference) files with the first n lines of the flickr test set."""
    def make(n: int):
        src, ref = tmp_path / f"src{n}.en", tmp_path / f"ref{n}.de"
        src.write_text("".join(line + "\n" for line in golden.flickr_lines("en")[:n]), encoding="utf-8")
        ref.write_text("".join(line + "\n" for line in golden.flickr_lines("de")[:n]), encoding="utf-8")
        return src, ref
    return make


def run(model, src, ref, out, score, *extra) -> int:
    return main([str(model), str(src), str(out), "--reference-path", str(ref), "--score-path", str(score),
                 "--threads", "1", "--quiet", *extra])


def test_writes_translations_in_input_order_and_a_complete_score_json(converted, pair, tmp_path):
    model = converted(TINY)
    src, ref = pair(24)
    out, score = tmp_path / "hyps.de", tmp_path / "score.json"
    started = time.perf_counter()
    assert run(model, src, ref, out, score, "--bs", "5", "--length-penalty", "0.8", "--info", "ci run") == 0
    elapsed = time.perf_counter() - started

    lines = golden.flickr_lines("en")[:24]
    expected = [t.hypotheses[0].text for t in Translator.from_pretrained(model).translate(lines, length_penalty=0.8)]
    assert out.read_text(encoding="utf-8") == "".join(h + "\n" for h in expected)

    data = json.loads(score.read_text())
    refs = golden.flickr_lines("de")[:24]
    metric = sacrebleu.BLEU()
    plain = metric.corpus_score(expected, [refs])
    assert data["bleu"] == pytest.approx(plain.score, abs=1e-12)
    assert data["signature"] == str(metric.get_signature()) and "tok:13a" in data["signature"]
    assert data["sacrebleu"].startswith("BLEU|nrefs:1") and f"= {plain.score:.2f}" in data["sacrebleu"]
    # runtime is the decoding time in seconds: part of this call's wall time (not ms, not a timestamp)
    assert data["n_obs"] == 24 and isinstance(data["runtime"], float) and data["runtime"] <= elapsed + 1e-3
    assert data["seconds_per_sample"] == pytest.approx(data["runtime"] / 24, rel=1e-2)
    resolved = GenerationConfig.from_pretrained(model).update(length_penalty=0.8).to_dict()
    assert {k: data[k] for k in resolved} == resolved  # every argument, resolved, not only the overrides
    assert data["generation_overrides"] == {"length_penalty": 0.8}
    assert data["model_dirs"] == [str(model.resolve())]
    assert (data["dtype"], data["device"], data["world_size"], data["batch_size"]) == ("fp32", "cpu", 1, 5)
    assert data["info"] == "ci run" and data["threads"] == 1


def test_score_path_defaults_next_to_the_output(converted, pair, tmp_path):
    src, ref = pair(3)
    out = tmp_path / "sub" / "hyps.de"
    assert main([str(converted(TINY)), str(src), str(out), "--reference-path", str(ref), "--quiet"]) == 0
    assert json.loads((tmp_path / "sub" / "hyps.de.score.json").read_text())["n_obs"] == 3


def test_parser_takes_several_models_and_the_bs_alias():
    args = build_parser().parse_args(["m1", "m2", "m3", "in.en", "out.de", "--reference-path", "r", "--bs", "7",
                                      "--num-beams", "4", "--early-stopping", "false"])
    assert args.model_dirs == ["m1", "m2", "m3"] and (args.input, args.output) == ("in.en", "out.de")
    assert (args.batch_size, args.num_beams, args.early_stopping) == (7, 4, False)


def test_cached_reference_statistics_give_sacrebleus_plain_score():
    refs = golden.flickr_lines("de")[:50]
    hyps = golden.flickr_lines("de")[50:100]
    scorer = BleuScorer(refs)
    for candidate in (hyps, refs, [h.upper() for h in hyps]):
        assert scorer.score(candidate)["bleu"] == sacrebleu.BLEU().corpus_score(candidate, [refs]).score


# --- out of memory ---------------------------------------------------------------------------------

@pytest.mark.parametrize("error", [RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to "
                                                "allocate 1234 bytes"),
                                   torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"),
                                   RuntimeError("CUDA error: out of memory")])
def test_out_of_memory_is_recognised(error):
    assert is_out_of_memory(error)


def test_other_errors_are_not_out_of_memory():
    assert not is_out_of_memory(RuntimeError("shape mismatch")) and not is_out_of_memory(ValueError("x"))


def _generator_that_fits(monkeypatch, limit: int) -> list[int]:
    """SequenceGenerator.generate raises a CPU OOM above ``limit`` sentences; returns the batch sizes seen."""
    from fsmt_port.generation import generator as generator_module

    seen: list[int] = []
    real = generator_module.SequenceGenerator.generate

    def generate(self, input_ids, attention_mask=None):
        seen.append(input_ids.size(0))
        if input_ids.size(0) > limit:
            raise RuntimeError(f"DefaultCPUAllocator: can't allocate memory: batch of {input_ids.size(0)}")
        return real(self, input_ids, attention_mask)

    monkeypatch.setattr(generator_module.SequenceGenerator, "generate", generate)
    return seen


def test_out_of_memory_halves_the_batch_retries_and_warns(converted, pair, tmp_path, monkeypatch, capsys):
    model = converted(TINY)
    src, ref = pair(20)
    assert run(model, src, ref, tmp_path / "plain.de", tmp_path / "plain.json", "--bs", "16") == 0
    seen = _generator_that_fits(monkeypatch, limit=5)
    capsys.readouterr()
    assert run(model, src, ref, tmp_path / "oom.de", tmp_path / "oom.json", "--bs", "16") == 0
    err = capsys.readouterr().err
    assert "warning: out of memory on a batch of 16 sentences; retrying with batch size 8" in err
    assert "warning: out of memory on a batch of 8 sentences; retrying with batch size 4" in err
    assert seen[:3] == [16, 8, 4] and max(seen[3:]) <= 4  # the smaller size sticks
    assert (tmp_path / "oom.de").read_bytes() == (tmp_path / "plain.de").read_bytes()
    assert json.loads((tmp_path / "oom.json").read_text())["bleu"] == json.loads(
        (tmp_path / "plain.json").read_text())["bleu"]


def test_out_of_memory_on_a_single_sentence_is_one_clear_error(converted, pair, tmp_path, monkeypatch, capsys):
    src, ref = pair(3)
    _generator_that_fits(monkeypatch, limit=0)
    out = tmp_path / "hyps.de"
    assert run(converted(TINY), src, ref, out, tmp_path / "s.json", "--bs", "2") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: out of memory translating a single sentence") and not out.exists()


# --- bad input: one clear line, exit 2, nothing written ---------------------------------------------

def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case,expected", [
    ("mismatch", "the reference has 2 lines but the input"),
    ("empty_input", "input file is empty"),
    ("empty_reference", "reference file is empty"),
    ("missing_input", "input file not found"),
    ("missing_reference", "reference file not found"),
    ("input_is_folder", "the input path is a folder, not a file"),
    ("bad_utf8", "line 2 is not valid UTF-8"),
    ("output_is_folder", "output is a folder"),
])
def test_bad_inputs_fail_with_one_clear_line(case, expected, tmp_path, capsys):
    src = _write(tmp_path / "in.en", b"A dog.\nA cat.\nA bird.\n")
    ref = _write(tmp_path / "ref.de", b"Ein Hund.\nEine Katze.\nEin Vogel.\n")
    out = tmp_path / "out.de"
    if case == "mismatch":
        _write(ref, b"Ein Hund.\nEine Katze.\n")
    elif case == "empty_input":
        _write(src, b"")
    elif case == "empty_reference":
        _write(ref, b"\xef\xbb\xbf")  # a BOM alone is empty too
    elif case == "missing_input":
        src = tmp_path / "nope.en"
    elif case == "missing_reference":
        ref = tmp_path / "nope.de"
    elif case == "input_is_folder":
        src = tmp_path
    elif case == "bad_utf8":
        _write(src, b"A dog.\nA \xff cat.\nA bird.\n")
    elif case == "output_is_folder":
        out = tmp_path
    # The model folder does not exist: the data checks must fail first, before any model is loaded.
    code = main([str(tmp_path / "no-model"), str(src), str(out), "--reference-path", str(ref), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    named = {"mismatch": ref, "empty_input": src, "empty_reference": ref, "missing_input": src,
             "missing_reference": ref, "input_is_folder": src, "bad_utf8": src, "output_is_folder": out}[case]
    assert str(named) in err[0]
    assert not (tmp_path / "out.de").exists()


def test_a_missing_model_folder_is_one_clear_line(pair, tmp_path, capsys):
    src, ref = pair(2)
    assert main([str(tmp_path / "no-model"), str(src), str(tmp_path / "o"), "--reference-path", str(ref)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-model" in err[0]


# --- fairseq's number ------------------------------------------------------------------------------

@pytest.mark.slow
def test_small_en_de_model4_reproduces_fairseqs_hypotheses_and_bleu(converted, tmp_path):
    """All 1000 flickr lines, beam 5, lenpen 1.0: fairseq's exact file and BLEU 35.28."""
    out, score = tmp_path / "hyps.de", tmp_path / "score.json"
    start = time.perf_counter()
    code = main([str(converted("small-en-de")), str(golden.FIXTURES / "test_2016_flickr.en"), str(out),
                 "--reference-path", str(golden.FIXTURES / "test_2016_flickr.de"), "--score-path", str(score),
                 "--num-beams", "5", "--length-penalty", "1.0", "--max-tokens", "2048", "--threads", "2", "--quiet"])
    elapsed = time.perf_counter() - start
    assert code == 0
    assert out.read_bytes() == SMALL_HYPS.read_bytes()
    data = json.loads(score.read_text())
    assert f"{data['bleu']:.2f}" == "35.28" and data["n_obs"] == 1000
    print(f"small-en-de model4, 1000 lines: {elapsed:.1f} s")


def test_workers_write_what_one_worker_writes_and_retry_out_of_memory_batches(converted, pair, tmp_path,
                                                                             monkeypatch, capsys):
    model = converted(TINY)
    src, ref = pair(20)
    assert run(model, src, ref, tmp_path / "plain.de", tmp_path / "plain.json", "--bs", "4") == 0
    # 2 threads shared by 2 workers: each decodes on 1 thread, as the --threads 1 run above
    assert run(model, src, ref, tmp_path / "w.de", tmp_path / "w.json", "--bs", "4", "--workers", "2",
               "--threads", "2") == 0
    assert (tmp_path / "w.de").read_bytes() == (tmp_path / "plain.de").read_bytes()
    data = json.loads((tmp_path / "w.json").read_text())
    assert data["workers"] == 2 and data["bleu"] == json.loads((tmp_path / "plain.json").read_text())["bleu"]

    seen = _generator_that_fits(monkeypatch, limit=3)
    capsys.readouterr()
    assert run(model, src, ref, tmp_path / "oom.de", tmp_path / "oom.json", "--bs", "8", "--workers", "2",
               "--threads", "2") == 0
    err = capsys.readouterr().err
    assert "warning: out of memory on a batch of 8 sentences; retrying with batch size 4" in err
    assert "retrying with batch size 2" in err
    decoded = [n for n in seen if n <= 3]  # the calls that fit: every sentence once, in halves of halves
    assert sum(decoded) == 20 and set(decoded) == {2}
    assert (tmp_path / "oom.de").read_bytes() == (tmp_path / "plain.de").read_bytes()
