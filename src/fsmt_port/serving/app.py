"""The FastAPI application: routes, error answers, and the worker's lifetime (started and drained
with the app's lifespan).

Every refusal is JSON ``{"error": one line, "kind": ..., "limit": ...}`` with the right status:
422 for a malformed or disallowed field (the message names it), 413 for a size limit, 503 with
``Retry-After`` when the queue is full or the server is stopping. Each is counted by ``kind`` in
``fsmt_serve_errors_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from concurrent.futures import Future

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException

from fsmt_port.errors import FSMTPortError, RequestError
from fsmt_port.serving.edge import EdgeMiddleware
from fsmt_port.serving.metrics import CONTENT_TYPE
from fsmt_port.serving.page import render_page
from fsmt_port.serving.schema import ErrorResponse, TranslateRequest, TranslateResponse
from fsmt_port.serving.service import TranslationService

#: Status answered to a client that went away (nginx's convention; the client never sees it).
CLIENT_CLOSED_REQUEST = 499

_REFUSALS = {code: {"model": ErrorResponse} for code in (413, 422, 503)}


def create_app(service: TranslationService) -> FastAPI:
    metrics = service.metrics

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        service.batcher.start()
        try:
            yield
        finally:  # uvicorn has let the in-flight requests finish; drain and stop the worker
            await asyncio.to_thread(service.batcher.close)

    app = FastAPI(title="fsmt-serve", lifespan=lifespan,
                  description="Translation with fairseq-exact beam search; concurrent requests are batched "
                              "dynamically. Generation arguments keep fsmt-translate's names.")
    app.add_middleware(EdgeMiddleware, metrics=metrics, max_body_bytes=service.limits.max_body_bytes)

    def refuse(status: int, kind: str, message: str, limit: str | None = None, headers: dict | None = None,
               detail: list | None = None) -> JSONResponse:
        metrics.errors.inc(kind=kind)
        body = {"error": message, "kind": kind, "limit": limit}
        if detail is not None:
            body["detail"] = detail
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"type": e["type"], "loc": [x if isinstance(x, int) else str(x)[:41] for x in e["loc"]],
                   "msg": e["msg"]} for e in exc.errors()[:10]]  # bounded: never echo a huge body back
        kind = _validation_kind(errors)
        message = "; ".join(_describe(e) for e in _first_alternative(errors)[:3])
        return refuse(422, kind, message, detail=errors)

    @app.exception_handler(RequestError)
    async def refused(request: Request, exc: RequestError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        return refuse(exc.status, exc.kind, str(exc), exc.limit, headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):  # FastAPI's body parser
            return refuse(422, "invalid_json", f"the body is not valid UTF-8 (byte {exc.__cause__.start}); "
                                               "send UTF-8 JSON")
        kinds = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
        limit = "max_body_bytes" if exc.status_code == 413 else None
        return refuse(exc.status_code, kinds.get(exc.status_code, "http_error"), str(exc.detail), limit,
                      getattr(exc, "headers", None))

    @app.post("/translate", response_model=TranslateResponse, responses=_REFUSALS,
              summary="Translate one sentence or a list of sentences")
    async def translate(body: TranslateRequest, request: Request):
        ids, config = service.prepare(body)
        futures = service.batcher.submit(ids, config)
        try:
            results = await _results_unless_disconnected(futures, request)
        except _ClientGone:
            service.batcher.cancel(futures)
            metrics.errors.inc(kind="client_disconnected")
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        except FSMTPortError as err:
            return refuse(422, "invalid_request", str(err))
        except Exception as err:  # noqa: BLE001 - the worker survives; this request gets the reason
            return refuse(500, "decode_failed", f"decoding failed: {type(err).__name__}: {err}")
        return JSONResponse(service.answer(body, ids, results))

    @app.get("/health", summary="200 while the worker accepts work, 503 once it stops")
    async def health():
        if service.batcher.alive:
            return {"status": "ok", "queued_sentences": service.batcher.queued()}
        return JSONResponse({"status": "stopping"}, status_code=503)

    @app.get("/info", summary="languages, generation defaults, model files, limits and versions")
    async def info():
        return service.info()

    @app.get("/metrics", summary="Prometheus text format", response_class=Response)
    async def prometheus():
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    page = render_page()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        return HTMLResponse(page)

    return app


class _ClientGone(Exception):
    pass


async def _results_unless_disconnected(futures: list[Future], request: Request) -> list:
    """The worker's results in order, or ``_ClientGone`` as soon as the client disconnects."""
    results = asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
    watcher = asyncio.ensure_future(_disconnect(request))
    try:
        done, _ = await asyncio.wait({results, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if results in done:
        return results.result()
    results.cancel()
    results.add_done_callback(lambda f: f.cancelled() or f.exception())  # nothing left unretrieved
    raise _ClientGone


async def _disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _first_alternative(errors: list[dict]) -> list[dict]:
    """``text`` is ``str | list[str]``: pydantic reports both alternatives; name the field once."""
    out, seen = [], set()
    for error in errors:
        loc = tuple(x for x in error["loc"] if x not in ("str", "list[str]"))
        if loc not in seen:
            seen.add(loc)
            out.append({**error, "loc": loc})
    return out


def _describe(error: dict) -> str:
    loc = [str(x) for x in error["loc"]]
    if error["type"] == "json_invalid":
        return f"the body is not valid JSON ({error['msg']} at character {loc[-1]}); send a JSON object"
    field = "".join(_path_part(x) for x in error["loc"][1:]).lstrip(".") or "body"
    if error["type"] == "extra_forbidden":
        return f"{field}: not an accepted argument; see GET /docs for the accepted ones"
    if field == "body" and error["type"] in ("model_attributes_type", "dict_type"):
        return 'body: expected a JSON object like {"text": "..."}'
    if field == "body" and error["type"] == "missing":
        return 'body: missing; send a JSON object like {"text": "..."} with Content-Type: application/json'
    if error["type"] == "value_error":  # our validators' messages name the field themselves
        return error["msg"].removeprefix("Value error, ")
    if field in ("text", "") and error["type"] == "string_type":
        return "text: expected a string or a list of strings"
    return f"{field}: {error['msg']}"


def _path_part(part) -> str:
    """``.name`` or ``[3]``; a key that is not a plain name is shown JSON-escaped and cut, so the
    error stays one printable line whatever the client sent as a key."""
    if isinstance(part, int):
        return f"[{part}]"
    text = str(part)
    if text.isidentifier() and text.isascii() and len(text) <= 40:
        return f".{text}"
    return "." + json.dumps(text[:40] + ("..." if len(text) > 40 else ""))


def _validation_kind(errors: list[dict]) -> str:
    types = {e["type"] for e in errors}
    if "json_invalid" in types:
        return "invalid_json"
    if "extra_forbidden" in types:
        return "unknown_argument"
    if "missing" in types:
        return "missing_field"
    return "invalid_field"
