"""fsmt-serve's HTTP API through in-process ASGI clients (no sockets).

Claims checked: answers equal offline translation of each sentence alone, however requests are
batched together; differing generation arguments never share a batch; every refusal has the
documented status, names the field or the limit, and is counted by kind; a full queue is 503 with
Retry-After; a disconnecting client's unstarted sentences are cancelled; a failing batch fails only
its own request; closing drains the queue.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import torch
from fastapi.testclient import TestClient

import golden
from fsmt_port.errors import RequestError
from fsmt_port.serving.app import create_app
from fsmt_port.serving.service import ServeLimits
from fsmt_port.translation.translator import Translator
from serving import assert_same_as_offline, make_service

SENTENCES = golden.flickr_lines("en")[:10]


@pytest.fixture(scope="module")
def translator(converted):
    torch.set_num_threads(2)
    return Translator.from_pretrained(converted("small-en-de"))


class _Offline(dict):
    """offline[beams][sentence]: ``Translator.translate`` of that sentence alone, computed on first use."""

    def __init__(self, translator):
        super().__init__()
        self.translator = translator

    def __missing__(self, beams):
        outer = self

        class _ByText(dict):
            def __missing__(self, sentence):
                self[sentence] = outer.translator.translate([sentence], num_beams=beams)[0]
                return self[sentence]

        self[beams] = _ByText()
        return self[beams]


@pytest.fixture(scope="module")
def offline(translator):
    return _Offline(translator)


@pytest.fixture(scope="module")
def client(translator, converted):
    service = make_service(translator, ServeLimits(max_sentences=8, max_beams=6, max_input_tokens=40,
                                                   max_body_bytes=4096), folder=converted("small-en-de"))
    with TestClient(create_app(service)) as test_client:
        test_client.service = service
        yield test_client


def test_single_sentence_and_list_equal_offline(client, offline):
    answer = client.post("/translate", json={"text": SENTENCES[0]})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["translations"] == [offline[5][SENTENCES[0]].hypotheses[0].text]
    assert_same_as_offline(data["hypotheses"][0], offline[5][SENTENCES[0]])

    answer = client.post("/translate", json={"text": SENTENCES[:6], "nbest": 3, "return_tokens": True})
    data = answer.json()
    assert data["translations"] == [offline[5][s].hypotheses[0].text for s in SENTENCES[:6]]
    for sentence, hypos in zip(SENTENCES[:6], data["hypotheses"]):
        assert_same_as_offline(hypos, offline[5][sentence], nbest=3)
        assert all(len(h["positional_scores"]) == len(h["tokens"]) for h in hypos)


def test_fairseq_argument_names_mean_the_same(client, offline):
    by_hf = client.post("/translate", json={"text": SENTENCES[1], "num_beams": 2, "length_penalty": 1.0}).json()
    by_fairseq = client.post("/translate", json={"text": SENTENCES[1], "beam": 2, "lenpen": 1.0}).json()
    assert by_hf == by_fairseq
    assert_same_as_offline(by_hf["hypotheses"][0], offline[2][SENTENCES[1]])


@pytest.mark.parametrize("body, status, kind, names", [
    ('{"text": ', 422, "invalid_json", "not valid JSON"),
    ('{"text": 5}', 422, "invalid_field", "text: expected a string or a list of strings"),
    ('{"text": ["a", 3]}', 422, "invalid_field", "text[1]"),
    ('{"txt": "a"}', 422, "unknown_argument", "txt"),
    ('{"text": "a", "temperature": 0.7}', 422, "unknown_argument", "temperature"),
    ('{"text": "a", "num_beams": "5"}', 422, "invalid_field", "num_beams"),
    ('{"text": "a", "num_beams": 0}', 422, "invalid_field", "num_beams"),
    ('{"text": "a", "length_penalty": NaN}', 422, "invalid_field", "length_penalty"),
    ('{"text": "a", "early_stopping": "yes"}', 422, "invalid_field", "early_stopping"),
    ('{"text": "\\ud800"}', 422, "invalid_field", "lone UTF-16 surrogate"),
    ('[1, 2]', 422, "invalid_field", "JSON object"),
    ('{"text": []}', 422, "invalid_field", "empty list"),
    ('{"text": "a", "num_beams": 7}', 422, "disallowed_argument", "--max-beams 6"),
    ('{"text": "a", "nbest": 6}', 422, "invalid_field", "nbest=6 exceeds num_beams=5"),
    ('{"text": "a", "min_len": 300}', 422, "invalid_generation_argument", "min_len=300"),
    ('{"text": ["a", "b", "c", "d", "e", "f", "g", "h", "i"]}', 413, "too_many_sentences", "--max-sentences 8"),
    ('{"text": ["a", "' + "word " * 50 + '"]}', 413, "input_too_long", "text[1] has 101 tokens, more than the server's --max-input-tokens 40"),
    ('{"text": "' + "x" * 5000 + '"}', 413, "body_too_large", "--max-body-bytes 4096"),
])
def test_refusals_name_the_field_or_limit(client, body, status, kind, names):
    before = _errors(client, kind)
    answer = client.post("/translate", content=body.encode(), headers={"Content-Type": "application/json"})
    assert answer.status_code == status, answer.text
    data = answer.json()
    assert data["kind"] == kind
    assert names in data["error"] and "\n" not in data["error"]
    assert _errors(client, kind) == before + 1
    assert client.get("/health").status_code == 200


def test_body_cap_also_applies_to_chunked_uploads(client):
    chunks = iter([b'{"text": "', b"y" * 3000, b"y" * 3000, b'"}'])
    answer = client.post("/translate", content=chunks, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413
    assert answer.json()["limit"] == "max_body_bytes"


def test_truncate_cuts_instead_of_refusing(translator, offline):
    service = make_service(translator, ServeLimits(max_input_tokens=6, truncate=True))
    long = "A man in an orange hat starring at something ."
    with TestClient(create_app(service)) as test_client:
        data = test_client.post("/translate", json={"text": long, "return_tokens": True}).json()
    ids = translator.tokenizer.encode(long)
    cut = translator.generate_ids([ids[:5] + [2]], num_beams=5)[0][0]
    assert data["hypotheses"][0][0]["tokens"] == cut.tokens.tolist()


def test_health_info_metrics_docs_and_page(client, translator):
    assert client.get("/health").json()["status"] == "ok"
    info = client.get("/info").json()
    assert info["languages"] == {"source": "en", "target": "de"}
    assert info["generation_defaults"] == translator.generation_config.to_dict()
    assert info["limits"]["max_beams"] == 6 and info["limits"]["max_input_tokens"] == 40
    assert {"fsmt_port", "torch", "fastapi", "uvicorn", "python"} <= set(info["versions"])
    files = {f["name"]: f["bytes"] for f in info["models"][0]["files"]}
    assert files["model.safetensors"] > 0 and "config.json" in files

    client.post("/translate", json={"text": SENTENCES[:2]})
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = metrics.text
    for name in ("fsmt_serve_requests_total", "fsmt_serve_sentences_total", "fsmt_serve_source_tokens_total",
                 "fsmt_serve_target_tokens_total", "fsmt_serve_batch_sentences_bucket",
                 "fsmt_serve_queue_wait_seconds_bucket", "fsmt_serve_request_duration_seconds_bucket",
                 "fsmt_serve_errors_total"):
        assert f"\n{name}" in text, name
    assert 'fsmt_serve_requests_total{route="/translate",code="200"}' in text
    assert _metric(text, "fsmt_serve_sentences_total") >= 2

    schema = client.get("/openapi.json").json()
    fields = schema["components"]["schemas"]["TranslateRequest"]["properties"]
    assert {"text", "num_beams", "length_penalty", "nbest", "return_tokens"} <= set(fields)
    assert client.get("/docs").status_code == 200

    page = client.get("/")
    assert page.headers["content-type"].startswith("text/html")
    assert 'id="source"' in page.text and 'id="nbest-toggle"' in page.text and "/translate" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no external assets


def test_concurrent_requests_are_batched_and_equal_offline(translator, offline):
    # The batch is cut when all 10 sentences are there (not by the clock): one batch, deterministically.
    service = make_service(translator, max_wait=60, max_batch_sentences=10)
    calls = _record_batches(service)
    requests = [{"text": s} for s in SENTENCES[:6]] + [{"text": SENTENCES[6:10], "nbest": 2}]

    async def run():
        async with _async_client(service) as http:
            return await asyncio.gather(*(http.post("/translate", json=r) for r in requests))

    answers = asyncio.run(run())
    assert all(a.status_code == 200 for a in answers)
    for request, answer in zip(requests, answers):
        sentences = [request["text"]] if isinstance(request["text"], str) else request["text"]
        for sentence, hypos in zip(sentences, answer.json()["hypotheses"]):
            assert_same_as_offline(hypos, offline[5][sentence], nbest=request.get("nbest", 1))
    assert [size for size, _ in calls] == [10]  # seven requests, one batch


def test_differing_generation_arguments_never_share_a_batch(translator, offline):
    # Each setting's batch is cut when its 3 sentences are there; had they been mixed, a batch would
    # hold 3 sentences of both settings.
    service = make_service(translator, max_wait=60, max_batch_sentences=3)
    calls = _record_batches(service)
    requests = [{"text": s, "num_beams": 2 if i % 2 else 5} for i, s in enumerate(SENTENCES[:6])]

    async def run():
        async with _async_client(service) as http:
            return await asyncio.gather(*(http.post("/translate", json=r) for r in requests))

    answers = asyncio.run(run())
    for request, answer in zip(requests, answers):
        assert_same_as_offline(answer.json()["hypotheses"][0], offline[request["num_beams"]][request["text"]])
    beams_per_batch = sorted(config.num_beams for _, config in calls)
    assert beams_per_batch == [2, 5]  # one batch per setting, each with its 3 sentences
    assert sorted(size for size, _ in calls) == [3, 3]


def test_full_queue_is_503_with_retry_after(translator):
    service = make_service(translator, max_queue=3)

    async def run():
        async with _async_client(service, start=False) as http:
            first = asyncio.ensure_future(http.post("/translate", json={"text": SENTENCES[:2]}))
            while service.batcher.queued() < 2:
                await asyncio.sleep(0.01)
            refused = await http.post("/translate", json={"text": SENTENCES[2:4]})
            service.batcher.start()
            return refused, await first

    refused, first = asyncio.run(run())
    assert refused.status_code == 503
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["kind"] == "queue_full" and "--max-queue 3" in refused.json()["error"]
    assert first.status_code == 200


def test_disconnected_client_cancels_its_unstarted_sentences(translator):
    service = make_service(translator)
    calls = _record_batches(service)
    app = create_app(service)
    gone = asyncio.Event()
    body = json.dumps({"text": SENTENCES[:3]}).encode()
    sent: list[dict] = []

    async def receive():
        if not sent:
            sent.append({})
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    async def run():
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/translate", "raw_path": b"/translate", "query_string": b"",
                 "root_path": "", "headers": [(b"content-type", b"application/json"),
                                              (b"content-length", str(len(body)).encode())],
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
        call = asyncio.ensure_future(app(scope, receive, send))
        while service.batcher.queued() < 3:  # the worker is not running: the sentences wait
            await asyncio.sleep(0.01)
        gone.set()
        await call

    asyncio.run(run())
    assert service.batcher.queued() == 0
    assert service.metrics.cancelled.value() == 3
    assert service.metrics.errors.value(kind="client_disconnected") == 1
    service.batcher.start()
    service.batcher.close(timeout=30)
    assert calls == []  # nothing was decoded for the client that left


def test_a_failing_sentence_fails_only_its_request(translator, offline):
    service = make_service(translator, max_wait=0.5)
    poison = translator.tokenizer.encode(SENTENCES[3])
    real_decode = service.batcher.decode

    def decode(ids, config):
        if poison in ids:
            raise RuntimeError("simulated decoding failure")
        return real_decode(ids, config)

    service.batcher.decode = decode

    async def run():
        async with _async_client(service) as http:
            return await asyncio.gather(*(http.post("/translate", json={"text": s}) for s in SENTENCES[:5]),
                                        )

    answers = asyncio.run(run())
    for index, (sentence, answer) in enumerate(zip(SENTENCES[:5], answers)):
        if index == 3:
            assert answer.status_code == 500
            assert answer.json()["kind"] == "decode_failed" and "simulated" in answer.json()["error"]
        else:
            assert answer.status_code == 200
            assert_same_as_offline(answer.json()["hypotheses"][0], offline[5][sentence])


def test_close_drains_the_queue_then_refuses(translator, offline):
    service = make_service(translator, max_wait=10)
    futures = service.batcher.submit([translator.tokenizer.encode(SENTENCES[0])],
                                     service.generation_config(_request(SENTENCES[0])))
    service.batcher.start()
    service.batcher.close(timeout=60)  # does not wait the 10 s: closing cuts the batch at once
    hypotheses = futures[0].result(timeout=0)
    assert translator.tokenizer.decode(hypotheses[0].tokens.tolist()) == offline[5][SENTENCES[0]].hypotheses[0].text
    with pytest.raises(RequestError) as refused:
        service.batcher.submit([[5, 2]], service.generation_config(_request("x")))
    assert refused.value.status == 503 and refused.value.kind == "shutting_down"


# -- helpers ------------------------------------------------------------------------------------


def _request(text):
    from fsmt_port.serving.schema import TranslateRequest

    return TranslateRequest(text=text)


def _record_batches(service) -> list:
    """Wrap the worker's decode function: records (batch size, generation config) per batch."""
    calls = []
    real = service.batcher.decode

    def recording(ids, config):
        calls.append((len(ids), config))
        return real(ids, config)

    service.batcher.decode = recording
    return calls


class _async_client:
    """httpx.AsyncClient over ASGITransport (no lifespan there: the worker is started and closed here)."""

    def __init__(self, service, start: bool = True) -> None:
        self.service, self.start = service, start
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)),
                                        base_url="http://fsmt-serve.test", timeout=120)

    async def __aenter__(self):
        if self.start:
            self.service.batcher.start()
        return self.client

    async def __aexit__(self, *exc):
        await self.client.aclose()
        await asyncio.to_thread(self.service.batcher.close, 60)


def _errors(client, kind: str) -> float:
    return client.service.metrics.errors.value(kind=kind)


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")
