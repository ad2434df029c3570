"""The contract test between infra and the tracking-server image, shared by every cloud.

`run_tracking_contract(env, overrides, storage)` starts the REAL entrypoint
(`python -m infra.mlflow_server.entrypoint`) as a subprocess with `env` (the environment infra gives
the container, secrets resolved to test values) updated by `overrides` (local PostgreSQL and storage
emulator endpoints), then, over real HTTP:

1. waits for `/health`;
2. as the admin: creates an experiment, logs a run with a param, a metric and an artifact, and reads
   the artifact back through the server (proxied, `mlflow-artifacts:`); with `storage`, also checks
   the bytes landed in the emulated bucket under the artifacts destination;
3. checks the server advertises multipart uploads (big models go straight to the bucket);
4. checks a request without credentials and one with a wrong password both get 401;
5. checks the host check is on: infra's host is accepted, a foreign Host header gets 403; and that
   credentialed writes are accepted from the service's own origin only (not from localhost pages);
6. checks the server's processes stay small (the job runner is off) and no secret reached its log;
7. runs the caller's `extra_checks` (name -> check of the `RunningServer`), each as a named step.

The server inherits nothing from the test process but PATH, HOME and the locale: what it needs must
come from `env` and `overrides`, as in the container. Failures name the step and carry the server's
log tail (with secrets redacted).
"""

import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock
from urllib.parse import urlparse

import requests
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from mlops_stack.ports import free_port
from testing.storage_emulators import StorageEmulator

REPO_ROOT = Path(__file__).resolve().parents[1]
ENTRYPOINT_MODULE = "infra.mlflow_server.entrypoint"
STARTUP_TIMEOUT_S = 120.0
# One web worker plus the CLI parent measure about 500 MiB; the job runner alone would add ~2 GiB.
MAX_SERVER_RSS_MIB = 1200
SECRET_VARIABLES = ("MLFLOW_DB_PASSWORD", "MLFLOW_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY")
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


class TrackingContractError(AssertionError):
    """The tracking server broke the contract; the message names the step and shows its log tail."""


@dataclass(frozen=True)
class ContractOutcome:
    """What the contract run did, for callers that check more (and for measurements)."""

    tracking_uri: str
    run_id: str
    artifact_key: str
    startup_seconds: float
    server_rss_mib: float


@dataclass(frozen=True)
class RunningServer:
    """What an extra check gets: where the server listens, its admin, and where its artifacts go."""

    base_url: str
    username: str
    password: str
    allowed_host: str  # a Host header infra's allowed hosts accept
    destination: str  # MLFLOW_ARTIFACTS_DESTINATION
    storage: StorageEmulator | None
    workdir: Path


ExtraCheck = Callable[[RunningServer], None]


@dataclass
class _Server:
    process: subprocess.Popen[bytes]
    log_path: Path
    secrets: tuple[str, ...]

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        for value in self.secrets:
            text = text.replace(value, "<redacted>")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM the whole session (`mlflow server` spawns uvicorn workers), SIGKILL after 15 s."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, 15)
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait()
        except ProcessLookupError:
            self.process.wait()


def server_environment(env: Mapping[str, str], overrides: Mapping[str, str], port: int) -> dict[str, str]:
    """What the entrypoint gets: PATH/HOME/locale, then infra's env, the overrides, loopback binding."""
    inherited = {name: os.environ[name] for name in INHERITED if name in os.environ}
    return {**inherited, **env, **overrides, "PORT": str(port), "MLFLOW_BIND_HOST": "127.0.0.1"}


def concrete_host(pattern: str) -> str:
    """A Host header matching an allowed-hosts pattern (`*.run.app` -> `contract-test.run.app`)."""
    return pattern.replace("*", "contract-test")


def _session_rss_mib(session_id: int) -> float:
    """Resident memory of every process in the session `session_id`, in MiB (Linux /proc)."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[3]) == session_id:  # field 6 of stat: the session id
                total += int((entry / "statm").read_text().split()[1]) * page
        except (OSError, ValueError):
            continue  # the process ended while we looked
    return total / 2**20


def _start(environment: dict[str, str], workdir: Path) -> _Server:
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", ENTRYPOINT_MODULE],
            env=environment,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    values = tuple(environment[name] for name in SECRET_VARIABLES if environment.get(name))
    return _Server(process, log_path, values)


def _wait_healthy(server: _Server, base_url: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"the entrypoint exited with code {server.process.returncode}")
        try:
            if requests.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.25)
    raise AssertionError(f"/health did not answer 200 within {STARTUP_TIMEOUT_S:.0f}s")


@contextmanager
def _step(name: str, server: _Server) -> Iterator[None]:
    """Turn any error inside into a `TrackingContractError` naming the step, with the server's log tail."""
    try:
        yield
    except Exception as error:
        raise TrackingContractError(
            f"tracking contract failed at '{name}': {error}\n--- server log (tail) ---\n{server.log_tail()}"
        ) from error


def _log_and_read_back(
    tracking_uri: str, username: str, password: str, workdir: Path
) -> tuple[str, str, bytes]:
    """As the admin, through the MLflow client: experiment, run, param, metric, artifact, read back.

    Returns the run id, the artifact's key relative to the artifacts destination, and its bytes.
    """
    credentials = {"MLFLOW_TRACKING_USERNAME": username, "MLFLOW_TRACKING_PASSWORD": password}
    content = f"contract {secrets.token_hex(8)}\n".encode()
    local = workdir / "upload" / "model-card.txt"
    local.parent.mkdir()
    local.write_bytes(content)
    with mock.patch.dict(os.environ, credentials):
        client = MlflowClient(tracking_uri)
        experiment_id = client.create_experiment(f"contract-{secrets.token_hex(4)}")
        run = client.create_run(experiment_id)
        run_id = run.info.run_id
        client.log_batch(
            run_id, metrics=[Metric("rmse", 0.25, int(time.time() * 1000), 0)], params=[Param("alpha", "0.5")]
        )
        client.log_artifact(run_id, str(local), artifact_path="contract")
        client.set_terminated(run_id)
        stored = client.get_run(run_id)
        assert stored.data.params == {"alpha": "0.5"}, f"params read back: {stored.data.params}"
        assert stored.data.metrics == {"rmse": 0.25}, f"metrics read back: {stored.data.metrics}"
        assert stored.info.artifact_uri.startswith("mlflow-artifacts:"), (
            f"artifacts are not proxied by the server: artifact_uri={stored.info.artifact_uri}"
        )
        downloaded = Path(client.download_artifacts(run_id, "contract/model-card.txt", str(workdir)))
    assert downloaded.read_bytes() == content, "the artifact read back differs from the one logged"
    return run_id, f"{experiment_id}/{run_id}/artifacts/contract/model-card.txt", content


def _check_access_control(base_url: str, username: str, password: str, allowed_host: str) -> None:
    """401 without or with wrong credentials; infra's host accepted; a foreign Host refused."""
    url = f"{base_url}/api/2.0/mlflow/experiments/search?max_results=1"
    anonymous = requests.get(url, timeout=10)
    assert anonymous.status_code == 401, f"no credentials: expected 401, got {anonymous.status_code}"
    wrong = requests.get(url, auth=(username, password + "-wrong"), timeout=10)
    assert wrong.status_code == 401, f"wrong password: expected 401, got {wrong.status_code}"
    as_infra_host = requests.get(url, auth=(username, password), headers={"Host": allowed_host}, timeout=10)
    assert as_infra_host.status_code == 200, (
        f"Host {allowed_host} (from MLFLOW_ALLOWED_HOSTS): expected 200, got {as_infra_host.status_code}"
    )
    foreign = requests.get(url, auth=(username, password), headers={"Host": "attacker.example"}, timeout=10)
    assert foreign.status_code == 403, f"foreign Host header: expected 403, got {foreign.status_code}"


def _check_cross_origin_writes(base_url: str, username: str, password: str, allowed_host: str) -> None:
    """Credentialed writes from the service's own origin pass; from a page on the user's machine (which MLflow
    itself would trust) they are refused, and a preflight from there is not granted."""
    url = f"{base_url}/api/2.0/mlflow/experiments/create"
    for origin, expected in (
        (f"https://{allowed_host}", 200),
        ("http://127.0.0.1:9999", 403),
        ("http://localhost:3000", 403),
    ):
        answer = requests.post(
            url,
            auth=(username, password),
            headers={"Host": allowed_host, "Origin": origin},
            json={"name": f"cors-{secrets.token_hex(4)}"},
            timeout=10,
        )
        assert answer.status_code == expected, (
            f"POST from {origin}: expected {expected}, got {answer.status_code}"
        )
    preflight = requests.options(
        url,
        headers={
            "Host": allowed_host,
            "Origin": "http://127.0.0.1:9999",
            "Access-Control-Request-Method": "POST",
        },
        timeout=10,
    )
    granted = preflight.headers.get("access-control-allow-origin")
    assert granted is None, f"preflight from http://127.0.0.1:9999 granted: {granted}"


def _check_multipart_advertised(base_url: str, username: str, password: str) -> None:
    info = requests.get(f"{base_url}/api/3.0/mlflow/server-info", auth=(username, password), timeout=10)
    assert info.status_code == 200, f"server-info: {info.status_code} {info.text[:200]}"
    assert info.json().get("multipart_uploads_enabled") is True, f"multipart uploads off: {info.json()}"


def run_tracking_contract(
    env: Mapping[str, str],
    overrides: Mapping[str, str],
    storage: StorageEmulator | None = None,
    extra_checks: Mapping[str, ExtraCheck] | None = None,
) -> ContractOutcome:
    """Run the real entrypoint with `env` + `overrides` and check the contract (see the module docstring).

    `storage`, when given, gets the destination's bucket created first (with infra's name) and is used
    to check that the artifact really landed there. `overrides["PORT"]` is used if set, else a free port.
    """
    port = int(overrides.get("PORT") or free_port())
    environment = server_environment(env, overrides, port)
    destination = environment.get("MLFLOW_ARTIFACTS_DESTINATION", "")
    if storage is not None:
        storage.create_bucket(urlparse(destination).netloc.split("@", 1)[0])
    username = environment.get("MLFLOW_ADMIN_USERNAME") or "admin"
    password = environment.get("MLFLOW_ADMIN_PASSWORD", "")
    allowed_host = concrete_host(environment.get("MLFLOW_ALLOWED_HOSTS", "").split(",")[0].strip())
    base_url = f"http://127.0.0.1:{port}"

    with tempfile.TemporaryDirectory(prefix="tracking-contract-") as tmp:
        workdir = Path(tmp)
        started = time.monotonic()
        server = _start(environment, workdir)
        try:
            with _step("start the entrypoint and wait for /health", server):
                _wait_healthy(server, base_url)
            startup_seconds = time.monotonic() - started
            with _step("log a run with an artifact as admin and read it back", server):
                run_id, artifact_key, content = _log_and_read_back(base_url, username, password, workdir)
            if storage is not None:
                with _step(f"find the artifact in the bucket under {destination}", server):
                    stored = storage.read_artifact(destination, artifact_key)
                    assert stored == content, "the object in the bucket differs from the artifact logged"
            with _step("multipart uploads advertised in /server-info", server):
                _check_multipart_advertised(base_url, username, password)
            with _step("access control (401 for anonymous / wrong password, host check)", server):
                _check_access_control(base_url, username, password, allowed_host)
            with _step("cross-origin writes only from the service's own origin", server):
                _check_cross_origin_writes(base_url, username, password, allowed_host)
            running = RunningServer(base_url, username, password, allowed_host, destination, storage, workdir)
            for name, check in (extra_checks or {}).items():
                with _step(name, server):
                    check(running)
            rss_mib = _session_rss_mib(server.process.pid)
            with _step("server memory", server):
                assert rss_mib < MAX_SERVER_RSS_MIB, f"server processes use {rss_mib:.0f} MiB"
        finally:
            server.stop()
        with _step("no secret in the server log", server):
            log = server.log_path.read_text(errors="replace")
            leaked = [name for name in SECRET_VARIABLES if environment.get(name) and environment[name] in log]
            assert not leaked, f"the server log contains the value of {', '.join(leaked)}"
    return ContractOutcome(base_url, run_id, artifact_key, startup_seconds, rss_mib)
