"""Request limits applied before the app reads a body: admission (queue length) and body size.

:class:`RequestLimits` is a plain ASGI middleware around the API paths (``/v1/...``):

- admission: at most ``max_queue`` API requests are in the server at once (uploading, waiting for
  the model or being answered); one more gets ``503`` with ``Retry-After`` at once, before its body
  is read.
- body size: a ``Content-Length`` above the limit gets ``413`` before anything is read; a body
  that streams in without one (chunked) is counted as it arrives and answered with ``413`` as soon
  as it passes the limit, so an oversized upload is never held in full.

Before either answer the rest of the body is read and thrown away (up to ``DRAIN_BYTES`` past the
limit): a client that is still sending when the server closes the connection would otherwise see a
reset instead of the answer. Both answers use the service's JSON error shape
``{"error": ..., "detail": ...}``.

Paths are matched without the ASGI ``root_path``, so the limits hold when the app is mounted under
a prefix (a Starlette ``Mount``, ``uvicorn --root-path`` behind a reverse proxy). ``exempt`` paths
(cheap ``GET``s such as ``/v1/limits``) pass through uncounted, so they answer while the queue is
full. This module does not know about audio or the model.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


DRAIN_BYTES = 8 * 1024 * 1024  # at most this much of a refused body is read (and discarded)


class InFlight:
    """How many API requests are in the server now (shared with /health)."""

    def __init__(self) -> None:
        self.active = 0


class BodyTooLarge(Exception):
    """Raised inside the app's body reading once the body passes the limit."""


def error_body(error: str, detail: str) -> bytes:
    return json.dumps({"error": error, "detail": detail}).encode()


async def send_json_error(send: Send, status: int, error: str, detail: str,
                          headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = error_body(error, detail)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    """ASGI middleware: admission control and a streaming body-size limit for ``prefix`` paths."""

    def __init__(self, app: ASGIApp, in_flight: InFlight, max_queue: int, max_body_bytes: int,
                 retry_after_s: int, max_upload_mb: float, prefix: str = "/v1/",
                 exempt: tuple[str, ...] = ()):
        self.app = app
        self.exempt = frozenset(exempt)
        self.in_flight = in_flight
        self.max_queue = max_queue
        self.max_body_bytes = max_body_bytes
        self.retry_after_s = retry_after_s
        self.max_upload_mb = max_upload_mb
        self.prefix = prefix

    def _too_large_detail(self) -> str:
        return (f"the upload is larger than the limit of {self.max_upload_mb:g} MiB; "
                "send a shorter or more compressed file")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = route_path(scope) if scope["type"] == "http" else ""
        if not path.startswith(self.prefix) or path in self.exempt:
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if self.in_flight.active >= self.max_queue:
            budget = self.max_body_bytes if length is None or length <= self.max_body_bytes else 0
            await _drain(receive, budget)
            await send_json_error(
                send, 503, "queue_full",
                f"the server is busy ({self.in_flight.active} requests in progress); retry in "
                f"{self.retry_after_s} s", [(b"retry-after", str(self.retry_after_s).encode())])
            return
        if length is not None and length > self.max_body_bytes:
            await _drain(receive, DRAIN_BYTES)
            await send_json_error(send, 413, "upload_too_large", self._too_large_detail())
            return
        self.in_flight.active += 1
        try:
            await self._call_limited(scope, receive, send)
        finally:
            self.in_flight.active -= 1

    async def _call_limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    exceeded = True
                    if message.get("more_body", False):
                        await _drain(receive, DRAIN_BYTES)
                    raise BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # the app turned BodyTooLarge into some error page: answer 413 instead
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await send_json_error(send, 413, "upload_too_large", self._too_large_detail())
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            if not started:
                await send_json_error(send, 413, "upload_too_large", self._too_large_detail())


async def _drain(receive: Receive, budget: int) -> bool:
    """Read and discard the request body, at most ``budget`` bytes; True when all of it was read."""
    read = 0
    while read <= budget:
        message = await receive()
        if message["type"] != "http.request":
            return True  # the client went away
        read += len(message.get("body", b""))
        if not message.get("more_body", False):
            return True
    return False


def route_path(scope: Scope) -> str:
    """The request path inside the app: ``path`` without the ``root_path`` it is mounted under."""
    path: str = scope.get("path", "")
    root = scope.get("root_path", "").rstrip("/")
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root):] or "/"
    return path


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
