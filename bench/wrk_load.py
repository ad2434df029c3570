"""Load through wrk, when it is installed: the same closed-loop measurement as bench/load_generator.py,
from a C client that costs the server's CPUs less.

A Lua script makes wrk POST our body and print one JSON line of what it measured. wrk is bounded by time
(`-d`) only: stopping its threads early by a request count would leave its reported duration, and so the
request rate, wrong (its main thread always waits the whole `-d`). A closed loop of `concurrency`
connections over a few seconds is still a bounded load.
"""

import json
import math
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.load_generator import LoadResult

_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open(os.getenv("WRK_BODY_FILE"), "rb"):read("*a")
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.6f, "errors": %d, "p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(host: str, port: int, path: str, body: bytes, concurrency: int, seconds: float) -> LoadResult:
    """POST `body` to host:port/path with `concurrency` connections for `seconds` (whole, at least 1)."""
    threads = min(concurrency, 2)
    with tempfile.TemporaryDirectory() as work:
        script, body_file = Path(work, "post.lua"), Path(work, "body")
        script.write_text(_SCRIPT)
        body_file.write_bytes(body)
        completed = subprocess.run(
            [
                "wrk", f"-t{threads}", f"-c{concurrency}", f"-d{max(1, math.ceil(seconds))}s",
                "--timeout", "10s", "-s", str(script), f"http://{host}:{port}{path}",
            ],
            env={
                "WRK_BODY_FILE": str(body_file),
                "PATH": "/usr/bin:/bin",
            },
            capture_output=True,
            text=True,
            check=False,
            timeout=seconds + 30,
        )  # fmt: skip
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed: {completed.stderr.strip() or completed.stdout.strip()}")
    measured = json.loads(lines[-1])
    errors = int(measured["errors"])
    return LoadResult(
        concurrency=concurrency,
        seconds=float(measured["seconds"]),
        ok=int(measured["requests"]) - errors,
        errors=errors,
        reported_percentiles_ms={50.0: measured["p50_us"] / 1000, 99.0: measured["p99_us"] / 1000},
    )
