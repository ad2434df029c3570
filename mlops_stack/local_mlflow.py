"""Start a local MLflow tracking server with basic auth on, as `make local` and the test fixture need it.

One place knows the server's command line and environment, so the local stack and the tests run exactly
the same server: SQLite for runs, the registry and users; artifacts proxied to a directory; MLflow's
basic-auth app with a generated admin password; the job runner off (it costs ~2 GiB and nothing here
uses it); a single web worker (one user, and every worker is another ~250 MiB).
"""

import contextlib
import importlib.util
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import requests

from infra.mlflow_server.command import basic_auth_config

ADMIN_USERNAME = "admin"
HEALTH_TIMEOUT_S = 90.0


class ServerStartError(RuntimeError):
    """A child server exited or never became healthy."""


@dataclass(frozen=True)
class TrackingServerFiles:
    """Where one tracking server keeps its state: everything lives under `state_dir`."""

    state_dir: Path

    @property
    def backend_db(self) -> Path:
        return self.state_dir / "mlflow.db"

    @property
    def auth_db(self) -> Path:
        return self.state_dir / "basic_auth.db"

    @property
    def auth_config(self) -> Path:
        return self.state_dir / "basic_auth.ini"

    @property
    def artifacts(self) -> Path:
        return self.state_dir / "artifacts"


def write_secret_file(path: Path, value: str) -> None:
    """Create `path` holding `value`, readable by its owner only from the first byte (mode 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)


def generate_secret() -> str:
    """A random URL-safe secret, long enough for a password or a Flask session key."""
    return secrets.token_urlsafe(24)


def write_auth_config(files: TrackingServerFiles) -> None:
    """MLflow's basic-auth settings, pointing the user store at our state directory.

    `NO_PERMISSIONS` by default: a user the admin creates sees nothing until granted access.
    The admin password is not in this file; it reaches the server through its environment.
    """
    files.auth_config.write_text(basic_auth_config(f"sqlite:///{files.auth_db}", ADMIN_USERNAME))


def start_tracking_server(
    files: TrackingServerFiles,
    port: int,
    admin_password: str,
    flask_secret_key: str,
    log: IO[bytes] | int = subprocess.DEVNULL,
) -> subprocess.Popen[bytes]:
    """Launch `mlflow server` on 127.0.0.1:`port` in its own process group (see `stop_process_group`)."""
    if importlib.util.find_spec("flask_wtf") is None:
        # Checked here because the server would only say so deep in a traceback in its log.
        raise ServerStartError(
            "MLflow's basic-auth app needs Flask-WTF, which is not installed: install `mlflow[auth]`"
        )
    files.artifacts.mkdir(parents=True, exist_ok=True)
    write_auth_config(files)
    env = {
        **os.environ,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_AUTH_CONFIG_PATH": str(files.auth_config),
        "MLFLOW_AUTH_ADMIN_USERNAME": ADMIN_USERNAME,
        # Only read when the user store is empty; later starts keep the stored admin password.
        "MLFLOW_AUTH_ADMIN_PASSWORD": admin_password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": flask_secret_key,
    }
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--app-name",
        "basic-auth",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{files.backend_db}",
        "--serve-artifacts",
        "--artifacts-destination",
        str(files.artifacts),
    ]
    return subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=files.state_dir, start_new_session=True
    )


def wait_until_healthy(url: str, process: subprocess.Popen[Any], timeout: float = HEALTH_TIMEOUT_S) -> None:
    """Poll `url` until it answers 200; fail fast if `process` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartError(
                f"{url}: the process exited with code {process.returncode} before it was up"
            )
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.25)
    raise ServerStartError(f"{url} did not answer 200 within {timeout:.0f}s")


def stop_process_group(process: subprocess.Popen[Any], grace: float = 15.0) -> None:
    """SIGTERM the process and everything it spawned (its session); SIGKILL what is left after `grace` s.

    `mlflow server` runs its web workers as children: signalling only the CLI process can leave them
    holding the port, so the whole group gets the signal.
    """
    for sig, wait_s in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        deadline = time.monotonic() + wait_s
        while _group_alive(process.pid) and time.monotonic() < deadline:
            # Reaps the leader as soon as it exits; its orphaned children are reaped by init.
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.1)
        if not _group_alive(process.pid):
            break
    process.wait()


def _group_alive(pgid: int) -> bool:
    """Whether any process of group `pgid` is still running (signal 0 only checks)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
