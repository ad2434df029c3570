"""The tracking server's h2c protocol on Cloud Run: uvicorn's own, with bodyless HTTP/2 requests completed.

A real uvicorn server on loopback, a real HTTP/2 client speaking prior knowledge (as Cloud Run's front end
does to an `h2c` port), and an ASGI app that reads the request body before answering, as MLflow's Flask
routes behind FastAPI's WSGI bridge do. With uvicorn's stock zttp HTTP/2 protocol a GET never completes; the
day it does, `infra/mlflow_server/h2c.py` can go (the second test then fails and says so).
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn

from infra.mlflow_server.h2c import AutoH2cProtocol
from mlops_stack.ports import free_port, wait_for_port


async def reads_the_body_first(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": f"{len(body)} bytes".encode()})


@contextmanager
def serving(**protocol: Any) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        reads_the_body_first, host="127.0.0.1", port=port, log_level="warning", **protocol
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        server.force_exit = True
        thread.join(timeout=10)


def h2c_client(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, http1=False, http2=True, timeout=3)


def test_the_h2c_protocol_answers_http2_gets_posts_and_http1() -> None:
    with serving(http=AutoH2cProtocol) as url, h2c_client(url) as client:
        started = time.monotonic()
        got = client.get("/api/2.0/mlflow/experiments/search?max_results=1")
        assert (got.status_code, got.http_version, got.text) == (200, "HTTP/2", "0 bytes")
        posted = client.post("/api/2.0/mlflow/experiments/create", content=b"x" * 200_000)
        assert (posted.status_code, posted.text) == (200, "200000 bytes")  # past the 64 KiB window
        assert httpx.get(f"{url}/health", timeout=3).http_version == "HTTP/1.1"
        assert time.monotonic() - started < 3


def test_uvicorns_stock_http2_protocol_still_leaves_bodyless_requests_waiting() -> None:
    """uvicorn 0.54 (pinned in pyproject.toml for this reason): once this answers, drop h2c.py."""
    with serving(http="zttp", http2=True) as url, h2c_client(url) as client, pytest.raises(httpx.ReadTimeout):
        client.get("/api/2.0/mlflow/experiments/search?max_results=1")
