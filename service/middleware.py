"""Pure ASGI middleware (cheaper per request than Starlette's BaseHTTPMiddleware): metrics and guards."""

import asyncio
import contextlib
import time
from collections.abc import Callable

from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.auth import OPEN_PATHS, UNAUTHENTICATED, presents_key
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
    """What is decided before and around every route, in this order:

    1. The API key, when one is set, for every path but the open ones: 401 from the headers alone.
    2. A declared Content-Length over MAX_BODY_BYTES: 413, also before any of the body is read.
    3. The route, with `receive` counting streamed bytes (413 as soon as they pass the limit, chunked
       bodies included, whichever route reads them) and the whole request, a slowly sent body included,
       under REQUEST_TIMEOUT_SECONDS (504). Work already running in a thread is not interrupted (Python
       cannot); its result is dropped.
    4. An answer sent before the request's body was fully received says `Connection: close`, so the server
       closes the connection instead of reading the rest of the body to throw it away.
    5. A request the server cancels (its shutdown grace ran out) is answered with our JSON 503 rather
       than uvicorn's plain-text 500. The settings make the timeout end before the grace, so this is the
       last line only.
    """

    def __init__(
        self, app: ASGIApp, api_key: SecretStr | None, max_body_bytes: int, timeout_seconds: float
    ) -> None:
        self.app = app
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared, chunked = _body_framing(scope)
        body_pending = chunked or bool(declared)
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received, body_pending
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
                body_pending = body_pending and message.get("more_body", False)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if body_pending:
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        async def refuse(status: int, message: str, headers: dict[str, str] | None = None) -> None:
            await error_response(status, message, headers)(scope, receive, guarded_send)

        if (
            self.api_key is not None
            and scope["path"] not in OPEN_PATHS
            and not presents_key(scope["headers"], self.api_key)
        ):
            await refuse(401, UNAUTHENTICATED, {"WWW-Authenticate": "Bearer"})
            return
        if declared is not None and declared > limit:
            await refuse(413, BodyTooLargeError(limit).message)
            return
        try:
            async with asyncio.timeout(self.timeout_seconds):
                await self.app(scope, counted_receive, guarded_send)
        except BodyTooLargeError as error:
            if not started:
                await refuse(413, error.message)
        except TimeoutError:
            if not started:
                await refuse(
                    504, f"Request took longer than {self.timeout_seconds:g}s; send fewer rows or retry."
                )
        except asyncio.CancelledError:
            if not started:
                with contextlib.suppress(Exception):  # the connection may be gone already
                    await refuse(503, "The server is shutting down; retry.", {"Retry-After": "1"})
            raise


def _body_framing(scope: Scope) -> tuple[int | None, bool]:
    """(Content-Length if declared and valid, whether the body is chunked) from the raw headers."""
    declared, chunked = None, False
    for name, value in scope["headers"]:
        if name == b"content-length":
            with contextlib.suppress(ValueError):
                declared = int(value)
        elif name == b"transfer-encoding":
            chunked = True
    return declared, chunked
