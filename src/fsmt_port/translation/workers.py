"""Several batches decoded at once on CPU worker threads, each with its share of the intra-op threads.

Why: a decoding step is a few dozen small GEMMs and a few hundred small ops. Split across 2 intra-op
threads, each op waits for both halves, and the small ones (torch's CPU flash attention, the
element-wise ops, int8 activation quantization) barely speed up. Two batches on two threads with
one intra-op thread each keep both cores busy instead: 1.2-1.3x the throughput at beam 5 over
batches of 32 and 128 on 2 cores, fp32 and int8 (``benchmarks/RESULTS.md``, session 8). torch releases the GIL inside its ops, and
batches are decoded independently: the tokens are those of one batch after the other, and so are the
scores, bit for bit, when that serial run uses the workers' thread count (threads move the last bits).
CTranslate2's ``inter_threads`` is the same idea.

``workers="auto"`` (the default of ``fsmt-translate``, ``run_eval`` and ``Translator``) is ``AUTO_WORKERS``
on a CPU with at least that many intra-op threads, else one: one worker for a GPU, a single thread, or a
seeded sampling run (whose one stream of draws follows the batch order). A window of one batch always
runs on the calling thread with all the threads. Two, not one per core: each worker holds one batch's
caches, and two already keep two cores busy (the only count measured, ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import threading
from typing import Callable, Sequence, TypeVar

import torch

from fsmt_port.errors import ConfigError

Item = TypeVar("Item")
Result = TypeVar("Result")
State = TypeVar("State")

AUTO = "auto"
#: the worker count "auto" chooses where it can
AUTO_WORKERS = 2

#: how often the main thread wakes while it waits, so Ctrl-C is not held back by a join
_POLL_SECONDS = 0.2


def check_workers(workers: int | str, device: torch.device) -> int | str:
    """``workers`` if usable on ``device``: "auto", or a positive count, more than one only on CPU."""
    if workers == AUTO:
        return AUTO
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ConfigError(f"workers must be an integer >= 1 or {AUTO!r}, got {workers!r}")
    if workers > 1 and device.type != "cpu":
        raise ConfigError(f"workers={workers} decodes batches side by side on CPU threads; on {device.type} "
                          "use one worker (a GPU runs one batch at a time)")
    return workers


def resolve_workers(workers: int | str, device: torch.device, seeded_sampling: bool = False) -> int:
    """The worker count to decode with: ``workers`` as given, or what "auto" means here (module docstring)."""
    if workers != AUTO:
        if workers > 1 and seeded_sampling:
            raise ConfigError(f"a seeded sampling run draws one stream over the batches in order; with "
                              f"workers={workers} the order would depend on thread timing: use one worker "
                              "or no seed")
        return workers
    if device.type != "cpu" or seeded_sampling:
        return 1
    return min(AUTO_WORKERS, torch.get_num_threads())


def map_on_workers(items: Sequence[Item], run: Callable[[State, Item], Result], workers: int,
                   make_state: Callable[[], State] = lambda: None) -> list[Result]:
    """``[run(state, item) for item in items]``, in order, on up to ``workers`` threads.

    Each thread builds its own ``state`` (e.g. a ``SequenceGenerator``, which holds one batch's
    caches) and runs with ``torch.get_num_threads() // workers`` intra-op threads (at least one); the
    caller's thread count is restored afterwards. The first error stops the other threads after
    their current item and is raised here; so is Ctrl-C, once the current items are done.
    """
    workers = min(workers, len(items))
    if workers <= 1:
        state = make_state()
        return [run(state, item) for item in items]
    threads_before = torch.get_num_threads()
    per_worker = max(1, threads_before // workers)
    results: list = [None] * len(items)
    errors: list[BaseException] = []
    lock = threading.Lock()
    next_index = iter(range(len(items)))

    def work() -> None:
        try:
            torch.set_num_threads(per_worker)  # this thread's OpenMP team (per-thread in torch's OpenMP build)
            state = make_state()
            while True:
                with lock:
                    index = None if errors else next(next_index, None)
                if index is None:
                    return
                results[index] = run(state, items[index])
        except BaseException as error:  # noqa: BLE001  (re-raised in the calling thread)
            with lock:
                errors.append(error)

    threads = [threading.Thread(target=work, name=f"fsmt-worker-{n}") for n in range(workers)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(_POLL_SECONDS)
    except KeyboardInterrupt as interrupt:
        with lock:
            errors.append(interrupt)  # the workers stop after their current item
        for thread in threads:
            thread.join()
        raise
    finally:
        torch.set_num_threads(threads_before)  # torch's count is process-wide: the workers lowered it
    if errors:
        raise errors[0]
    return results
