"""Data parallel fsmt-translate, run_eval and run_eval_search under torchrun (2 CPU processes, gloo) = one
process, byte for byte; a killed 2-process translation resumes."""

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
from fsmt_port.translation.cli import main as translate_main

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


# --- fsmt-translate under torchrun: windows round robin, parts assembled by rank 0 ---------------------

def test_translate_on_two_processes_equals_one_process(converted, data, tmp_path):
    model, (src, _) = converted(TINY), data
    common = ["-i", str(src), "--buffer-size", "7", "--num-beams", "2", "--nbest", "2", "--bs", "3"]
    assert translate_main([str(model), *common, "-o", str(tmp_path / "single.de"), "--threads", "1",
                           "--quiet"]) == 0
    done = torchrun("fsmt_port.translate", str(model), *common, "-o", str(tmp_path / "multi.de"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "multi.de").read_bytes() == (tmp_path / "single.de").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["multi.de", "single.de", "test.de", "test.en"]


@pytest.mark.slow
def test_a_killed_two_process_translation_resumes(converted, tmp_path):
    from test_resume import N_LINES, WINDOW, argv, committed_lines, kill_after_first_commit, state_path, write_input

    from fsmt_port.translation.windows import lines_in_windows

    model, source = converted(TINY), write_input(tmp_path / "in.en", N_LINES)
    single, out = tmp_path / "single.de", tmp_path / "multi.de"
    assert translate_main(argv(model, source, single)) == 0
    states = [state_path(out, rank, 2) for rank in range(2)]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), "-m", "fsmt_port.translate", *argv(model, source, out)]
    kill_after_first_commit(command, states, env={**os.environ, "OMP_NUM_THREADS": "1"})
    committed = {rank: committed_lines(s) for rank, s in enumerate(states) if s.exists()}
    assert committed and not out.exists()

    assert translate_main(argv(model, source, out)) == 2  # one process cannot continue a 2-process run
    done = torchrun("fsmt_port.translate", *argv(model, source, out))
    assert done.returncode == 0, done.stderr[-3000:]
    for rank, lines in committed.items():
        rest = lines_in_windows(N_LINES, WINDOW, rank, 2) - lines
        assert f"rank {rank}: resumed after {lines} lines; translating {rest} more" in done.stderr, done.stderr
    assert out.read_bytes() == single.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.en", "multi.de", "single.de"]
