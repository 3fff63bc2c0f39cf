"""The ASGI layer in front of the routes: request counts and latency per route, and the body-size cap.

The cap is checked on ``Content-Length`` before anything is read, and again while a chunked body
arrives, so a client cannot make the server buffer more than ``--max-body-bytes``.
"""

from __future__ import annotations

import json
import time

from starlette.exceptions import HTTPException

from fsmt_port.serving.metrics import ServerMetrics

ROUTES = ("/", "/translate", "/health", "/info", "/metrics", "/docs", "/openapi.json")


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` (an HTTPException so that FastAPI passes it through unchanged)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the server's --max-body-bytes {limit}; "
                              "send fewer or shorter sentences")


class EdgeMiddleware:
    def __init__(self, app, metrics: ServerMetrics, max_body_bytes: int) -> None:
        self.app, self.metrics, self.max_body_bytes = app, metrics, max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in ROUTES else "other"
        started = time.monotonic()
        status = {"code": 500}

        async def send_counting(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            declared = _content_length(scope)
            if declared is not None and declared > self.max_body_bytes:
                await self._refuse(send_counting)
            else:
                await self.app(scope, self._capped(receive), send_counting)
        finally:
            self.metrics.requests.inc(route=route, code=str(status["code"]))
            self.metrics.latency.observe(time.monotonic() - started, route=route)

    def _capped(self, receive):
        seen = 0

        async def capped():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        return capped

    async def _refuse(self, send) -> None:
        self.metrics.errors.inc(kind="body_too_large")
        body = json.dumps({"error": BodyTooLarge(self.max_body_bytes).detail, "kind": "body_too_large",
                           "limit": "max_body_bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
