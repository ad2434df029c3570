"""`python -m service` as a real process over real HTTP: size and time limits, and SIGTERM draining."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import orjson
import pytest

from testing.model_fixtures import LoggedModel
from testing.ports import free_port

pytestmark = pytest.mark.slow


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int


@pytest.fixture(scope="module", params=["1", "2"], ids=["one-worker", "forked-workers"])
def server(example_model: LoggedModel, request: pytest.FixtureRequest) -> Iterator[Server]:
    port = free_port()
    env = {
        **os.environ,
        "MODEL_URI": example_model.local_path,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WORKERS": request.param,
        "MAX_BODY_BYTES": "4096",
        "REQUEST_TIMEOUT_SECONDS": "2",
    }
    process = subprocess.Popen([sys.executable, "-m", "service"], env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, "the service exited during startup"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    yield Server(process, port)
    if process.poll() is None:
        process.kill()
        process.wait()


def raw_request(port: int, head: str, body_parts: list[bytes], pause: float = 0.0) -> tuple[int, bytes]:
    """Send a request by hand (to control timing and framing), return status and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode())
        for part in body_parts:
            time.sleep(pause)
            sock.sendall(part)
        response = b""
        while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
    return int(response[9:12]), response.split(b"\r\n\r\n", 1)[1]


def request_body(example_model: LoggedModel) -> bytes:
    return orjson.dumps({"dataframe_records": example_model.sample.head(1).to_dict(orient="records")})


def test_declared_oversized_body_is_413(server: Server) -> None:
    response = httpx.post(
        f"http://127.0.0.1:{server.port}/invocations",
        content=b"x" * 5000,
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 413
    assert "4096 bytes" in response.json()["message"]


def test_streamed_oversized_body_is_413(server: Server) -> None:
    head = (
        "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    chunk = b"x" * 3000
    status, body = raw_request(
        server.port, head, [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 2 + [b"0\r\n\r\n"]
    )
    assert status == 413
    assert b"PAYLOAD_TOO_LARGE" in body


def test_slow_body_times_out_with_504(server: Server, example_model: LoggedModel) -> None:
    body = request_body(example_model)
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    status, answer = raw_request(server.port, head, [body[:10]], pause=0.0)
    assert status == 504
    assert b"longer than 2s" in answer


def test_sigterm_drains_the_request_in_flight(server: Server, example_model: LoggedModel) -> None:
    """Runs last in this module: it stops the server."""
    body = request_body(example_model)
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head.encode() + body[:10])
        time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert server.process.poll() is None, "exited with a request in flight"
        sock.sendall(body[10:])
        response = b""
        while chunk := sock.recv(65536):  # Connection: close, so the server ends the stream
            response += chunk
    assert response.startswith(b"HTTP/1.1 200")
    assert b'"predictions"' in response
    # uvicorn re-raises the signal once drained, so the exit status says "terminated by SIGTERM".
    assert server.process.wait(timeout=15) in (0, -signal.SIGTERM)
