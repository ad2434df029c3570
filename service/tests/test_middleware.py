"""RequestGuard's last line: a request the server cancels (its shutdown grace over) gets our JSON 503.

The settings keep the request timeout inside the grace, so a real process never gets here (the lifecycle
test shows it answering 504 first); this drives the middleware directly, as uvicorn would cancel it.
"""

import asyncio

import orjson
from starlette.types import Message, Receive, Scope, Send

from service.middleware import RequestGuard


async def _stuck(scope: Scope, receive: Receive, send: Send) -> None:
    await asyncio.sleep(3600)


def test_a_cancelled_request_is_answered_with_our_json_then_cancelled() -> None:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    async def run() -> bool:
        guard = RequestGuard(_stuck, api_key=None, max_body_bytes=1024, timeout_seconds=60)
        scope = {"type": "http", "path": "/invocations", "method": "POST", "headers": []}
        task = asyncio.create_task(guard(scope, receive, send))
        await asyncio.sleep(0.05)
        task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")  # what uvicorn does
        try:
            await task
        except asyncio.CancelledError:
            return True
        return False

    assert asyncio.run(run()), "the cancellation must still propagate"
    start, body = sent
    assert start["status"] == 503
    assert (b"retry-after", b"1") in start["headers"]
    assert orjson.loads(body["body"]) == {
        "error_code": "UNAVAILABLE",
        "message": "The server is shutting down; retry.",
    }
