"""`make bench`: our model API against `mlflow models serve`, same model, same load, side by side.

The 50-tree example model is logged and registered in a throwaway local MLflow store (no server), then
each server in turn is started on a free 127.0.0.1 port from `models:/throughput/1`, timed from process
start to its first good prediction, driven at several concurrencies with the same requests (bounded in
requests and time by bench/load_generator.py, rotating through them; by time only with wrk, which is
used when installed and sends the first request body), and watched for peak memory (PSS of the process and
all its children). Prints one table with the ratios ours/mlflow, one of our API with its drift
monitoring on (the default) and off, and the monitoring's cost on the request path measured in one
process (bench/monitoring_cost.py), which a busy machine disturbs far less. Each server runs with its
default worker count.
"""

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from bench import monitoring_cost
from bench.load_generator import LoadResult, post_request, run_load
from bench.wrk_load import run_wrk, wrk_available
from mlops_stack.example_model import log_example_model
from mlops_stack.ports import free_port
from service.cpu_quota import usable_cpus

CONCURRENCIES = (1, 8, 32)
SECONDS_PER_LEVEL = 6.0
MAX_REQUESTS_PER_LEVEL = 20_000
STARTUP_TIMEOUT = 120.0
HOST = "127.0.0.1"


@dataclass
class ServerRun:
    """What one server did: how fast it started, how much memory it took, how it handled load."""

    name: str
    startup_seconds: float = float("nan")
    peak_rss_mib: float = 0.0
    loads: list[LoadResult] = field(default_factory=list)
    cpu_ms_per_request: list[float] = field(default_factory=list)
    """Server CPU (all its processes) per answered request, per load level."""


def server_commands(model_uri: str, port: int, workers: int) -> dict[str, list[str]]:
    """The two servers under test, with the same number of worker processes (mlflow's default is one;
    ours, the CPUs the container may use: left to defaults, the ratio would compare worker counts)."""
    return {
        "mlflow": [
            sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri,
            "--env-manager", "local", "--host", HOST, "--port", str(port), "--workers", str(workers),
        ],
        "ours": [sys.executable, "-m", "service"],
    }  # fmt: skip


def process_tree(root: int) -> list[int]:
    """`root` and all its live descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def process_tree_rss_mib(root: int) -> float:
    """Memory of `root` and all its descendants, from /proc (MiB), as proportional set size: pages that
    forked workers share are counted once across them, not once per worker as RSS would."""
    total_kib = 0
    for pid in process_tree(root):
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024


def process_tree_cpu_seconds(root: int) -> float:
    """CPU time (user + system) that `root` and its live descendants have used so far, from /proc.

    CPU per request is what a feature costs the server, and unlike requests per second it hardly moves
    when other work shares the machine's CPUs."""
    ticks = 0
    for pid in process_tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return ticks / os.sysconf("SC_CLK_TCK")


class PeakMemory:
    """Samples a process tree's memory in a background thread; `peak_mib` is the largest seen."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid, self.interval, self.peak_mib = pid, interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mib = max(self.peak_mib, process_tree_rss_mib(self.pid))
            self._stop.wait(self.interval)

    def stop(self) -> float:
        """Stop sampling and return the peak."""
        self._stop.set()
        self._thread.join()
        return self.peak_mib


def first_good_prediction(port: int, body: bytes, rows: int, process: subprocess.Popen[bytes]) -> None:
    """Poll /invocations until it answers `rows` predictions; raise if the server dies or times out."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before serving")
        request = urllib.request.Request(
            f"http://{HOST}:{port}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310  (our own loopback URL)
                if len(orjson.loads(response.read())["predictions"]) == rows:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"no good prediction within {STARTUP_TIMEOUT:.0f}s")


def bench_server(
    name: str, command: list[str], env: dict[str, str], port: int, bodies: list[bytes]
) -> ServerRun:
    """Start one server, time its start, load it at each concurrency, stop it with SIGTERM."""
    run = ServerRun(name)
    started = time.monotonic()
    # A file, not a pipe: a chatty server must never block on a full pipe. Closed in `finally`.
    log = tempfile.TemporaryFile()  # noqa: SIM115
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    memory = PeakMemory(process.pid)
    try:
        first_good_prediction(port, bodies[0], 1, process)
        run.startup_seconds = time.monotonic() - started
        requests = [post_request(HOST, port, "/invocations", body) for body in bodies]
        for concurrency in CONCURRENCIES:
            cpu_before = process_tree_cpu_seconds(process.pid)
            if wrk_available():
                result = run_wrk(HOST, port, "/invocations", bodies[0], concurrency, SECONDS_PER_LEVEL)
            else:
                result = asyncio.run(
                    run_load(HOST, port, requests, concurrency, SECONDS_PER_LEVEL, MAX_REQUESTS_PER_LEVEL)
                )
            answered = max(1, result.ok + result.errors)
            run.cpu_ms_per_request.append(
                (process_tree_cpu_seconds(process.pid) - cpu_before) * 1000 / answered
            )
            run.loads.append(result)
            print(
                f"  {name:8} c={concurrency:<3} {result.requests_per_second:7.0f} req/s  "
                f"p99 {result.percentile_ms(99):6.1f} ms  CPU {run.cpu_ms_per_request[-1]:.3f} ms/req  "
                f"errors {result.errors}",
                flush=True,
            )
    except (RuntimeError, TimeoutError) as error:
        log.seek(0)
        raise SystemExit(f"{name} failed: {error}\n{log.read().decode(errors='replace')[-2000:]}") from None
    finally:
        run.peak_rss_mib = memory.stop()
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
    return run


def format_table(mlflow_run: ServerRun, ours: ServerRun) -> str:
    """A Markdown table: per concurrency req/s, p50, p99, errors for both, and ours/mlflow ratios."""
    lines = [
        "| concurrency | mlflow req/s | ours req/s | ratio | mlflow p50 ms | ours p50 ms | "
        "mlflow p99 ms | ours p99 ms | p99 ratio | errors mlflow/ours |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for theirs, mine in zip(mlflow_run.loads, ours.loads, strict=True):
        lines.append(
            f"| {mine.concurrency} | {theirs.requests_per_second:.0f} | {mine.requests_per_second:.0f} | "
            f"{_ratio(mine.requests_per_second, theirs.requests_per_second)} | "
            f"{theirs.percentile_ms(50):.1f} | {mine.percentile_ms(50):.1f} | "
            f"{theirs.percentile_ms(99):.1f} | {mine.percentile_ms(99):.1f} | "
            f"{_ratio(mine.percentile_ms(99), theirs.percentile_ms(99))} | {theirs.errors}/{mine.errors} |"
        )
    lines += [
        "",
        "| | mlflow | ours | ratio |",
        "|---|---:|---:|---:|",
        f"| start to first good prediction (s) | {mlflow_run.startup_seconds:.1f} | "
        f"{ours.startup_seconds:.1f} | "
        f"{_ratio(ours.startup_seconds, mlflow_run.startup_seconds)} |",
        f"| peak memory, PSS (MiB) | {mlflow_run.peak_rss_mib:.0f} | {ours.peak_rss_mib:.0f} | "
        f"{_ratio(ours.peak_rss_mib, mlflow_run.peak_rss_mib)} |",
    ]
    return "\n".join(lines)


def format_monitoring_table(on: ServerRun, off: ServerRun) -> str:
    """A Markdown table: our API with drift monitoring on and off, per concurrency (the issue allows 5%):
    throughput, and the server's CPU per request, which a busy shared machine disturbs far less."""
    lines = [
        "| concurrency | monitoring on req/s | off req/s | on/off | on CPU ms/req | off CPU ms/req | "
        "on/off | on p99 ms | off p99 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level, (with_it, without) in enumerate(zip(on.loads, off.loads, strict=True)):
        on_rate, off_rate = with_it.requests_per_second, without.requests_per_second
        on_cpu, off_cpu = on.cpu_ms_per_request[level], off.cpu_ms_per_request[level]
        lines.append(
            f"| {with_it.concurrency} | {on_rate:.0f} | {off_rate:.0f} | {_ratio(on_rate, off_rate)} | "
            f"{on_cpu:.3f} | {off_cpu:.3f} | {_ratio(on_cpu, off_cpu)} | "
            f"{with_it.percentile_ms(99):.1f} | {without.percentile_ms(99):.1f} |"
        )
    return "\n".join(lines)


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x" if theirs else "n/a"


def main() -> None:
    """Log the model, bench both servers one after the other, print the table."""
    with tempfile.TemporaryDirectory(prefix="bench-") as root:
        print("logging the 50-tree example model to a local MLflow store ...", flush=True)
        model = log_example_model(Path(root), n_estimators=50)
        rows = model.sample.head(200)
        bodies = [
            orjson.dumps({"dataframe_split": {"columns": list(rows.columns), "data": [row]}})
            for row in rows.to_numpy().tolist()
        ]
        runs = {}
        workers = usable_cpus()
        # Ours twice: with drift monitoring (the default; the model carries a reference profile) and
        # without, so the table below shows what monitoring costs on the same machine minutes apart.
        for name, server, monitoring in (
            ("mlflow", "mlflow", "true"),
            ("ours", "ours", "true"),
            ("ours-off", "ours", "false"),
        ):
            port = free_port()
            env = {
                **os.environ,
                "MLFLOW_TRACKING_URI": model.tracking_uri,
                "MODEL_URI": model.registry_uri,
                "HOST": HOST,
                "PORT": str(port),
                "MONITORING_ENABLED": monitoring,
                "WORKERS": str(workers),
            }
            print(f"starting {name} on port {port} ...", flush=True)
            runs[name] = bench_server(
                name, server_commands(model.registry_uri, port, workers)[server], env, port, bodies
            )
        print()
        print(
            f"Model: RandomForestRegressor, 50 trees; 1-row dataframe_split requests; {os.cpu_count()} CPUs; "
            f"{workers} workers each; "
            f"load from {'wrk' if wrk_available() else 'bench/load_generator.py'}."
        )
        print(format_table(runs["mlflow"], runs["ours"]))
        print()
        print("Drift monitoring (MONITORING_ENABLED), our API:")
        print(format_monitoring_table(runs["ours"], runs["ours-off"]))
        cost = monitoring_cost.measure(model.local_path, bodies)
        print(
            f"\nOn the request path alone (one process, the same requests, best of {monitoring_cost.ROUNDS} "
            f"alternating rounds): {cost.on_us:.1f} us per request with monitoring, {cost.off_us:.1f} us "
            f"without: {cost.added_us:+.1f} us, {cost.added_us / cost.off_us:+.1%}."
        )
