"""A real ``python -m fsmt_port.serve`` process on 127.0.0.1: concurrent clients over TCP get exactly
the offline translations; a client that hangs up has its queued sentences cancelled; SIGTERM stops accepting, finishes the request in flight and exits 0; a
taken port is one clear line and exit 2. Loopback only; every wait is bounded."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

import golden
from fsmt_port.translation.translator import Translator
from hub_cache import add_snapshot, folder_files, hub_env
from serving import SRC, ServerProcess, assert_same_as_offline

SENTENCES = golden.flickr_lines("en")[20:32]


def post(url: str, body: dict, timeout: float = 120) -> tuple[int, dict]:
    request = urllib.request.Request(url + "/translate", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def metric(url: str, name: str) -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=30) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(name)


@pytest.fixture(scope="module")
def small(converted):
    return converted("small-en-de")


@pytest.fixture(scope="module")
def offline(small):
    torch.set_num_threads(2)
    translator = Translator.from_pretrained(small)
    return {s: translator.translate([s], num_beams=4)[0] for s in SENTENCES}


@pytest.mark.slow
def test_concurrent_clients_then_graceful_sigterm(small, offline):
    server = ServerProcess(small, "--num-beams", "4", "--max-wait-ms", "5000", "--threads", "2")
    try:
        with ThreadPoolExecutor(len(SENTENCES)) as pool:
            answers = list(pool.map(lambda s: post(server.url, {"text": s}), SENTENCES))
        for sentence, (status, data) in zip(SENTENCES, answers):
            assert status == 200, data
            assert_same_as_offline(data["hypotheses"][0], offline[sentence])
        batches = metric(server.url, "fsmt_serve_batch_sentences_count")
        assert batches < len(SENTENCES)  # concurrent requests shared batches

        # A client that sends 3 sentences and hangs up while they wait: all 3 are cancelled.
        body = json.dumps({"text": SENTENCES[:3]}).encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as raw:
            raw.sendall(b"POST /translate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            _wait_for_metric(server.url, "fsmt_serve_queue_sentences", 3)
        _wait_for_metric(server.url, "fsmt_serve_sentences_cancelled_total", 3)
        assert metric(server.url, "fsmt_serve_queue_sentences") == 0

        # One request in flight (it waits up to --max-wait-ms for company), then SIGTERM.
        in_flight: dict = {}
        thread = threading.Thread(target=lambda: in_flight.update(answer=post(server.url, {"text": SENTENCES[0]})))
        thread.start()
        _wait_for_metric(server.url, "fsmt_serve_queue_sentences", 1)
        server.proc.send_signal(signal.SIGTERM)
        refused = _wait_until_refused(server.port)
        thread.join(timeout=120)
        code, log = server.terminate(send=False)
    finally:
        server.stop()
    assert refused, "the server still accepted connections after SIGTERM"
    status, data = in_flight["answer"]
    assert status == 200 and data["translations"] == [offline[SENTENCES[0]].hypotheses[0].text]
    assert code == 0, log
    assert "fsmt-serve: stopped" in log and "Traceback" not in log


def test_a_hub_id_is_served(converted, tmp_path):
    folder = converted("tiny-en-de-joint")
    add_snapshot(tmp_path / "hub", "someone/tiny-en-de", folder_files(folder))
    server = ServerProcess("someone/tiny-en-de", "--max-len-b", "5", env=hub_env(tmp_path / "hub"))
    try:
        with urllib.request.urlopen(server.url + "/info", timeout=30) as answer:
            info = json.loads(answer.read())
        status, data = post(server.url, {"text": "A dog runs."})
    finally:
        code, log = server.terminate()
    assert info["models"][0]["source"] == "someone/tiny-en-de"
    assert "model.safetensors" in {f["name"] for f in info["models"][0]["files"]}
    local = Translator.from_pretrained(folder).translate(["A dog runs."], max_len_b=5)[0].hypotheses[0].text
    assert status == 200 and data["translations"] == [local]
    assert code == 0, log


def test_taken_port_is_one_clear_line(converted):
    holder = socket.create_server(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    try:
        run = subprocess.run([sys.executable, "-m", "fsmt_port.serve", str(converted("tiny-en-de-joint")),
                              "--port", str(port)], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": str(SRC)})
    finally:
        holder.close()
    assert run.returncode == 2
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"cannot listen on 127.0.0.1:{port}" in lines[0], run.stderr


def _wait_for_metric(url: str, name: str, at_least: float, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while metric(url, name) < at_least:
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} stayed below {at_least}")
        time.sleep(0.02)


def _wait_until_refused(port: int, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return True
        time.sleep(0.02)
    return False
