"""Load test of fsmt-serve on loopback: N concurrent clients, one sentence per request.

    .venv/bin/python benchmarks/serve_load.py                 # 64 clients, 1000 test_2016 sentences, beam 5
    .venv/bin/python benchmarks/serve_load.py --sentences 50 --clients 8   # a quick look

Steps (all on 127.0.0.1, every request and the whole run bounded in time):

1. convert the bundled small model (``tests/fixtures/small-en-de/model4.pt``) once;
2. offline reference: ``python -m fsmt_port.translate`` over the sentences (``--format jsonl``, the
   same beam, batch 32), timed without its start-up (the same command on one sentence);
3. ``python -m fsmt_port.serve`` with dynamic batching, then again with ``--max-batch-sentences 1``
   (batching off); each gets a short warm-up, then the clients send every sentence once;
4. every answer must equal the offline one (text and token ids), else the run fails;
5. throughput (sentences/s) and request latency percentiles, with the machine described, go to
   stdout (markdown) and ``benchmarks/_work/serve/results.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.report import cpu_name  # noqa: E402
from harness.workloads import FIXTURES, REPO, ensure_converted  # noqa: E402

WORK = REPO / "benchmarks" / "_work" / "serve"
REQUEST_TIMEOUT = 300  # seconds, per request
RUN_TIMEOUT = 3600  # seconds, per server run


def child_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}


def converted_model() -> Path:
    return ensure_converted(FIXTURES / "small-en-de" / "model4.pt", WORK / "small-en-de", "en", "de",
                            lambda message: print(message, file=sys.stderr))


def offline_run(model: Path, source: Path, beams: int, threads: list[str]) -> tuple[list[dict], float]:
    """``fsmt-translate`` over the sentences: the reference answers, and its translation time
    (wall time minus the same command's start-up on one sentence: imports and model loading)."""
    def timed(path: Path, out: Path) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "fsmt_port.translate", str(model), "--input", str(path), "--output",
                        str(out), "--force", "--format", "jsonl", "--num-beams", str(beams), "--nbest", "1",
                        "--batch-size", "32", "--quiet", *threads], check=True, env=child_env(), timeout=RUN_TIMEOUT)
        return time.perf_counter() - started

    one = WORK / "one.en"
    one.write_text(source.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    start_up = timed(one, WORK / "one.jsonl")
    out = WORK / f"offline.beam{beams}.jsonl"
    seconds = timed(source, out) - start_up
    return [json.loads(line)["hypotheses"][0] for line in out.read_text(encoding="utf-8").splitlines()], seconds


class Server:
    def __init__(self, model: Path, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "fsmt_port.serve", str(model), "--host", "127.0.0.1",
                                      "--port", "0", "--log-level", "warning", *args],
                                     stderr=subprocess.PIPE, text=True, env=child_env())
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            if match:
                self.url = match.group(1)
                return
            if not line and self.proc.poll() is not None:
                break
        self.proc.kill()
        raise RuntimeError("fsmt-serve did not start")

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=120)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


class Connection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: the load generator shares the CPUs with
    the server, so it should cost as little as possible (httpx costs several times more per request)."""

    def __init__(self, url: str) -> None:
        self.host, self.port = url.removeprefix("http://").split(":")
        self.reader = self.writer = None

    async def post(self, path: str, body: dict) -> dict:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, int(self.port))
        data = json.dumps(body).encode()
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        answer = json.loads(await self.reader.readexactly(length))
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {answer}")
        return answer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def load(url: str, lines: list[str], clients: int, beams: int) -> tuple[float, list[float], list[dict]]:
    """``clients`` connections take the next sentence until none is left; returns wall time, latencies, answers."""
    answers: list[dict | None] = [None] * len(lines)
    latencies: list[float] = []
    next_index = iter(range(len(lines)))
    warm = Connection(url)
    for sentence in lines[:8]:  # warm-up
        await warm.post("/translate", {"text": sentence, "num_beams": beams})
    warm.close()

    async def client() -> None:
        connection = Connection(url)
        try:
            for index in next_index:
                started = time.perf_counter()
                answer = await asyncio.wait_for(connection.post(
                    "/translate", {"text": lines[index], "num_beams": beams, "return_tokens": True}), REQUEST_TIMEOUT)
                latencies.append(time.perf_counter() - started)
                answers[index] = answer["hypotheses"][0][0]
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(client() for _ in range(clients))), RUN_TIMEOUT)
    return time.perf_counter() - started, latencies, answers  # type: ignore[return-value]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def mean_batch(url: str) -> float:
    import urllib.request

    with urllib.request.urlopen(url + "/metrics", timeout=30) as answer:
        text = answer.read().decode()
    values = dict(re.findall(r"^fsmt_serve_batch_sentences_(sum|count) (\S+)$", text, re.M))
    return float(values["sum"]) / max(1.0, float(values["count"]))


def machine(threads: int | None) -> dict:
    import torch

    return {"cpu": cpu_name(), "logical_cpus": os.cpu_count(), "torch_threads": threads or torch.get_num_threads(),
            "load_average_at_start": os.getloadavg(), "python": platform.python_version(),
            "torch": torch.__version__, "platform": platform.platform()}


def run_server(model: Path, lines: list[str], reference: list[dict], args: argparse.Namespace, *extra: str) -> dict:
    threads = ["--threads", str(args.threads)] if args.threads else []
    server = Server(model, "--num-beams", str(args.beams), "--max-queue", str(max(2048, args.clients)), *threads,
                    *extra)
    try:
        wall, latencies, answers = asyncio.run(load(server.url, lines, args.clients, args.beams))
        batch = mean_batch(server.url)
    finally:
        code = server.stop()
    wrong = [i for i, (got, want) in enumerate(zip(answers, reference))
             if got["text"] != want["text"] or got["tokens"] != want["tokens"]]
    if wrong:
        raise SystemExit(f"{len(wrong)} answers differ from offline fsmt-translate, first at line {wrong[0] + 1}")
    return {"seconds": wall, "sentences_per_second": len(lines) / wall, "mean_batch_sentences": batch,
            "latency_p50": percentile(latencies, 50), "latency_p95": percentile(latencies, 95),
            "latency_p99": percentile(latencies, 99), "exit_code_after_sigterm": code, "server_args": list(extra)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients (default: %(default)s)")
    parser.add_argument("--sentences", type=int, default=1000, help="first N test_2016 sentences (default: all)")
    parser.add_argument("--beams", type=int, default=5, help="num_beams everywhere (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of fsmt-translate and fsmt-serve (default: torch's choice)")
    parser.add_argument("--max-wait-ms", default="5", help="the batching server's --max-wait-ms (default: 5)")
    parser.add_argument("--max-batch-sentences", default="64", help="the batching server's (default: 64)")
    args = parser.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)

    lines = (FIXTURES / "test_2016_flickr.en").read_text(encoding="utf-8").splitlines()[: args.sentences]
    source = WORK / "source.en"
    source.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    model = converted_model()
    results = {"machine": machine(args.threads), "sentences": len(lines), "clients": args.clients, "beams": args.beams}
    threads = ["--threads", str(args.threads)] if args.threads else []
    reference, offline = offline_run(model, source, args.beams, threads)
    results["offline"] = {"seconds": offline, "sentences_per_second": len(lines) / offline}
    results["batching"] = run_server(model, lines, reference, args, "--max-batch-sentences",
                                     args.max_batch_sentences, "--max-wait-ms", args.max_wait_ms)
    results["no_batching"] = run_server(model, lines, reference, args, "--max-batch-sentences", "1")
    (WORK / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    m = results["machine"]
    print(f"machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, torch {m['torch']} ({m['torch_threads']} threads), "
          f"load average at start {m['load_average_at_start'][0]:.1f}")
    print(f"{len(lines)} sentences, beam {args.beams}, {args.clients} concurrent clients, one sentence per request; "
          "every answer identical to offline fsmt-translate\n")
    print("| | sentences/s | vs offline | p50 latency | p95 | p99 | mean batch |")
    print("|---|---|---|---|---|---|---|")
    print(f"| offline fsmt-translate (batch 32, start-up excluded) | {results['offline']['sentences_per_second']:.1f} | 1.00x | | | | 32 |")
    for name, key in (("fsmt-serve, dynamic batching", "batching"), ("fsmt-serve, batching off (max batch 1)",
                                                                     "no_batching")):
        r = results[key]
        print(f"| {name} | {r['sentences_per_second']:.1f} | "
              f"{r['sentences_per_second'] / results['offline']['sentences_per_second']:.2f}x | "
              f"{r['latency_p50'] * 1000:.0f} ms | {r['latency_p95'] * 1000:.0f} ms | {r['latency_p99'] * 1000:.0f} ms | "
              f"{r['mean_batch_sentences']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
