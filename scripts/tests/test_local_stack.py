"""`make local` as a person runs it: a subprocess, its printed curl line, Ctrl-C, and a second start."""

import json
import os
import queue
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from mlops_stack.local_mlflow import stop_process_group
from mlops_stack.ports import free_port

pytestmark = pytest.mark.slow

START_TIMEOUT_S = 240.0


@dataclass
class StackRun:
    """A running `python -m scripts.local_stack`, with its output collected line by line."""

    process: subprocess.Popen[str]
    lines: "queue.Queue[str]" = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)

    def wait_for_line(self, prefix: str, timeout: float = START_TIMEOUT_S) -> str:
        """The first output line starting with `prefix`; fails with all output so far if none comes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    break
                continue
            self.seen.append(line)
            if line.startswith(prefix):
                return line
        pytest.fail(f"no line starting with {prefix!r}; output so far:\n" + "\n".join(self.seen))

    def children_groups(self) -> list[int]:
        """Process groups of the stack's direct children (each server runs in its own group)."""
        groups = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == self.process.pid:
                    groups.append(int(fields[2]))
        return groups


@contextmanager
def local_stack(state_dir: Path, mlflow_port: int, api_port: int) -> Iterator[StackRun]:
    """Start the stack as `make local` does; kill what is left if the test fails half-way."""
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts.local_stack", "--state-dir", str(state_dir)],
        env={**os.environ, "MLFLOW_PORT": str(mlflow_port), "API_PORT": str(api_port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    run = StackRun(process)
    assert process.stdout is not None
    stdout = process.stdout

    def pump() -> None:
        for line in stdout:
            run.lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    try:
        yield run
    finally:
        for group in run.children_groups():
            os.killpg(group, signal.SIGKILL)
        stop_process_group(process)


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def interrupt_and_wait(run: StackRun) -> None:
    """Ctrl-C: the stack must exit 0 and leave no child behind."""
    groups = run.children_groups()
    assert len(groups) == 2, f"expected MLflow and the model API as children, found groups {groups}"
    run.process.send_signal(signal.SIGINT)
    assert run.process.wait(timeout=60) == 0
    run.wait_for_line("stopped.", timeout=5)
    assert not [group for group in groups if group_alive(group)]


def api_environment(run: StackRun) -> dict[str, str]:
    """The environment of the stack's `python -m service` child, as the kernel holds it."""
    for group in run.children_groups():
        if b"service" in Path(f"/proc/{group}/cmdline").read_bytes().split(b"\0"):
            pairs = Path(f"/proc/{group}/environ").read_bytes().split(b"\0")
            return dict(pair.decode().split("=", 1) for pair in pairs if b"=" in pair)
    pytest.fail("no model API child found")


def modes_under(state_dir: Path) -> dict[str, int]:
    return {
        str(path.relative_to(state_dir)): stat.S_IMODE(path.lstat().st_mode)
        for path in state_dir.rglob("*")
        if not path.is_symlink()
    }


def test_serves_predictions_stops_on_ctrl_c_and_reuses_its_state(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    mlflow_port, api_port = free_port(), free_port()
    # What an older version left: a world-readable state directory and log.
    state_dir.mkdir(mode=0o755)
    state_dir.chmod(0o755)
    (state_dir / "mlflow.log").write_text("an old run\n")
    (state_dir / "mlflow.log").chmod(0o644)

    with local_stack(state_dir, mlflow_port, api_port) as first:
        curl = first.wait_for_line("curl ")
        password_line = next(
            line for line in first.seen if line.startswith("MLflow admin password (shown once")
        )
        password_file = state_dir / "admin_password"
        assert password_line.endswith(password_file.read_text())
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        assert f"http://127.0.0.1:{api_port}/invocations" in curl

        # The printed line, exactly as a person would paste it into a shell.
        answer = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=30, check=True)
        predictions = json.loads(answer.stdout)["predictions"]
        assert len(predictions) == 2
        assert all(isinstance(value, float) for value in predictions)

        # The model trained here carries its reference profile: drift is watched, scored once rows come.
        watch = first.wait_for_line(f"curl -sS http://127.0.0.1:{api_port}/monitoring")
        shown = subprocess.run(["bash", "-c", watch], capture_output=True, text=True, timeout=30, check=True)
        assert json.loads(shown.stdout)["status"] == "not_enough_rows"

        # Owner-only state: the directory, MLflow's databases and artifacts, the logs, the secrets.
        assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
        modes = modes_under(state_dir)
        assert {"mlflow.db", "basic_auth.db", "mlflow.log", "api.log", "api_reader_password"} <= set(modes)
        assert any(name.startswith("artifacts/") for name in modes)
        loose = {name: f"{mode:04o}" for name, mode in modes.items() if mode & 0o077}
        assert not loose, f"readable by others: {loose}"

        # The API logs in to MLflow as the reader, never as the admin; the reader cannot move an alias.
        environment = api_environment(first)
        assert environment["MLFLOW_TRACKING_USERNAME"] == "model-api"
        assert password_file.read_text() not in "\0".join(environment.values())
        reader = (environment["MLFLOW_TRACKING_USERNAME"], environment["MLFLOW_TRACKING_PASSWORD"])
        alias = requests.post(
            f"http://127.0.0.1:{mlflow_port}/api/2.0/mlflow/registered-models/alias",
            json={"name": "throughput", "alias": "champion", "version": "1"},
            auth=reader,
            timeout=30,
        )
        assert alias.status_code == 403, alias.text

        interrupt_and_wait(first)
    assert port_is_free(mlflow_port)
    assert port_is_free(api_port)

    with local_stack(state_dir, mlflow_port, api_port) as second:
        second.wait_for_line("curl ")
        assert any(line.startswith("reusing throughput version 1 (@champion)") for line in second.seen)
        assert not any("training" in line for line in second.seen)
        assert f"MLflow admin password: in {password_file}" in second.seen
        assert not any(password_file.read_text() in line for line in second.seen)
        interrupt_and_wait(second)


@pytest.mark.parametrize(("busy", "setting"), [("mlflow", "MLFLOW_PORT"), ("api", "API_PORT")])
def test_a_busy_port_is_named_with_its_setting_before_anything_starts(
    tmp_path: Path, busy: str, setting: str
) -> None:
    state_dir = tmp_path / "state"
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        busy_port = occupant.getsockname()[1]
        ports = {"MLFLOW_PORT": str(free_port()), "API_PORT": str(free_port()), setting: str(busy_port)}
        result = subprocess.run(
            [sys.executable, "-m", "scripts.local_stack", "--state-dir", str(state_dir)],
            env={**os.environ, **ports},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 1
    assert f"port {busy_port} on 127.0.0.1" in result.stderr
    assert f"{setting}=<port> make local" in result.stderr
    assert not state_dir.exists(), "nothing may start (nor be created) when a port is busy"
