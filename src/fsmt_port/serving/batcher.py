"""Dynamic batching: one queue of sentences from all requests, one worker thread that owns the model(s).

A batch is cut from the sentences that share the oldest waiting sentence's generation settings
(different settings never share a batch), in arrival order, when one of these holds:

* it has ``max_batch_sentences`` sentences, or the next one would push its padded source
  (longest x count) over ``max_batch_tokens``;
* the oldest sentence has waited ``max_wait`` seconds (a lone request is not held longer);
* the batcher is closing (drain what is queued, do not wait).

The decode function sorts the batch by length (``Translator.generate_ids``). Decoding is
batch-independent, so a sentence's result is the same whatever it shares its batch with.

Each sentence carries a ``concurrent.futures.Future``. ``cancel()`` succeeds only while the
sentence is still queued; the worker marks it running when it takes it, so a client that goes
away cancels exactly its sentences that have not started. If a batch fails, its sentences are
retried one by one, so one bad sentence fails only its own request. The worker never dies of an
exception raised while decoding.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Hashable, Sequence

from fsmt_port.errors import RequestError
from fsmt_port.serving.metrics import ServerMetrics

#: decode(ids per sentence, group key) -> one result per sentence, in the same order.
DecodeFn = Callable[[list[list[int]], Hashable], list]


@dataclass(eq=False)
class QueuedSentence:
    ids: list[int]
    group: Hashable  # decoding settings; only equal groups share a batch
    future: Future = field(default_factory=Future)
    enqueued: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class BatchingSettings:
    max_batch_sentences: int = 32
    max_batch_tokens: int = 8192  # padded source tokens: longest * sentences
    max_wait: float = 0.005  # seconds the oldest sentence may wait for company
    max_queue: int = 2048  # sentences waiting; beyond that requests get 503


class DynamicBatcher:
    def __init__(self, decode: DecodeFn, settings: BatchingSettings, metrics: ServerMetrics | None = None) -> None:
        self.decode = decode
        self.settings = settings
        self.metrics = metrics or ServerMetrics()
        self._queue: list[QueuedSentence] = []
        self._cond = threading.Condition()
        self._closing = False
        self._busy_since: float | None = None
        self._seconds_per_sentence = 0.05  # running estimate, for Retry-After
        self._thread = threading.Thread(target=self._run, name="fsmt-serve-worker", daemon=True)

    # -- the request side (event loop) ----------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._closing

    def submit(self, ids: Sequence[list[int]], group: Hashable) -> list[Future]:
        """Queue one request's sentences (all or none); their futures resolve in the worker."""
        with self._cond:
            if self._closing:
                raise RequestError("the server is shutting down; retry on another instance", status=503,
                                   kind="shutting_down", retry_after=1)
            free = self.settings.max_queue - len(self._queue)
            if len(ids) > free:
                wait = max(1, round(len(self._queue) * self._seconds_per_sentence))
                raise RequestError(f"the queue is full ({len(self._queue)} of --max-queue "
                                   f"{self.settings.max_queue} sentences waiting); retry after {wait} s",
                                   status=503, kind="queue_full", limit="max_queue", retry_after=wait)
            items = [QueuedSentence(list(x), group) for x in ids]
            self._queue.extend(items)
            self.metrics.queue.set(len(self._queue))
            self._cond.notify()
        return [item.future for item in items]

    def cancel(self, futures: Sequence[Future]) -> int:
        """Cancel the sentences that have not started; returns how many were cancelled."""
        wanted = set(map(id, futures))
        cancelled = sum(1 for f in futures if f.cancel())
        with self._cond:
            self._queue = [item for item in self._queue if id(item.future) not in wanted or not item.future.cancelled()]
            self.metrics.queue.set(len(self._queue))
        self.metrics.cancelled.inc(cancelled)
        return cancelled

    def close(self, timeout: float | None = None) -> None:
        """Stop accepting; the worker decodes what is queued, then exits."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def queued(self) -> int:
        with self._cond:
            return len(self._queue)

    # -- the worker thread -----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._decode(batch)

    def _next_batch(self) -> list[QueuedSentence] | None:
        with self._cond:
            while True:
                self._queue = [item for item in self._queue if not item.future.cancelled()]
                if not self._queue:
                    if self._closing:
                        return None
                    self._cond.wait()
                    continue
                batch, full = self._candidates()
                deadline = self._queue[0].enqueued + self.settings.max_wait
                now = time.monotonic()
                if full or self._closing or now >= deadline:
                    break
                self._cond.wait(deadline - now)
            chosen = set(map(id, batch))
            self._queue = [item for item in self._queue if id(item) not in chosen]
            self.metrics.queue.set(len(self._queue))
        started = time.monotonic()
        running = [item for item in batch if item.future.set_running_or_notify_cancel()]
        for item in running:
            self.metrics.queue_wait.observe(started - item.enqueued)
        return running

    def _candidates(self) -> tuple[list[QueuedSentence], bool]:
        """The oldest sentence's group, in arrival order, within the limits; and whether it is full."""
        group = self._queue[0].group
        batch: list[QueuedSentence] = []
        longest = 0
        for item in self._queue:
            if item.group != group:
                continue
            width = max(longest, len(item.ids))
            if batch and width * (len(batch) + 1) > self.settings.max_batch_tokens:
                return batch, True
            batch.append(item)
            longest = width
            if len(batch) >= self.settings.max_batch_sentences:
                return batch, True
        return batch, False

    def _decode(self, batch: list[QueuedSentence]) -> None:
        if not batch:
            return
        started = time.monotonic()
        try:
            results = self.decode([item.ids for item in batch], batch[0].group)
        except Exception:  # noqa: BLE001 - one sentence must not fail the others: retry alone
            results = None
        if results is not None:
            for item, result in zip(batch, results):
                item.future.set_result(result)
        else:
            for item in batch:
                try:
                    item.future.set_result(self.decode([item.ids], item.group)[0])
                except Exception as err:  # noqa: BLE001 - reported to its request, the worker goes on
                    item.future.set_exception(err)
        elapsed = time.monotonic() - started
        self._seconds_per_sentence = 0.8 * self._seconds_per_sentence + 0.2 * elapsed / len(batch)
        self.metrics.batches.observe(len(batch))
        self.metrics.decode_time.observe(elapsed)
