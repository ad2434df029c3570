"""`python -m service` as a real process on 127.0.0.1, and raw HTTP/1.1 over sockets to talk to it.

Raw sockets rather than an HTTP client, where the point is what a client library would hide: framing,
timing, a connection the server closes, headers a library would add or refuse to send.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mlops_stack.ports import free_port

START_TIMEOUT_S = 120.0


@dataclass
class ApiProcess:
    """A running API and where it logs."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def memory_mib(self) -> float:
        """Proportional set size of the process and its workers (pages forked workers share count once)."""
        return process_tree_pss_mib(self.process.pid)

    def wait_for(self, path: str, status: int = 200, timeout: float = START_TIMEOUT_S) -> httpx.Response:
        """Poll `path` until it answers `status`; fail with the log's tail if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the API exited:\n{self.log()[-3000:]}"
            try:
                response = httpx.get(self.url + path, timeout=2)
                if response.status_code == status:
                    return response
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        pytest.fail(f"{path} never answered {status} within {timeout:.0f}s:\n{self.log()[-3000:]}")


@contextmanager
def api_process(log_dir: Path, *, python: str = sys.executable, **environment: str) -> Iterator[ApiProcess]:
    """Start `python -m service` with `environment` (upper-case setting names) and the given interpreter
    (by default this one); kill it on the way out."""
    port = free_port()
    log_path = log_dir / f"api-{port}.log"
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), **environment}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [python, "-m", "service"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the workers go with it
        )
    api = ApiProcess(process, port, log_path)
    try:
        yield api
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def process_tree_pss_mib(root: int) -> float:
    """PSS of `root` and every descendant, from /proc, in MiB."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    total_kib, pending = 0, [root]
    while pending:
        pid = pending.pop()
        pending.extend(children.get(pid, []))
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total_kib += sum(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:"))
    return total_kib / 1024


@dataclass(frozen=True)
class RawResponse:
    """One HTTP response as it came off the wire."""

    status: int
    headers: dict[str, str]
    body: bytes


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def request_bytes(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """A Content-Length framed request (add Transfer-Encoding yourself for chunked ones)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if body and "Transfer-Encoding" not in headers:
        headers = {"Content-Length": str(len(body)), **headers}
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def read_response(sock: socket.socket) -> RawResponse | None:
    """Read one Content-Length framed response; None if the server closed without answering."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = _recv(sock)
        if not chunk:
            return None
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = _recv(sock)
        if not chunk:
            break
        body += chunk
    return RawResponse(int(lines[0].split()[1]), headers, body[:length])


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed its side (reads end), draining whatever it still sent."""
    try:
        while chunk := sock.recv(65536):
            del chunk
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""
