"""Batches decoded side by side on CPU worker threads: fairseq's outputs, in input order, whatever the workers."""

from __future__ import annotations

import threading
import time

import pytest
import torch

import golden
from fsmt_port.errors import ConfigError, InputError
from fsmt_port.generation.generator import SequenceGenerator
from fsmt_port.translation.cli import main as translate_main
from fsmt_port.translation.translator import Translator
from fsmt_port.translation.workers import check_workers, map_on_workers, resolve_workers
from parity import mismatches

MODEL = "tiny-en-de-joint"


def test_results_come_back_in_item_order_each_thread_with_its_own_state_and_thread_share():
    torch.set_num_threads(2)
    states = []

    def make_state():
        state = {"thread": threading.get_ident(), "torch_threads": torch.get_num_threads()}
        states.append(state)
        return state

    def run(state, item):
        time.sleep(0.002 * (item % 3))  # uneven items: the threads interleave
        assert state["thread"] == threading.get_ident()
        return item * item, state["thread"]

    results = map_on_workers(list(range(20)), run, workers=2, make_state=make_state)
    assert [value for value, _ in results] == [i * i for i in range(20)]
    assert len(states) == 2 and len({s["thread"] for s in states}) == 2
    assert {thread for _, thread in results} == {s["thread"] for s in states}
    assert [s["torch_threads"] for s in states] == [1, 1]  # 2 threads shared by 2 workers
    assert torch.get_num_threads() == 2  # the caller's count is back


def test_one_worker_or_one_item_runs_in_the_calling_thread():
    caller = threading.get_ident()
    assert map_on_workers([1], lambda state, item: threading.get_ident(), workers=4) == [caller]
    assert map_on_workers([1, 2], lambda state, item: threading.get_ident(), workers=1) == [caller, caller]
    assert map_on_workers([], lambda state, item: item, workers=3) == []


def test_the_first_error_is_raised_and_stops_the_other_workers():
    started = []

    def run(state, item):
        started.append(item)
        if item == 1:
            raise InputError("line 2 is bad")
        time.sleep(0.01)
        return item

    with pytest.raises(InputError, match="line 2 is bad"):
        map_on_workers(list(range(50)), run, workers=2)
    assert len(started) < 50
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("workers,device,needle", [
    (0, "cpu", "workers must be an integer >= 1"),
    (-2, "cpu", "workers must be an integer >= 1"),
    (2, "cuda", "on cuda use one worker"),
])
def test_unusable_worker_counts_are_refused(workers, device, needle):
    with pytest.raises(ConfigError, match=needle):
        check_workers(workers, torch.device(device))
    assert check_workers(1, torch.device(device)) == 1


@pytest.mark.parametrize("threads,device,seeded,expected", [
    (2, "cpu", False, 2),  # auto: two batches side by side on two cores
    (8, "cpu", False, 2),  # two workers at most, each on 4 threads
    (1, "cpu", False, 1),  # one thread: nothing to share
    (2, "cpu", True, 1),  # a seeded sampling run keeps its one stream of draws
    (2, "cuda", False, 1),  # a GPU runs one batch at a time
])
def test_auto_workers_are_two_on_a_multi_threaded_cpu_else_one(threads, device, seeded, expected):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        assert resolve_workers(check_workers("auto", torch.device(device)), torch.device(device), seeded) == expected
    finally:
        torch.set_num_threads(before)
    assert resolve_workers(3, torch.device("cpu")) == 3  # a count given is kept
    with pytest.raises(ConfigError, match="seeded sampling run.*use one worker"):
        resolve_workers(2, torch.device("cpu"), seeded_sampling=True)


def _golden_texts(count):
    expected = golden.load_expected(MODEL)
    texts = {s["index"]: s["text"] for s in expected["sentences"]}
    config = next(c for c in expected["generation"]["configs"] if c["name"] == "beam5_lenpen1.0")
    results = [r for r in config["results"] if r["index"] in texts][:count]
    return [texts[r["index"]] for r in results], results


def test_two_workers_reproduce_fairseq_and_a_serial_run_at_their_thread_count_exactly(converted):
    texts, results = _golden_texts(40)
    serial = Translator.from_pretrained(converted(MODEL))
    parallel = Translator.from_pretrained(converted(MODEL), workers=2)
    ids = parallel.encode(texts)
    ours = parallel.generate_ids(ids, batch_size=5, num_beams=5, length_penalty=1.0)  # 8 batches, 1 thread each
    torch.set_num_threads(1)  # the thread count moves the last float bits; the workers ran at 1
    reference = serial.generate_ids(ids, batch_size=5, num_beams=5, length_penalty=1.0)
    problems, _ = mismatches({r["index"]: hypos for r, hypos in zip(results, ours)}, results)
    assert not problems, problems[:3]
    for mine, theirs in zip(ours, reference):
        assert [h.tokens.tolist() for h in mine] == [h.tokens.tolist() for h in theirs]
        assert [h.score for h in mine] == [h.score for h in theirs]
        assert all(torch.equal(a.positional_scores, b.positional_scores) for a, b in zip(mine, theirs))


def test_progress_counts_every_sentence_once_with_workers(converted):
    texts, _ = _golden_texts(23)

    class Count:
        n = 0

        def update(self, k):
            self.n += k

    progress = Count()
    Translator.from_pretrained(converted(MODEL), workers=2).translate(texts, batch_size=4, progress=progress,
                                                                      num_beams=2)
    assert progress.n == 23


def test_a_seeded_sampling_run_needs_one_worker(converted):
    translator = Translator.from_pretrained(converted(MODEL))
    with pytest.raises(ConfigError, match="workers must be an integer >= 1"):
        translator.workers = 0
    translator.workers = 2
    with pytest.raises(ConfigError, match="seeded sampling run.*use one worker"):
        translator.translate(["a dog runs .", "two men ."], batch_size=1, sampling=True, seed=3, num_beams=2)


def test_the_default_decodes_two_batches_on_two_threads_and_matches_one_worker(converted, monkeypatch):
    texts, results = _golden_texts(16)
    torch.set_num_threads(2)
    translator = Translator.from_pretrained(converted(MODEL))
    assert translator.workers == "auto" and translator.workers_for() == 2
    threads = set()
    generate = SequenceGenerator.generate

    def recording(self, *args, **kwargs):
        threads.add(threading.get_ident())
        return generate(self, *args, **kwargs)

    monkeypatch.setattr(SequenceGenerator, "generate", recording)
    ids = translator.encode(texts)
    ours = translator.generate_ids(ids, batch_size=4, num_beams=5, length_penalty=1.0)
    assert len(threads) == 2 and threading.get_ident() not in threads
    problems, _ = mismatches({r["index"]: hypos for r, hypos in zip(results, ours)}, results)
    assert not problems, problems[:3]
    threads.clear()
    sampled = translator.generate_ids(ids, batch_size=4, sampling=True, seed=5, num_beams=2)
    assert threads == {threading.get_ident()}  # auto: one worker for a seeded sampling run, no refusal
    translator.workers = 1
    assert [[h.tokens.tolist() for h in hs] for hs in translator.generate_ids(
        ids, batch_size=4, sampling=True, seed=5, num_beams=2)] == [[h.tokens.tolist() for h in hs] for hs in sampled]


def _translate(capsys, *argv):
    code = translate_main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_workers_write_what_one_worker_writes(capsys, converted, tmp_path):
    texts, _ = _golden_texts(30)
    source = tmp_path / "in.txt"
    source.write_text("".join(t.replace("\n", " ").replace("\r", " ") + "\n" for t in texts), encoding="utf-8")
    outputs = {}
    for workers in (1, 2):  # 2 threads: 1 worker on both, or 2 workers on 1 each (the serial run's count)
        out = tmp_path / f"out{workers}.jsonl"
        code, _, err = _translate(capsys, converted(MODEL), "-i", source, "-o", out, "--format", "jsonl",
                                  "--batch-size", 4, "--workers", workers, "--threads", workers, "--quiet")
        assert code == 0, err
        outputs[workers] = out.read_text(encoding="utf-8")
    assert outputs[2] == outputs[1] and outputs[1].count("\n") == 30


@pytest.mark.parametrize("argv,needle", [
    (["--workers", "0"], "workers must be an integer >= 1"),
    (["--workers", "2", "--sampling", "--seed", "1"], "use one worker"),
    (["--workers", "-1"], "workers must be an integer >= 1 or 'auto'"),
])
def test_cli_bad_workers_give_one_clear_line(capsys, converted, tmp_path, argv, needle):
    source = tmp_path / "in.txt"
    source.write_text("a dog runs .\ntwo men talk .\n", encoding="utf-8")
    out = tmp_path / "out.txt"
    code, stdout, err = _translate(capsys, converted(MODEL), "-i", source, "-o", out, "--batch-size", 1,
                                   "--quiet", *argv)
    assert code == 2 and stdout == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and needle in err, err
    assert not out.exists()
