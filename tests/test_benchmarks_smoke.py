"""``benchmarks/run.py --smoke`` runs end to end and writes its JSON and Markdown (no timing claims)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SYSTEMS = {"fsmt_port", "fsmt_port-bf16", "fsmt_port-int8", "transformers", "ct2", "ct2-int8"}


def test_benchmark_harness_smoke_run(tmp_path):
    out = tmp_path / "results"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run.py"), "--smoke", "--work-dir",
                           str(tmp_path / "work"), "--out-dir", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    report = json.loads((out / "results.json").read_text())
    rows = report["rows"]
    expected = {("small", "beam1 x batch4"), ("small", "beam5 x batch4"), ("big", "beam5 x batch8, 5 tokens")}
    for workload, config in expected:
        systems = {r["system"] for r in rows if (r["workload"], r["config"]) == (workload, config)}
        assert systems == SYSTEMS, (workload, config, systems)
    for row in rows:
        assert row["seconds_median"] > 0 and row["target_tokens"] > 0
        assert row["fsmt_port_speedup"] is not None and row["speed_vs_transformers"] is not None
        same, total = map(int, row["top1_same_as_fsmt_port"].split("/"))
        assert total == row["sentences"]
        if row["system"] in ("fsmt_port", "ct2", "transformers"):  # fp32 peers: same hypotheses
            assert same == total, row
    big = [r for r in rows if r["workload"] == "big"]
    assert all(r["target_tokens"] == 8 * 6 for r in big), [(r["system"], r["target_tokens"]) for r in big]

    memory = report["memory"][0]["rows"]
    assert [m["what"].split(" ")[0] for m in memory] == ["convert", "load"]
    assert all(m["peak_rss_mb"] > 0 for m in memory)

    table = (out / "results.md").read_text()
    assert table.count("\n| small |") == 12 and table.count("\n| big |") == 6
    assert "top-1 = fsmt_port" in table and "| convert the fairseq checkpoint" in table
