"""A small closed-loop HTTP/1.1 load generator on raw asyncio sockets, used when wrk is not installed.

Each of `concurrency` keep-alive connections sends one request, reads the whole response, and sends the
next, until the duration or the request budget runs out (both bound every run). Raw sockets rather than
an HTTP client library keep the generator's own CPU cost small next to the servers it measures.
"""

import asyncio
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class LoadResult:
    """What one run measured. Latencies are of successful (2xx) requests only."""

    concurrency: int
    seconds: float
    ok: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    # Percentiles a tool computed itself (wrk reports them, not the samples), by percent.
    reported_percentiles_ms: dict[float, float] = field(default_factory=dict)

    @property
    def requests_per_second(self) -> float:
        """Successful requests per second of wall time."""
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, percent: float) -> float:
        """A latency percentile in milliseconds (NaN when nothing succeeded)."""
        if percent in self.reported_percentiles_ms:
            return self.reported_percentiles_ms[percent]
        return float(np.percentile(self.latencies, percent) * 1000) if self.latencies else float("nan")


def post_request(
    host: str, port: int, path: str, body: bytes, content_type: str = "application/json"
) -> bytes:
    """The bytes of one keep-alive POST."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one response (Content-Length framed) and return its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def _connection(
    host: str,
    port: int,
    requests: Sequence[bytes],
    deadline: float,
    budget: itertools.count,
    limit: int,
    result: LoadResult,
) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    cycle = itertools.cycle(requests)
    while time.perf_counter() < deadline and next(budget) < limit:
        started = time.perf_counter()
        try:
            if writer is None or reader is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(next(cycle))
            status = await asyncio.wait_for(_read_response(reader), timeout=max(0.1, deadline - started + 5))
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            result.errors += 1
            if writer is not None:
                writer.close()
            reader = writer = None
            continue
        if 200 <= status < 300:
            result.ok += 1
            result.latencies.append(time.perf_counter() - started)
        else:
            result.errors += 1
    if writer is not None:
        writer.close()


async def run_load(
    host: str, port: int, requests: Sequence[bytes], concurrency: int, seconds: float, max_requests: int
) -> LoadResult:
    """Drive host:port with `concurrency` connections for at most `seconds` and `max_requests` requests."""
    result = LoadResult(concurrency=concurrency, seconds=0.0)
    budget = itertools.count()
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(
            _connection(host, port, requests, deadline, budget, max_requests, result)
            for _ in range(concurrency)
        )
    )
    result.seconds = time.perf_counter() - started
    return result
