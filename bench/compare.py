"""`make bench`: our model API against `mlflow models serve`, same models, same load, side by side.

The 50-tree example model is logged and registered in a throwaway local MLflow store (no server), then
each server in turn is started on a free 127.0.0.1 port from `models:/throughput/1`, timed from process
start to its first good prediction, driven with the same requests (bounded in requests and time by
bench/load_generator.py, rotating through them; by time only with wrk, which is used when installed and
sends the first request body): 1-row requests at several concurrencies, then 100- and 1000-row requests
(rows per second), and watched for peak memory (PSS of the process and all its children). The other
flavors the API serves (testing/flavor_models.py: a LightGBM booster, a DataFrame PythonModel, a
type-hinted one) are started on both servers for their start time. The example model's API image
environment is built as the image builds it (bench/image_size.py) and measured.

Prints the detailed tables, one of our API with its drift monitoring on (the default) and off, the
monitoring's cost on the request path measured in one process (bench/monitoring_cost.py), which a busy
machine disturbs far less, and last one table of the serving goals (issue 14) with what this run measured.
Both servers run with the same number of workers (ours' default: the CPUs the container may use).
"""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pandas as pd

from bench import image_size, monitoring_cost
from bench.load_generator import LoadResult, post_request, run_load
from bench.wrk_load import run_wrk, wrk_available
from mlops_stack.example_model import log_example_model
from mlops_stack.ports import free_port
from service.cpu_quota import usable_cpus
from testing.flavor_models import save_frame_model, save_lightgbm_model, save_type_hinted_model

CONCURRENCIES = (1, 8, 32)
ALTERNATING_ROUNDS = 3
SECONDS_PER_ROUND = 4.0
BATCH_ROWS = (100, 1000)
BATCH_CONCURRENCY = 8
SECONDS_PER_LEVEL = 6.0
MAX_REQUESTS_PER_LEVEL = 20_000
STARTUP_TIMEOUT = 120.0
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Level:
    """One load level: `concurrency` connections sending requests of `rows` rows each."""

    concurrency: int
    rows: int
    bodies: list[bytes]


@dataclass
class ServerRun:
    """What one server did: how fast it started, how much memory it took, how it handled each level."""

    name: str
    startup_seconds: float = float("nan")
    peak_rss_mib: float = 0.0
    loads: list[LoadResult] = field(default_factory=list)
    levels: list[Level] = field(default_factory=list)
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


@contextlib.contextmanager
def running_server(
    run: ServerRun, command: list[str], env: dict[str, str], port: int, probe: Level
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server, time its start to a good answer to `probe` (into `run`), yield it, stop it with
    SIGTERM (its peak memory into `run`)."""
    started = time.monotonic()
    # A file, not a pipe: a chatty server must never block on a full pipe. Closed in `finally`.
    log = tempfile.TemporaryFile()  # noqa: SIM115
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    memory = PeakMemory(process.pid)
    try:
        first_good_prediction(port, probe.bodies[0], probe.rows, process)
        run.startup_seconds = time.monotonic() - started
        yield process
    except (RuntimeError, TimeoutError) as error:
        log.seek(0)
        raise SystemExit(
            f"{run.name} failed: {error}\n{log.read().decode(errors='replace')[-2000:]}"
        ) from None
    finally:
        run.peak_rss_mib = memory.stop()
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def load_level(
    process: subprocess.Popen[bytes], port: int, level: Level, seconds: float
) -> tuple[LoadResult, float]:
    """Drive a running server at one level; what it measured and the server's CPU ms per request."""
    cpu_before = process_tree_cpu_seconds(process.pid)
    if wrk_available():
        result = run_wrk(HOST, port, "/invocations", level.bodies[0], level.concurrency, seconds)
    else:
        requests = [post_request(HOST, port, "/invocations", body) for body in level.bodies]
        result = asyncio.run(
            run_load(HOST, port, requests, level.concurrency, seconds, MAX_REQUESTS_PER_LEVEL)
        )
    answered = max(1, result.ok + result.errors)
    return result, (process_tree_cpu_seconds(process.pid) - cpu_before) * 1000 / answered


def _record(run: ServerRun, level: Level, result: LoadResult, cpu_ms: float) -> None:
    run.levels.append(level)
    run.loads.append(result)
    run.cpu_ms_per_request.append(cpu_ms)
    print(
        f"  {run.name:8} {level.rows:>4} rows c={level.concurrency:<3} "
        f"{result.requests_per_second:7.0f} req/s  "
        f"p99 {result.percentile_ms(99):7.1f} ms  CPU {cpu_ms:.3f} ms/req  errors {result.errors}",
        flush=True,
    )


def bench_server(
    name: str, command: list[str], env: dict[str, str], port: int, probe: Level, levels: list[Level]
) -> ServerRun:
    """Start one server, time its start to a good answer to `probe`, load it at each level, stop it."""
    run = ServerRun(name)
    with running_server(run, command, env, port, probe) as process:
        for level in levels:
            _record(run, level, *load_level(process, port, level, SECONDS_PER_LEVEL))
    return run


def bench_alternating(
    servers: dict[str, tuple[list[str], dict[str, str], int]], probe: Level, levels: list[Level]
) -> dict[str, ServerRun]:
    """Run all `servers` at once (an idle one costs the others nothing) and load them in turn, ROUNDS times
    per level, keeping each one's median round: two configurations compared minutes apart differ by what
    else the machine did meanwhile, often by more than the few percent being measured."""
    runs = {name: ServerRun(name) for name in servers}
    with contextlib.ExitStack() as stack:
        processes = {
            name: stack.enter_context(running_server(runs[name], command, env, port, probe))
            for name, (command, env, port) in servers.items()
        }
        for level in levels:
            rounds: dict[str, list[tuple[LoadResult, float]]] = {name: [] for name in servers}
            for _ in range(ALTERNATING_ROUNDS):
                for name, (_, _, port) in servers.items():
                    rounds[name].append(load_level(processes[name], port, level, SECONDS_PER_ROUND))
            for name, measured in rounds.items():
                by_rate = sorted(measured, key=lambda pair: pair[0].requests_per_second)
                _record(runs[name], level, *by_rate[len(by_rate) // 2])
    return runs


def _one_row(run: ServerRun) -> list[tuple[Level, LoadResult]]:
    return [(level, load) for level, load in zip(run.levels, run.loads, strict=True) if level.rows == 1]


def format_table(mlflow_run: ServerRun, ours: ServerRun) -> str:
    """A Markdown table of the 1-row levels: per concurrency req/s, p50, p99, errors for both, and ours/mlflow
    ratios; then start time and memory."""
    lines = [
        "| concurrency | mlflow req/s | ours req/s | ratio | mlflow p50 ms | ours p50 ms | "
        "mlflow p99 ms | ours p99 ms | p99 ratio | errors mlflow/ours |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (_, theirs), (_, mine) in zip(_one_row(mlflow_run), _one_row(ours), strict=True):
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


def format_rows_table(mlflow_run: ServerRun, ours: ServerRun) -> str:
    """A Markdown table: rows predicted per second by request size, at BATCH_CONCURRENCY connections."""
    lines = [
        "| rows per request | mlflow rows/s | ours rows/s | ratio | mlflow p99 ms | ours p99 ms |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    levels = zip(mlflow_run.levels, mlflow_run.loads, ours.loads, strict=True)
    for level, theirs, mine in levels:
        if level.concurrency != BATCH_CONCURRENCY:
            continue
        theirs_rows, mine_rows = (
            theirs.requests_per_second * level.rows,
            mine.requests_per_second * level.rows,
        )
        lines.append(
            f"| {level.rows} | {theirs_rows:.0f} | {mine_rows:.0f} | {_ratio(mine_rows, theirs_rows)} | "
            f"{theirs.percentile_ms(99):.1f} | {mine.percentile_ms(99):.1f} |"
        )
    return "\n".join(lines)


def format_starts_table(starts: dict[str, tuple[ServerRun, ServerRun]]) -> str:
    """A Markdown table: per model, start to first good prediction and peak memory of both servers."""
    lines = [
        "| model | mlflow start s | ours start s | ratio | mlflow MiB | ours MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for model, (theirs, mine) in starts.items():
        lines.append(
            f"| {model} | {theirs.startup_seconds:.1f} | {mine.startup_seconds:.1f} | "
            f"{_ratio(mine.startup_seconds, theirs.startup_seconds)} | {theirs.peak_rss_mib:.0f} | "
            f"{mine.peak_rss_mib:.0f} |"
        )
    return "\n".join(lines)


def format_goals_table(mlflow_run: ServerRun, ours: ServerRun, environment_mb: float | None) -> str:
    """The serving goals of issue 14 against what this run measured, each marked met or not."""
    pairs = list(zip(_one_row(mlflow_run), _one_row(ours), strict=True))
    speedups = [
        mine.requests_per_second / max(theirs.requests_per_second, 1e-9) for (_, theirs), (_, mine) in pairs
    ]
    p99s = [mine.percentile_ms(99) / theirs.percentile_ms(99) for (_, theirs), (_, mine) in pairs]
    concurrencies = ", ".join(str(level.concurrency) for (level, _), _ in pairs)
    size = "not measured" if environment_mb is None else f"{environment_mb:.0f} MB"
    rows = [
        (
            f"1-row req/s at least 20x mlflow's, c={concurrencies}",
            ", ".join(f"{ratio:.1f}x" for ratio in speedups),
            all(ratio >= 20 for ratio in speedups),
        ),
        (
            "p99 no higher than mlflow's at each",
            ", ".join(f"{ratio:.2f}x" for ratio in p99s),
            all(ratio <= 1 for ratio in p99s),
        ),
        (
            "start to first prediction at most 1.2 s, example model",
            f"{ours.startup_seconds:.1f} s (mlflow {mlflow_run.startup_seconds:.1f} s)",
            ours.startup_seconds <= 1.2,
        ),
        (
            "example model's API image environment at most 300 MB",
            size,
            environment_mb is not None and environment_mb <= 300,
        ),
    ]
    lines = ["| goal | measured | met |", "|---|---|---|"]
    lines += [f"| {goal} | {measured} | {'yes' if met else 'no'} |" for goal, measured, met in rows]
    return "\n".join(lines)


def format_monitoring_table(on: ServerRun, off: ServerRun) -> str:
    """A Markdown table: our API with drift monitoring on and off, per concurrency (the issue allows 5%):
    throughput, and the server's CPU per request, which a busy shared machine disturbs far less."""
    lines = [
        "| concurrency | monitoring on req/s | off req/s | on/off | on CPU ms/req | off CPU ms/req | "
        "on/off | on p99 ms | off p99 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    on_levels = [index for index, level in enumerate(on.levels) if level.rows == 1]
    off_levels = [index for index, level in enumerate(off.levels) if level.rows == 1]
    for on_index, off_index in zip(on_levels, off_levels, strict=True):
        with_it, without = on.loads[on_index], off.loads[off_index]
        on_rate, off_rate = with_it.requests_per_second, without.requests_per_second
        on_cpu, off_cpu = on.cpu_ms_per_request[on_index], off.cpu_ms_per_request[off_index]
        lines.append(
            f"| {with_it.concurrency} | {on_rate:.0f} | {off_rate:.0f} | {_ratio(on_rate, off_rate)} | "
            f"{on_cpu:.3f} | {off_cpu:.3f} | {_ratio(on_cpu, off_cpu)} | "
            f"{with_it.percentile_ms(99):.1f} | {without.percentile_ms(99):.1f} |"
        )
    return "\n".join(lines)


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x" if theirs else "n/a"


def _split_bodies(rows: pd.DataFrame, per_request: int, count: int) -> list[bytes]:
    """`count` dataframe_split bodies of `per_request` rows each, cycling through `rows`."""
    values = rows.to_numpy().tolist()
    bodies = []
    for start in range(count):
        chosen = [values[(start + i) % len(values)] for i in range(per_request)]
        bodies.append(orjson.dumps({"dataframe_split": {"columns": list(rows.columns), "data": chosen}}))
    return bodies


def _env(port: int, workers: int, model_uri: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "MODEL_URI": model_uri,
        "HOST": HOST,
        "PORT": str(port),
        "WORKERS": str(workers),
        **extra,
    }


def _flavor_starts(root: Path, workers: int) -> dict[str, tuple[ServerRun, ServerRun]]:
    """Start both servers on each other flavor; their start to a good prediction and their memory."""
    starts = {}
    for save in (save_lightgbm_model, save_frame_model, save_type_hinted_model):
        flavor = save(root / save.__name__)
        if isinstance(flavor.sample, list):
            probe = Level(1, len(flavor.sample), [orjson.dumps({"inputs": flavor.sample})])
        else:
            split = json.loads(flavor.sample.to_json(orient="split", index=False))
            probe = Level(1, len(flavor.sample), [orjson.dumps({"dataframe_split": split})])
        pair = []
        for server in ("mlflow", "ours"):
            port = free_port()
            print(f"starting {server} on {flavor.flavor} ...", flush=True)
            command = server_commands(flavor.local_path, port, workers)[server]
            pair.append(
                bench_server(server, command, _env(port, workers, flavor.local_path), port, probe, [])
            )
        starts[flavor.flavor] = (pair[0], pair[1])
    return starts


def main() -> None:
    """Log the models, bench both servers one after the other, print the tables."""
    with tempfile.TemporaryDirectory(prefix="bench-") as root:
        print("logging the 50-tree example model to a local MLflow store ...", flush=True)
        model = log_example_model(Path(root), n_estimators=50)
        rows = model.sample.head(200)
        one_row = _split_bodies(rows, 1, len(rows))
        levels = [Level(concurrency, 1, one_row) for concurrency in CONCURRENCIES]
        levels += [Level(BATCH_CONCURRENCY, size, _split_bodies(rows, size, 3)) for size in BATCH_ROWS]
        probe = Level(1, 1, one_row)
        workers = usable_cpus()

        def server(name: str, monitoring: str = "true") -> tuple[list[str], dict[str, str], int]:
            port = free_port()
            env = _env(
                port,
                workers,
                model.registry_uri,
                MLFLOW_TRACKING_URI=model.tracking_uri,
                MONITORING_ENABLED=monitoring,
            )
            print(f"starting {name} on port {port} ...", flush=True)
            return server_commands(model.registry_uri, port, workers)[name], env, port

        runs = {name: bench_server(name, *server(name), probe, levels) for name in ("mlflow", "ours")}
        # Ours twice more, with drift monitoring (the default; the model carries a reference profile) and
        # without, both running, loaded in turn: what monitoring costs, with the machine's drift cancelled.
        print("our API with and without drift monitoring, in alternating rounds ...", flush=True)
        monitoring = bench_alternating(
            {"ours-on": server("ours"), "ours-off": server("ours", monitoring="false")},
            probe,
            [level for level in levels if level.rows == 1],
        )
        starts = {"scikit-learn forest (example)": (runs["mlflow"], runs["ours"])}
        starts.update(_flavor_starts(Path(root), workers))
        print("building the example model's API image environment (GCP) ...", flush=True)
        environment = image_size.measure(Path(model.local_path) / "requirements.txt", Path(root) / "image")
        print()
        print(
            f"Model: RandomForestRegressor, 50 trees; dataframe_split requests; {os.cpu_count()} CPUs; "
            f"{workers} workers each; "
            f"load from {'wrk' if wrk_available() else 'bench/load_generator.py'}."
        )
        print(format_table(runs["mlflow"], runs["ours"]))
        print(f"\nRows per second by request size, {BATCH_CONCURRENCY} connections:")
        print(format_rows_table(runs["mlflow"], runs["ours"]))
        print("\nStart to first good prediction, each flavor:")
        print(format_starts_table(starts))
        print(f"\nThe example model's API image environment: {environment.describe()}")
        print()
        print(
            f"Drift monitoring (MONITORING_ENABLED), our API, both servers running, median of "
            f"{ALTERNATING_ROUNDS} alternating {SECONDS_PER_ROUND:g}-second rounds:"
        )
        print(format_monitoring_table(monitoring["ours-on"], monitoring["ours-off"]))
        cost = monitoring_cost.measure(model.local_path, one_row)
        print(
            f"\nOn the request path alone (one process, the same requests, best of {monitoring_cost.ROUNDS} "
            f"alternating rounds): {cost.on_us:.1f} us per request with monitoring, {cost.off_us:.1f} us "
            f"without: {cost.added_us:+.1f} us, {cost.added_us / cost.off_us:+.1%}."
        )
        print("\nServing goals (issue 14), this run:")
        print(format_goals_table(runs["mlflow"], runs["ours"], environment.total_mb))
