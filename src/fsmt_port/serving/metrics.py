"""Prometheus text exposition (format 0.0.4) for the server's counters and histograms.

Written here rather than taken from ``prometheus_client``: the server needs three metric kinds,
no registry, no multiprocess mode and no push gateway, and the text format is a few lines.
Every metric is updated from the event loop or the one worker thread, so each holds a lock.
"""

from __future__ import annotations

import math
import threading
from typing import Iterable, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Seconds: from a millisecond (a warm single sentence) to a minute (a long queue).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Sentences per decoded batch.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        self.name, self.help, self.labelnames = name, help_text, tuple(labelnames)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> tuple[str, ...]:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name}: labels {sorted(labels)} != {sorted(self.labelnames)}")
        return tuple(str(labels[n]) for n in self.labelnames)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labelnames)
        self._values: dict[tuple[str, ...], float] = {} if labelnames else {(): 0.0}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return self.header() + [f"{self.name}{_labels(self.labelnames, k)} {_number(v)}" for k, v in items]


class Gauge(Counter):
    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Iterable[float], labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labelnames)
        self.buckets = tuple(sorted(buckets)) + (math.inf,)
        self._series: dict[tuple[str, ...], list[float]] = {}  # per label set: bucket counts..., sum, count

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            series = self._series.setdefault(key, [0.0] * (len(self.buckets) + 2))
            for index, bound in enumerate(self.buckets):
                if value <= bound:
                    series[index] += 1
            series[-2] += value
            series[-1] += 1

    def count(self, **labels: str) -> int:
        with self._lock:
            series = self._series.get(self._key(labels))
        return int(series[-1]) if series else 0

    def render(self) -> list[str]:
        lines = self.header()
        with self._lock:
            items = sorted((k, list(v)) for k, v in self._series.items())
        for key, series in items:
            for bound, cumulative in zip(self.buckets, series):
                le = 'le="' + _number(bound) + '"'
                lines.append(f"{self.name}_bucket{_labels(self.labelnames, key, le)} {_number(cumulative)}")
            lines.append(f"{self.name}_sum{_labels(self.labelnames, key)} {_number(series[-2])}")
            lines.append(f"{self.name}_count{_labels(self.labelnames, key)} {_number(series[-1])}")
        return lines


class ServerMetrics:
    """Everything ``GET /metrics`` shows. Error kinds are the ``kind`` field of error responses."""

    def __init__(self) -> None:
        p = "fsmt_serve_"
        self.requests = Counter(p + "requests_total", "HTTP requests answered, by route and status code",
                                ("route", "code"))
        self.sentences = Counter(p + "sentences_total", "sentences translated")
        self.cancelled = Counter(p + "sentences_cancelled_total",
                                 "queued sentences dropped because their client disconnected")
        self.source_tokens = Counter(p + "source_tokens_total", "source tokens of translated sentences (with </s>)")
        self.target_tokens = Counter(p + "target_tokens_total", "tokens of the best hypotheses (with </s>)")
        self.errors = Counter(p + "errors_total", "requests refused or failed, by kind", ("kind",))
        self.queue = Gauge(p + "queue_sentences", "sentences waiting for the worker")
        self.batches = Histogram(p + "batch_sentences", "sentences per decoded batch", BATCH_BUCKETS)
        self.queue_wait = Histogram(p + "queue_wait_seconds", "time a sentence waited before its batch started",
                                    LATENCY_BUCKETS)
        self.decode_time = Histogram(p + "batch_decode_seconds", "time to decode one batch", LATENCY_BUCKETS)
        self.latency = Histogram(p + "request_duration_seconds", "time from request to response, by route",
                                 LATENCY_BUCKETS, ("route",))

    def all(self) -> list[_Metric]:
        return [self.requests, self.sentences, self.cancelled, self.source_tokens, self.target_tokens,
                self.errors, self.queue, self.batches, self.queue_wait, self.decode_time, self.latency]

    def render(self) -> str:
        return "\n".join(line for metric in self.all() for line in metric.render()) + "\n"
