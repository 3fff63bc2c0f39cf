"""``benchmarks/run.py --smoke`` runs end to end and writes its JSON and Markdown (no timing claims)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SYSTEMS = {"fsmt_port", "fsmt_port-bf16", "fsmt_port-int8", "transformers", "ct2", "ct2-int8",
           "fsmt_port-workers", "fsmt_port-int8-workers", "ct2-workers", "ct2-int8-workers"}


def load_run_script():
    """``benchmarks/run.py`` as a module (it imports its ``harness`` package from its own folder)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    spec = importlib.util.spec_from_file_location("benchmarks_run", REPO / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_harness_smoke_run(tmp_path):
    out = tmp_path / "results"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run.py"), "--smoke", "--threads", "1,2",
                           "--sentences", "6", "--work-dir", str(tmp_path / "work"), "--out-dir", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    report = json.loads((out / "results.json").read_text())
    rows = report["rows"]
    assert report["threads"] == [1, 2] and report["estimates"] == []
    expected = {("small", "beam1 x batch4"), ("small", "beam5 x batch4"), ("big", "beam5 x batch8, 5 tokens")}
    for workload, config in expected:
        for threads in (1, 2):
            systems = {r["system"] for r in rows if (r["workload"], r["config"], r["threads"]) == (workload, config,
                                                                                                   threads)}
            assert systems == SYSTEMS, (workload, config, threads, systems)
    assert len(rows) == len(expected) * 2 * len(SYSTEMS)  # measured rows only: no fairseq estimate among them
    for row in rows:
        assert row["seconds_median"] > 0 and row["target_tokens"] > 0
        assert None not in (row["fsmt_port_speedup"], row["speed_vs_transformers"], row["speed_vs_ct2"])
        same, total = map(int, row["top1_same_as_fsmt_port"].split("/"))
        assert total == row["sentences"]
        if row["system"] in ("fsmt_port", "ct2", "transformers", "fsmt_port-workers", "ct2-workers"):  # fp32
            # peers and the batches-across-threads runs: same hypotheses
            assert same == total, row
        if row["system"] == "ct2":
            assert row["speed_vs_ct2"] == 1.0
    small = [r for r in rows if r["workload"] == "small"]
    assert all(r["sentences"] == 6 and "bleu" not in r and "top1_same_as_fairseq" not in r for r in small)
    big = [r for r in rows if r["workload"] == "big"]
    assert all(r["target_tokens"] == 8 * 6 for r in big), [(r["system"], r["target_tokens"]) for r in big]

    memory = report["memory"][0]["rows"]
    assert [m["what"].split(" ")[0] for m in memory] == ["convert", "load"]
    assert all(m["peak_rss_mb"] > 0 for m in memory)

    table = (out / "results.md").read_text()
    assert table.count("\n| small |") == 2 * 2 * len(SYSTEMS) and table.count("\n| big |") == 2 * len(SYSTEMS)
    assert "| threads | system |" in table and "| x ct2 |" in table and "top-1 = fsmt_port" in table
    assert "| convert the fairseq checkpoint" in table and "fairseq (" not in table


def test_fairseq_estimates_are_a_footnote_not_a_row():
    run = load_run_script()
    from harness.report import fairseq_estimates, markdown

    def row(system: str, seconds: float) -> dict:
        return {"workload": "small", "config": "beam5 x batch32", "beam": 5, "batch_size": 32, "sentences": 1000,
                "threads": 2, "system": system, "seconds_median": seconds}

    rows = [row("fsmt_port", 10.0), row("transformers", 18.2), row("ct2", 9.0)]
    estimates = fairseq_estimates(rows)
    assert [(e["system"], e["seconds"], e["fsmt_port_speedup"]) for e in estimates] == [("fairseq", 13.6, 1.36)]
    assert fairseq_estimates([{**r, "sentences": 200} for r in rows]) == []  # not what the issue timed
    report = {"machine": {"cpu": "cpu", "logical_cpus": 2, "versions": {}}, "threads": [2], "repeats": 3,
              "smoke": False, "rows": rows, "estimates": estimates}
    table = markdown(report)
    assert table.count("\n| small |") == 3 and "| fairseq" not in table
    assert ("small, beam5 x batch32, threads 2: fairseq (not installed here), estimated from the issue's "
            "fairseq/transformers ratio (13.6 s / 18.2 s): ~13.6 s, fsmt_port 1.36× faster.") in table
    assert run.parse_args(["--threads", "1,2,1"]).threads == [1, 2]


@pytest.mark.parametrize("value", ["0", "1,x", ","])
def test_threads_must_be_positive_counts(value, capsys):
    run = load_run_script()
    with pytest.raises(SystemExit):
        run.parse_args(["--threads", value])
    assert "--threads" in capsys.readouterr().err


def test_per_shape_gemm_table_covers_every_shape_and_variant():
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gemm_shapes.py"), "--threads", "1",
                           "--rows", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 1 |")]
    assert len(rows) == 10  # every small and big Linear shape, one row count
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert all(float(c) > 0 for c in cells[4:9]) and cells[9] in {"fp32 row-major", "fp32 column-major",
                                                                       "fp32 oneDNN packed", "bf16", "int8"}


def test_cold_per_shape_table_streams_weights_for_the_chosen_model():
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gemm_shapes.py"), "--threads", "1",
                           "--rows", "1,5", "--cold", "--models", "small"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 1 |")]
    assert len(rows) == 10 and all("small:" in row for row in rows)  # 5 small shapes x 2 row counts
    assert all(float(c) > 0 for row in rows for c in row.strip("|").split("|")[4:9])


def test_startup_probe_times_the_first_output_line(converted):
    import golden

    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "startup.py"), "--model-dir",
                           str(converted(golden.SMALL_MODEL)), "--repeats", "1", "--threads", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    row = done.stdout.splitlines()[-1].strip("|").split("|")
    assert row[1].strip() == "1" and float(row[2]) > 0
