"""Pure ASGI middleware (cheaper per request than Starlette's BaseHTTPMiddleware): metrics and guards."""

import asyncio
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import ApiError, error_response
from service.metrics import LATENCY, REQUESTS


class RequestMetrics:
    """Counts and times every HTTP request by route; unknown paths share one label (bounded cardinality)."""

    def __init__(self, app: ASGIApp, known_paths: Callable[[], frozenset[str]]) -> None:
        self.app = app
        self.known_paths = known_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            path = scope["path"]
            label = path if path in self.known_paths() else "<unmatched>"
            labels = (label, scope["method"], str(status))
            REQUESTS.labels(*labels).inc()
            LATENCY.labels(*labels).observe(time.perf_counter() - started)


class BodyTooLargeError(ApiError):
    """Raised from `receive` as soon as the streamed body passes the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body is larger than {limit} bytes; send fewer rows per request.")


class RequestGuard:
    """Refuses oversized bodies (by Content-Length and by streamed bytes) and answers 504 after the timeout.

    The timeout covers the whole request, reading a slowly sent body included. Work already running in a
    thread is not interrupted (Python cannot), its result is dropped; MAX_ROWS bounds how long it can take.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int, timeout_seconds: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await error_response(413, BodyTooLargeError(limit).message)(scope, receive, send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            async with asyncio.timeout(self.timeout_seconds):
                await self.app(scope, counted_receive, tracked_send)
        except TimeoutError:
            if not started:
                message = f"Request took longer than {self.timeout_seconds:g}s; send fewer rows or retry."
                await error_response(504, message)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
