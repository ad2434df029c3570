"""uvicorn's httptools protocol with the connection limits uvicorn does not have.

Read in uvicorn 0.54 (`uvicorn/protocols/http/httptools_impl.py`) and measured here:
- No timeout covers receiving a request. `timeout_keep_alive` is armed only once a response is complete
  (`on_response_complete`) and cancelled by every byte that arrives (`data_received`), so a connection
  that sends nothing, or trickles its headers, is held for ever (https://github.com/Kludex/uvicorn/issues/160;
  the settings page https://www.uvicorn.org/settings/#timeouts lists no header or request timeout).
- No bound on the size of the request line and headers with httptools: `h11_max_incomplete_event_size`
  applies to the h11 protocol only. A 100 MB header was accepted and cost 160 MB of memory.
- `limit_concurrency` answers a plain-text 503 without Retry-After, and refuses health probes too.

So, per connection:
- HEADER_TIMEOUT_SECONDS from the moment it opens, or from the first byte of its next request, until that
  request's headers are complete; then it is closed (with a JSON 408 if part of a request had arrived).
  Idle time between requests stays uvicorn's `timeout_keep_alive`; a slowly sent body is bounded by the
  request timeout of service.middleware.RequestGuard.
- At most MAX_HEADER_BYTES of request line and headers: 431 and closed.
- A request that arrives while the worker has MAX_CONNECTIONS open connections (or as many requests
  running) gets our JSON 503 with Retry-After and the connection is closed, except the probe paths, which
  are cheap and must keep answering so a busy instance is not taken for a dead one.
"""

import asyncio
import logging
from http import HTTPStatus

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.errors import error_body, error_response

logger = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024
PROBE_PATHS = frozenset({b"/healthz", b"/readyz", b"/metrics"})
OVERLOADED_RETRY_AFTER_SECONDS = 1


def _refusal(status: int, message: str, headers: dict[str, str]) -> ASGIApp:
    """An ASGI app answering every request with this JSON error and closing the connection."""

    async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
        await error_response(status, message, {**headers, "Connection": "close"})(scope, receive, send)

    return refuse


_OVERLOADED = _refusal(
    503,
    "Too many connections to this instance; retry shortly.",
    {"Retry-After": str(OVERLOADED_RETRY_AFTER_SECONDS)},
)
_HEADERS_TOO_LARGE = _refusal(431, f"The request line and headers exceed {MAX_HEADER_BYTES} bytes.", {})


class _BoundedHttpToolsProtocol(HttpToolsProtocol):
    header_timeout_seconds: float
    max_connections: int

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._header_deadline: asyncio.TimerHandle | None = None
        self._receiving_headers = True
        self._header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._receiving_headers:
            self._arm_header_deadline()
            self._header_bytes += len(data)
        super().data_received(data)
        if self._receiving_headers and self._header_bytes > MAX_HEADER_BYTES:
            self._close_with(431, f"The request line and headers exceed {MAX_HEADER_BYTES} bytes.")

    def on_headers_complete(self) -> None:
        self._receiving_headers, self._header_bytes = False, 0
        self._disarm_header_deadline()
        refusal = self._refusal()
        if refusal is None:
            super().on_headers_complete()
            return
        app, self.app = self.app, refusal
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def _refusal(self) -> ASGIApp | None:
        """What answers this request instead of the app, if anything: headers that arrived in one read
        (so `data_received` could not count them) but are too large, or a worker with too many connections."""
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > MAX_HEADER_BYTES:
            return _HEADERS_TOO_LARGE
        busy = len(self.connections) > self.max_connections or len(self.tasks) >= self.max_connections
        if busy and self.url.split(b"?", 1)[0] not in PROBE_PATHS:
            logger.warning("refusing a request: %d connections open in this worker", len(self.connections))
            return _OVERLOADED
        return None

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._receiving_headers = True  # whatever arrives next starts the next request

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout_seconds, self._header_timed_out)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _header_timed_out(self) -> None:
        self._header_deadline = None
        if self._header_bytes:
            self._close_with(408, f"The request headers took longer than {self.header_timeout_seconds:g}s.")
        elif not self.transport.is_closing():
            self.transport.close()

    def _close_with(self, status: int, message: str) -> None:
        """Answer a request that never reached the app, and close: its framing cannot be trusted."""
        if self.transport.is_closing():
            return
        body = error_body(status, message)
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.close()


def bounded_http_protocol(header_timeout_seconds: float, max_connections: int) -> type[HttpToolsProtocol]:
    """The protocol class to give uvicorn (`http=`), with these limits."""
    return type(
        "BoundedHttpToolsProtocol",
        (_BoundedHttpToolsProtocol,),
        {"header_timeout_seconds": header_timeout_seconds, "max_connections": max_connections},
    )
