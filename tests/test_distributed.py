"""Data parallel run_eval / run_eval_search under torchrun (2 CPU processes, gloo) = one process, byte for byte."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

import golden
from fsmt_port.errors import InputError
from fsmt_port.translation.distributed import DistContext
from fsmt_port.evaluation.run_eval import main as run_eval_main
from fsmt_port.evaluation.run_eval_search import main as search_main

TINY = "tiny-en-de-joint"
N_LINES = 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(module: str, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
               "127.0.0.1", "--master_port", str(free_port()), "-m", module, *args, "--threads", "1", "--quiet"]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture
def data(tmp_path):
    src, ref = tmp_path / "test.en", tmp_path / "test.de"
    src.write_text("".join(x + "\n" for x in golden.flickr_lines("en")[:N_LINES]), encoding="utf-8")
    ref.write_text("".join(x + "\n" for x in golden.flickr_lines("de")[:N_LINES]), encoding="utf-8")
    return src, ref


def test_run_eval_on_two_processes_equals_one_process(converted, data, tmp_path):
    model, (src, ref) = converted(TINY), data
    single = [str(model), str(src), str(tmp_path / "single.de"), "--reference-path", str(ref),
              "--score-path", str(tmp_path / "single.json"), "--bs", "4"]
    assert run_eval_main([*single, "--threads", "1", "--quiet"]) == 0
    done = torchrun("fsmt_port.run_eval", str(model), str(src), str(tmp_path / "multi.de"), "--reference-path",
                    str(ref), "--score-path", str(tmp_path / "multi.json"), "--bs", "4")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "multi.de").read_bytes() == (tmp_path / "single.de").read_bytes()
    one, two = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("single", "multi"))
    assert two["bleu"] == one["bleu"] and two["n_obs"] == N_LINES
    assert (one["world_size"], two["world_size"]) == (1, 2)
    # Rank 0 writes; the other rank leaves nothing behind (no temp files either).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["multi.de", "multi.json", "single.de", "single.json",
                                                          "test.de", "test.en"]


def test_run_eval_search_on_two_processes_equals_one_process(converted, data, tmp_path):
    model, (src, ref) = converted(TINY), data
    common = ["--reference-path", str(ref), "--search", "num_beams=1:2"]
    assert search_main([str(model), str(src), str(tmp_path / "single.de"), *common, "--threads", "1",
                        "--quiet"]) == 0
    done = torchrun("fsmt_port.run_eval_search", str(model), str(src), str(tmp_path / "multi.de"), *common)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "multi.de").read_bytes() == (tmp_path / "single.de").read_bytes()
    one, two = (json.loads((tmp_path / f"{n}.de.search" / "results.json").read_text()) for n in ("single", "multi"))
    assert [(r["num_beams"], r["bleu"]) for r in two["results"]] == [(r["num_beams"], r["bleu"]) for r in one["results"]]
    assert two["world_size"] == 2


def test_an_error_on_one_rank_stops_every_rank_with_the_message(converted, data, tmp_path):
    """A too-long line in rank 1's shard: both ranks exit with the error instead of hanging in a collective."""
    model, (src, ref) = converted(TINY), data
    lines = golden.flickr_lines("en")[:N_LINES - 1] + ["word " * 1100]
    src.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    done = torchrun("fsmt_port.run_eval", str(model), str(src), str(tmp_path / "multi.de"), "--reference-path",
                    str(ref), timeout=180)
    assert done.returncode != 0
    assert f"error: line {N_LINES} has" in done.stderr and "pass --truncate" in done.stderr
    assert not (tmp_path / "multi.de").exists()


@pytest.mark.parametrize("n_items,world_size", [(40, 2), (41, 2), (10, 3), (2, 4), (0, 2)])
def test_shards_are_contiguous_balanced_and_cover_everything(n_items, world_size):
    bounds = [DistContext(rank, world_size).shard_bounds(n_items) for rank in range(world_size)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n_items
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = [end - start for start, end in bounds]
    assert max(sizes) - min(sizes) <= 1


def test_a_single_process_runs_the_whole_list_and_raises_directly():
    context = DistContext()
    assert context.run_sharded(list("abc"), lambda shard, start: [f"{start}{x}" for x in shard]) == ["0a", "0b", "0c"]
    with pytest.raises(InputError):
        context.run_sharded(["x"], lambda shard, start: (_ for _ in ()).throw(InputError("bad")))
    assert context.broadcast(5) == 5 and context.device("cpu") == "cpu"
