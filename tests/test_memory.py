"""Memory-leak check: fsmt-translate's peak RSS hardly grows with the number of lines.

A reduced run of ``benchmarks/rss_translate.py`` (whose full numbers, 1k and 10k
lines with small-en-de, are in ``benchmarks/RSS.md``): 200 and 2000 lines of
the flickr test set on the tiny model, greedy, each in a fresh
``fsmt-translate`` process. The model, torch and the allocator's working set
for the largest batch are the same for both runs; since fsmt-translate streams, only one window of
translations is held at a time (``benchmarks/stream_memory.py`` measures 10k vs 200k lines). A
per-batch leak of even 15 KB would add 27 MB over the 1800 extra lines (90
batches). The bound is generous on purpose: this is not a timing or tuning
assertion.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GROWTH_BOUND_MIB = 30.0


def load_benchmark():
    spec = importlib.util.spec_from_file_location("rss_translate", REPO / "benchmarks" / "rss_translate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("rss_translate", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_peak_rss_barely_grows_from_200_to_2000_lines(converted, tmp_path):
    bench = load_benchmark()
    model = converted("tiny-en-de-joint")
    extra = ["--num-beams", "1", "--max-len-b", "30", "--threads", "1"]
    peaks = {}
    for n in (200, 2000):
        source, out = tmp_path / f"in.{n}", tmp_path / f"out.{n}"
        bench.build_input(source, n)
        result = bench.measure_in_fresh_process(bench.translate_command(model, source, out, extra))
        assert result["returncode"] == 0, result["stderr_tail"]
        assert out.read_text(encoding="utf-8").count("\n") == n
        peaks[n] = result["peak_rss_mib"]
    growth = peaks[2000] - peaks[200]
    print(f"peak RSS: 200 lines {peaks[200]:.1f} MiB, 2000 lines {peaks[2000]:.1f} MiB, growth {growth:+.1f} MiB")
    assert growth < GROWTH_BOUND_MIB, peaks


def test_the_benchmark_builds_inputs_by_repeating_the_test_set(tmp_path):
    bench = load_benchmark()
    bench.build_input(tmp_path / "x", 2500)
    lines = (tmp_path / "x").read_text(encoding="utf-8").split("\n")
    assert len(lines) == 2501 and lines[-1] == "" and lines[0] == lines[1000] == lines[2000]
    assert bench.plateau_summary([(0.0, 1024 * k) for k in (1, 2, 3, 4, 5, 6, 7, 8)]) == "3 / 5 / 7 / 8"


def test_kept_hypotheses_do_not_pin_the_batch_buffers(converted):
    """What made 10k lines cost +221 MiB: every hypothesis was a view into its batch's buffers,
    and all num_beams of them were held. Kept hypotheses must own just their own data."""
    from fsmt_port import Translator

    translator = Translator.from_pretrained(converted("tiny-en-de-joint"))
    ids = translator.encode(["A man in an orange hat starring at something.", "Two dogs.", "", "A girl runs."])
    for keep, expected in ((1, 1), (None, 3)):
        results = translator.generate_ids(ids, batch_size=4, keep=keep, num_beams=3, max_len_b=12)
        for hypos in results:
            assert len(hypos) == expected
            for h in hypos:
                assert h.tokens.untyped_storage().nbytes() == h.tokens.numel() * h.tokens.element_size()
                assert h.positional_scores.untyped_storage().nbytes() == (
                    h.positional_scores.numel() * h.positional_scores.element_size())
    top = translator.translate(["Two dogs."], num_beams=3, nbest=1, max_len_b=12)[0].hypotheses
    assert len(top) == 1 and top[0].tokens == translator.translate(["Two dogs."], num_beams=3, max_len_b=12)[
        0].hypotheses[0].tokens


@pytest.mark.slow
def test_the_streaming_benchmark_runs_both_modes_and_compares_their_outputs(converted, capsys):
    """``benchmarks/stream_memory.py`` end to end on a few lines (its figures are in benchmarks/RSS.md)."""
    load_benchmark()
    spec = importlib.util.spec_from_file_location("stream_memory", REPO / "benchmarks" / "stream_memory.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--model-dir", str(converted("tiny-en-de-joint")), "--lines", "9", "--beams", "2",
                        "--threads", "1", "--extra", "--max-len-b 8"]) == 0
    out = capsys.readouterr().out
    runs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [(r["mode"], r["lines"], r["beams"]) for r in runs] == [("streaming", 9, 2), ("whole-file", 9, 2)]
    assert all(r["peak_rss_mib"] > 0 and r["cpu_s"] > 0 for r in runs)
    assert "\n| 9 | 2 | " in out
