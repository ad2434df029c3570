"""The benchmark's load generator counts what really happened: successes, errors, latencies, bounds."""

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench import compare
from bench.compare import (
    BATCH_CONCURRENCY,
    Level,
    ServerRun,
    format_goals_table,
    format_monitoring_table,
    format_rows_table,
    format_table,
    process_tree_cpu_seconds,
)
from bench.image_size import disk_mb
from bench.load_generator import LoadResult, post_request, run_load
from mlops_stack.ports import free_port


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


def _run(name: str, *loads: tuple[Level, LoadResult], **fields: Any) -> ServerRun:
    """A server's run with these (level, result) pairs."""
    return ServerRun(name, loads=[load for _, load in loads], levels=[level for level, _ in loads], **fields)


def _load(concurrency: int, ok: int, p99: float) -> LoadResult:
    return LoadResult(concurrency, 1.0, ok=ok, reported_percentiles_ms={99.0: p99})


def test_table_reports_ratios() -> None:
    one_row = Level(1, 1, [b"{}"])
    mlflow = _run("mlflow", (one_row, LoadResult(1, 1.0, ok=100)), startup_seconds=10.0, peak_rss_mib=500.0)
    ours = _run("ours", (one_row, LoadResult(1, 1.0, ok=400)), startup_seconds=5.0, peak_rss_mib=250.0)
    table = format_table(mlflow, ours)
    assert "| 1 | 100 | 400 | 4.00x |" in table
    assert "| start to first good prediction (s) | 10.0 | 5.0 | 0.50x |" in table


def test_rows_table_counts_rows_not_requests_and_only_at_the_batch_concurrency() -> None:
    single, batch = Level(1, 1, [b"{}"]), Level(BATCH_CONCURRENCY, 100, [b"{}"])
    mlflow = _run("mlflow", (single, LoadResult(1, 1.0, ok=50)), (batch, LoadResult(8, 2.0, ok=20)))
    ours = _run("ours", (single, LoadResult(1, 1.0, ok=900)), (batch, LoadResult(8, 2.0, ok=300)))
    table = format_rows_table(mlflow, ours)
    assert "| 100 | 1000 | 15000 | 15.00x |" in table
    assert "| 1 |" not in table


def test_goals_table_marks_each_goal_met_or_not() -> None:
    levels = [Level(concurrency, 1, [b"{}"]) for concurrency in (1, 8)]
    fast = [_load(1, ok=2100, p99=1.0), _load(8, ok=1900, p99=9.0)]
    slow = [_load(1, ok=100, p99=10.0), _load(8, ok=100, p99=8.0)]
    mlflow = _run("mlflow", *zip(levels, slow, strict=True), startup_seconds=8.0)
    ours = _run("ours", *zip(levels, fast, strict=True), startup_seconds=1.1)
    table = format_goals_table(mlflow, ours, environment_mb=310.0)
    assert "| 1-row req/s at least 20x mlflow's, c=1, 8 | 21.0x, 19.0x | no |" in table
    assert "| p99 no higher than mlflow's at each | 0.10x, 1.12x | no |" in table
    assert "| start to first prediction at most 1.2 s, example model | 1.1 s (mlflow 8.0 s) | yes |" in table
    assert "| example model's API image environment at most 300 MB | 310 MB | no |" in table
    assert "| not measured | no |" in format_goals_table(mlflow, ours, environment_mb=None)


def test_monitoring_table_reports_on_over_off() -> None:
    level = Level(8, 1, [b"{}"])
    on = _run("ours", (level, LoadResult(8, 1.0, ok=960, latencies=[0.002])), cpu_ms_per_request=[0.63])
    off = _run("ours-off", (level, LoadResult(8, 1.0, ok=1000, latencies=[0.002])), cpu_ms_per_request=[0.6])
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


def test_environment_size_counts_files_once_and_skips_symlinks(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "a.so").write_bytes(b"x" * 1_500_000)
    (tmp_path / "b.py").write_bytes(b"y" * 500_000)
    (tmp_path / "python").symlink_to(tmp_path / "lib" / "a.so")
    assert disk_mb(tmp_path) == 2.0


_SERVER = """
import http.server, sys, time
delay = float(sys.argv[2])
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(delay)
        body = b'{"predictions": [1.0]}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def test_alternating_rounds_load_every_server_and_keep_one_result_per_level(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(compare, "SECONDS_PER_ROUND", 1.0)
    monkeypatch.setattr(compare, "ALTERNATING_ROUNDS", 3)
    servers = {}
    for name, delay in (("fast", "0"), ("slow", "0.02")):
        port = free_port()
        servers[name] = ([sys.executable, "-c", _SERVER, str(port), delay], dict(os.environ), port)
    level = Level(1, 1, [b'{"inputs": [[1.0]]}'])
    runs = compare.bench_alternating(servers, level, [level])
    assert set(runs) == {"fast", "slow"}
    for run in runs.values():
        assert run.startup_seconds < 30
        assert run.levels == [level]
        assert len(run.loads) == len(run.cpu_ms_per_request) == 1
        assert run.loads[0].errors == 0
    # A 20 ms answer caps one connection near 50 a second; the other is far faster.
    assert runs["slow"].loads[0].requests_per_second < 60 < runs["fast"].loads[0].requests_per_second
