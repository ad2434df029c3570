"""A real MLflow tracking server with basic auth on, shared by the tests of one session.

SQLite backend and proxied artifacts in a temporary directory, a free 127.0.0.1 port, and a generated admin
password: the same server `make local` runs (see `mlops_stack.local_mlflow`). Tests that register models
should use their own model names, since the server lives for the whole session.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlops_stack.local_mlflow import (
    ADMIN_USERNAME,
    ServerStartError,
    TrackingServerFiles,
    generate_secret,
    start_tracking_server,
    stop_process_group,
    wait_until_healthy,
)
from mlops_stack.ports import free_port


@dataclass(frozen=True)
class MlflowServer:
    """How to reach the running server, as its admin."""

    url: str
    username: str
    password: str
    artifacts_dir: Path
    """Where the server stores the artifacts it proxies (its `--artifacts-destination`)."""
    log_path: Path

    def client_env(self) -> dict[str, str]:
        """MLflow's standard environment variables that make a client talk to this server as admin."""
        return {
            "MLFLOW_TRACKING_URI": self.url,
            "MLFLOW_TRACKING_USERNAME": self.username,
            "MLFLOW_TRACKING_PASSWORD": self.password,
        }


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """Start the server once per test session; stop it (and its workers) at the end."""
    files = TrackingServerFiles(tmp_path_factory.mktemp("mlflow-server"))
    port = free_port()
    password = generate_secret()
    log_path = files.state_dir / "server.log"
    with log_path.open("wb") as log:
        process = start_tracking_server(files, port, password, generate_secret(), log=log)
        try:
            url = f"http://127.0.0.1:{port}"
            try:
                wait_until_healthy(f"{url}/health", process)
            except ServerStartError as error:
                tail = log_path.read_text(errors="replace")[-3000:]
                pytest.fail(f"{error}\n--- server log (tail) ---\n{tail}")
            yield MlflowServer(
                url=url,
                username=ADMIN_USERNAME,
                password=password,
                artifacts_dir=files.artifacts,
                log_path=log_path,
            )
        finally:
            stop_process_group(process)


@pytest.fixture
def mlflow_client_env(mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch) -> MlflowServer:
    """Point this test's in-process MLflow client at the shared server, as admin."""
    for name, value in mlflow_server.client_env().items():
        monkeypatch.setenv(name, value)
    return mlflow_server
