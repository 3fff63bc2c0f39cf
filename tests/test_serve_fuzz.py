"""Fuzzing fsmt-serve's JSON API (hypothesis, bounded): nothing a client sends crashes the worker.

Claimed for any body: the answer is 200, 413 or 422 (never 500, never a hang); a refusal is one line
of JSON with a ``kind``; a 200 has one translation per sentence, each ``decode(tokens)``; and after
every example the worker still answers a known sentence exactly as before.
"""

from __future__ import annotations

import json
import os

import pytest
import torch
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fsmt_port.generation import resolve_generation_config
from fsmt_port.serving.app import create_app
from fsmt_port.serving.schema import GENERATION_FIELDS
from fsmt_port.serving.service import ServeLimits
from fsmt_port.translation.translator import Translator
from serving import make_service
from test_fuzz_tokenizer import any_text, nasty_text

EXAMPLES = int(os.environ.get("FSMT_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
ALLOWED = {200, 413, 422}
KNOWN = "A dog runs."

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                         st.floats(allow_nan=True, allow_infinity=True), any_text, nasty_text)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
keys = st.sampled_from(GENERATION_FIELDS + ("text", "nbest", "return_tokens", "beam", "lenpen", "unkpen",
                                            "temperature", "do_sample", "")) | st.text(max_size=10)
numbers = st.one_of(st.integers(min_value=-3, max_value=12), st.integers(), st.floats(allow_nan=True),
                    st.floats(min_value=-200, max_value=200))
texts = st.one_of(any_text, nasty_text, st.lists(st.one_of(any_text, nasty_text), max_size=5))
# Mostly-valid requests reach the worker; the rest probe validation.
near_valid = st.fixed_dictionaries({"text": texts}, optional={
    "num_beams": numbers, "beam": numbers, "length_penalty": numbers, "lenpen": numbers, "early_stopping": json_values,
    "no_repeat_ngram_size": numbers, "max_len_a": numbers, "max_len_b": numbers, "min_len": numbers,
    "unk_penalty": numbers, "unkpen": numbers, "nbest": numbers, "return_tokens": st.booleans()})
# Within the caps: exercises the worker with many generation settings at once.
plausible = st.fixed_dictionaries({"text": texts}, optional={
    "num_beams": st.integers(1, 4), "length_penalty": st.floats(-3, 3), "early_stopping": st.booleans(),
    "no_repeat_ngram_size": st.integers(0, 3), "max_len_a": st.floats(0, 1), "max_len_b": st.integers(0, 8),
    "min_len": st.integers(0, 3), "unk_penalty": st.floats(-10, 10), "nbest": st.integers(1, 2),
    "return_tokens": st.booleans()})
bodies = st.one_of(plausible, near_valid, st.dictionaries(keys, json_values, max_size=5), json_values)


@pytest.fixture(scope="module")
def client(converted):
    torch.set_num_threads(1)
    translator = Translator.from_pretrained(converted("tiny-en-de-joint"))
    # Short outputs keep examples cheap (the tiny models never stop early); the caps are the server's.
    translator.generation_config = resolve_generation_config(translator.generation_config, num_beams=2,
                                                             max_len_b=6)
    service = make_service(translator, ServeLimits(max_sentences=5, max_beams=4, max_output_tokens=8,
                                                   max_input_tokens=64, max_body_bytes=1 << 16))
    with TestClient(create_app(service)) as test_client:
        test_client.known = test_client.post("/translate", json={"text": KNOWN, "return_tokens": True}).json()
        test_client.translator = translator
        test_client.service = service
        yield test_client


def check(client, answer, body) -> None:
    assert answer.status_code in ALLOWED, (answer.status_code, answer.text, body)
    event(f"status {answer.status_code}")
    data = answer.json()
    if answer.status_code == 200:
        sentences = [body["text"]] if isinstance(body["text"], str) else body["text"]
        assert len(data["translations"]) == len(data["hypotheses"]) == len(sentences)
        if body.get("return_tokens"):
            decode = client.translator.tokenizer.decode
            assert all(h["text"] == decode(h["tokens"]) for hypos in data["hypotheses"] for h in hypos)
    else:
        assert isinstance(data["error"], str) and data["error"] and "\n" not in data["error"]
        assert isinstance(data["kind"], str)
    again = client.post("/translate", json={"text": KNOWN, "return_tokens": True})
    assert again.json() == client.known  # the worker is alive and unchanged


@FUZZ
@given(body=bodies)
def test_any_json_body(client, body):
    raw = json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")
    check(client, client.post("/translate", content=raw, headers={"Content-Type": "application/json"}), body)


@FUZZ
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_any_bytes(client, raw):
    answer = client.post("/translate", content=raw, headers={"Content-Type": "application/json"})
    check(client, answer, json.loads(raw) if answer.status_code == 200 else None)


def test_worker_survived(client):
    assert client.get("/health").json()["status"] == "ok"
    assert client.service.batcher.alive
