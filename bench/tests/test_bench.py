"""The benchmark's load generator counts what really happened: successes, errors, latencies, bounds."""

import asyncio
import os
import subprocess
import sys
import time

from bench.compare import ServerRun, format_monitoring_table, format_table, process_tree_cpu_seconds
from bench.load_generator import LoadResult, post_request, run_load


async def serve_every_third_failing(port_box: list[int], served: list[int]) -> asyncio.Server:
    """A tiny keep-alive HTTP server: 200 for most requests, 503 for every third one."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            length = int(
                next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))[15:]
            )
            await reader.readexactly(length)
            served.append(1)
            status = b"503 Service Unavailable" if len(served) % 3 == 0 else b"200 OK"
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port_box.append(server.sockets[0].getsockname()[1])
    return server


def test_counts_successes_and_errors_within_the_request_budget() -> None:
    async def scenario() -> tuple[LoadResult, int]:
        port_box: list[int] = []
        served: list[int] = []
        server = await serve_every_third_failing(port_box, served)
        async with server:
            request = post_request("127.0.0.1", port_box[0], "/invocations", b'{"inputs": [1]}')
            result = await run_load(
                "127.0.0.1", port_box[0], [request], concurrency=4, seconds=10, max_requests=90
            )
        return result, len(served)

    result, served = asyncio.run(scenario())
    assert served == 90
    assert result.ok + result.errors == 90
    assert result.errors == 30
    assert len(result.latencies) == 60
    assert result.seconds < 10
    assert result.requests_per_second > 0


def test_connection_refused_counts_as_errors_and_stops_at_the_deadline() -> None:
    request = post_request("127.0.0.1", 9, "/", b"")
    result = asyncio.run(run_load("127.0.0.1", 9, [request], concurrency=2, seconds=0.3, max_requests=10**6))
    assert result.ok == 0
    assert result.errors > 0
    assert result.seconds < 2


def test_table_reports_ratios() -> None:
    mlflow = ServerRun("mlflow", startup_seconds=10.0, peak_rss_mib=500.0, loads=[LoadResult(1, 1.0, ok=100)])
    ours = ServerRun("ours", startup_seconds=5.0, peak_rss_mib=250.0, loads=[LoadResult(1, 1.0, ok=400)])
    table = format_table(mlflow, ours)
    assert "| 1 | 100 | 400 | 4.00x |" in table
    assert "| start to first good prediction (s) | 10.0 | 5.0 | 0.50x |" in table


def test_monitoring_table_reports_on_over_off() -> None:
    on = ServerRun("ours", loads=[LoadResult(8, 1.0, ok=960, latencies=[0.002])], cpu_ms_per_request=[0.63])
    off = ServerRun(
        "ours-off", loads=[LoadResult(8, 1.0, ok=1000, latencies=[0.002])], cpu_ms_per_request=[0.6]
    )
    assert "| 8 | 960 | 1000 | 0.96x | 0.630 | 0.600 | 1.05x | 2.0 | 2.0 |" in format_monitoring_table(
        on, off
    )


def test_cpu_seconds_of_a_process_tree_count_its_children() -> None:
    """A child burning CPU shows up in its parent's tree, so every forked worker is counted."""
    burn = (
        "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass\ntime.sleep(30)"
    )
    child = subprocess.Popen([sys.executable, "-c", burn])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and process_tree_cpu_seconds(child.pid) < 0.5:
            time.sleep(0.1)
        assert process_tree_cpu_seconds(child.pid) >= 0.5
        assert process_tree_cpu_seconds(os.getpid()) >= process_tree_cpu_seconds(child.pid)
    finally:
        child.kill()
        child.wait()
