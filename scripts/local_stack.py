"""`make local`: the whole notebook-to-API flow on this machine, on 127.0.0.1.

1. an MLflow tracking server with basic auth (SQLite and proxied artifacts under `.local/`, the admin
   password generated once, kept in `.local/admin_password` with mode 0600 and printed only that time);
2. the example model trained, registered as `throughput@challenger` and promoted to `@champion`, unless a
   champion already exists (a second run reuses the state; `--retrain` trains a new challenger);
3. the model API (`python -m service`) pinned to the champion's version, logged in to MLflow as a user
   that may only read that model (not as the admin), a curl line that calls it, and the commands that
   watch its drift (`/monitoring`, `/metrics`, `scripts/shift_traffic.py`).

`.local/` and everything in it is readable by its owner only (0700 directories, 0600 files), also when
it was made by an older version with looser modes; a secret file that others could read is refused.

Ctrl-C stops everything. Ports: MLflow 5000 and API 8000 unless `MLFLOW_PORT` / `API_PORT` (or
`--mlflow-port` / `--api-port`) say otherwise; a busy port is reported before anything starts.
"""

import argparse
import json
import os
import shlex
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.server import get_app_client
from mlflow.server.auth.client import AuthServiceClient
from mlflow.tracking import MlflowClient

from mlops_stack import example_model
from mlops_stack.local_mlflow import (
    ADMIN_USERNAME,
    ServerStartError,
    TrackingServerFiles,
    generate_secret,
    start_tracking_server,
    stop_process_group,
    wait_until_healthy,
    write_secret_file,
)
from scripts.promote import CHAMPION_ALIAS, PromotionError, promote, version_by_alias
from scripts.train import DEFAULT_MODEL_NAME, train_and_register

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
LOG_TAIL_CHARS = 3_000
# The MLflow user the model API logs in as: READ on the served model and on the experiment holding its
# artifacts (the artifact proxy checks the experiment), nothing else granted.
API_READER_USERNAME = "model-api"
OWNER_ONLY_UMASK = 0o077


class LocalStackError(RuntimeError):
    """Something the person running `make local` must fix; the message says what."""


@dataclass(frozen=True)
class PortSetting:
    """A port, and how the person running the stack changes it."""

    port: int
    role: str
    env_var: str
    flag: str

    def ensure_free(self) -> None:
        """Fail with a message naming the port and the setting to change if something listens on it."""
        with socket.socket() as probe:
            # Like the servers themselves: a port left in TIME_WAIT by a previous run is free to use.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((HOST, self.port))
            except OSError as error:
                raise LocalStackError(
                    f"port {self.port} on {HOST} ({self.role}) is busy ({error.strerror}): "
                    f"stop what uses it, or pick another port with {self.env_var}=<port> make local "
                    f"(or {self.flag} <port>)"
                ) from error


def port_from_env(env_var: str, default: int) -> int:
    """The port in `env_var`, or `default`; a value that is not a port is an error naming the variable."""
    raw = os.environ.get(env_var, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise LocalStackError(f"{env_var}={raw!r} is not a port: use a number from 1 to 65535")
    return int(raw)


def port_number(text: str) -> int:
    """argparse type: a TCP port."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: use a number from 1 to 65535")
    return int(text)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.local_stack", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--mlflow-port", type=port_number, help="MLflow's port (default: $MLFLOW_PORT or 5000)"
    )
    parser.add_argument(
        "--api-port", type=port_number, help="the model API's port (default: $API_PORT or 8000)"
    )
    parser.add_argument(
        "--state-dir", type=Path, default=REPO_ROOT / ".local", help="where the stack keeps its state"
    )
    parser.add_argument("--model-name", default=DEFAULT_MODEL_NAME, help="registered model name")
    parser.add_argument(
        "--retrain",
        action="store_true",
        help="train a new challenger even if a champion exists, then promote",
    )
    args = parser.parse_args(argv)
    if args.mlflow_port is None:
        args.mlflow_port = port_from_env("MLFLOW_PORT", 5000)
    if args.api_port is None:
        args.api_port = port_from_env("API_PORT", 8000)
    if args.mlflow_port == args.api_port:
        raise LocalStackError(f"MLflow and the model API cannot share port {args.api_port}: choose two ports")
    return args


def prepare_state_dir(state_dir: Path) -> None:
    """`state_dir`, owner-only (0700) even if it already existed with a looser mode."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    state_dir.chmod(0o700)


def tighten_modes(state_dir: Path) -> None:
    """Owner-only modes for everything under `state_dir` (symbolic links are left alone, not followed)."""
    for path in state_dir.rglob("*"):
        if path.is_symlink():
            continue
        path.chmod(0o700 if path.is_dir() else 0o600)


def read_secret(path: Path) -> str:
    """A secret file's content, only if it is a regular file of ours that nobody else may read.

    Like ssh with a private key: a secret others could have read is not used (and not silently
    tightened), because the person running the stack should know, and rotate it.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as error:
        raise LocalStackError(
            f"cannot read the secret file {path} ({error.strerror}): it must be a file"
        ) from error
    with os.fdopen(fd) as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise LocalStackError(
                f"the secret file {path} has mode {stat.S_IMODE(info.st_mode):04o} (owner uid "
                f"{info.st_uid}): it must be a file of yours with mode 0600. Others may have read it: "
                f"rotate it (stop the stack, delete {path.parent}, start again), or, if you know nobody "
                f"did, chmod 600 {path}"
            )
        return handle.read().strip()


def read_or_create_secret(path: Path) -> tuple[str, bool]:
    """The secret stored at `path`, creating it (mode 0600) on first use; and whether it was just created."""
    if path.exists() or path.is_symlink():
        return read_secret(path), False
    secret = generate_secret()
    write_secret_file(path, secret)
    return secret, True


def ensure_api_reader(tracking_url: str, password: str, model_name: str, version: str) -> dict[str, str]:
    """The MLflow user the model API logs in as, with READ on the model and its experiment and nothing
    else; created (or its password reset to `password`) through MLflow's basic-auth API, as the admin
    whose credentials are in this process's environment. Returns the API's MLflow environment.

    MLflow's basic-auth app lets any user create experiments and models of their own; what this user
    cannot do is change, or read, anything it was not granted (no alias moves, no other models)."""
    auth: AuthServiceClient = get_app_client("basic-auth", tracking_uri=tracking_url)
    try:
        auth.get_user(API_READER_USERNAME)
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        auth.create_user(API_READER_USERNAME, password)
    else:
        auth.update_user_password(API_READER_USERNAME, password)
    run_id = MlflowClient().get_model_version(model_name, version).run_id
    if run_id is None:
        raise LocalStackError(f"{model_name} version {version} has no run: no experiment to grant READ on")
    experiment_id = MlflowClient().get_run(run_id).info.experiment_id
    for resource_type, resource_id in (("registered_model", model_name), ("experiment", experiment_id)):
        _grant_exactly(auth, resource_type, resource_id, "READ")
    return {
        "MLFLOW_TRACKING_URI": tracking_url,
        "MLFLOW_TRACKING_USERNAME": API_READER_USERNAME,
        "MLFLOW_TRACKING_PASSWORD": password,
    }


def _grant_exactly(auth: AuthServiceClient, resource_type: str, resource_id: str, permission: str) -> None:
    """Grant `permission`, replacing whatever this user held on the resource before (a rerun, an edit)."""
    try:
        auth.grant_user_permission(API_READER_USERNAME, resource_type, resource_id, permission)
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
        auth.revoke_user_permission(API_READER_USERNAME, resource_type, resource_id)
        auth.grant_user_permission(API_READER_USERNAME, resource_type, resource_id, permission)


def log_tail(path: Path) -> str:
    """The end of a child's log, to show next to an error it caused."""
    text = path.read_text(errors="replace") if path.exists() else ""
    return f"--- {path} (last lines) ---\n{text[-LOG_TAIL_CHARS:]}"


def say(message: str = "") -> None:
    """Print at once: the person (or test) watching waits for these lines."""
    print(message, flush=True)


def example_curl(api_url: str) -> str:
    """A copy-pasteable curl call with two rows of the example's features in MLflow's scoring format."""
    rows = example_model.make_dataset(n_rows=2, seed=1)[list(example_model.FEATURES)].round(2)
    body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}}
    return (
        f"curl -sS -X POST {api_url}/invocations -H 'Content-Type: application/json' "
        f"-d {shlex.quote(json.dumps(body))}"
    )


def monitoring_commands(api_url: str) -> list[str]:
    """How a person watches the served model's drift: the JSON, the Prometheus lines, the shift demo."""
    return [
        f"curl -sS {api_url}/monitoring",
        f"curl -sS {api_url}/metrics | grep -E '^model_(drift|feature_drift|prediction_drift|input)'",
        f"uv run python -m scripts.shift_traffic --api-url {api_url}   # sends shifted rows: watch PSI rise",
    ]


def ensure_champion(client: MlflowClient, model_name: str, retrain: bool) -> str:
    """The champion's version: trained, registered and promoted here when there is none (or on --retrain)."""
    champion = version_by_alias(client, model_name, CHAMPION_ALIAS)
    if champion is not None and not retrain:
        say(f"reusing {model_name} version {champion} (@{CHAMPION_ALIAS}); --retrain trains a new challenger")
        return champion
    say(f"training the example model and registering it as {model_name}...")
    registered = train_and_register(model_name=model_name)
    say(f"registered {model_name} version {registered.version} (mae={registered.metrics['mae']:.2f})")
    decision = promote(client, model_name)
    say(f"promotion: {decision.reason}")
    return decision.champion_version


def start_model_api(
    model_uri: str, api_port: int, tracking_env: dict[str, str], log: IO[bytes]
) -> subprocess.Popen[bytes]:
    """`python -m service` serving `model_uri`, in its own process group, one worker (a laptop demo)."""
    env = {
        **os.environ,
        **tracking_env,
        "MODEL_URI": model_uri,
        "HOST": HOST,
        "PORT": str(api_port),
        "WORKERS": "1",
        # MLflow 3.17 refuses to deserialize any model (skops included) without this. This model was
        # trained a moment ago by this script, on this machine, so it is trusted.
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "service"],
        env=env,
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM handler: stop the same way Ctrl-C does."""
    raise KeyboardInterrupt


def watch(children: dict[str, tuple[subprocess.Popen[bytes], Path]]) -> None:
    """Block until Ctrl-C (KeyboardInterrupt), or fail when a child exits on its own."""
    while True:
        for role, (process, log_path) in children.items():
            if process.poll() is not None:
                raise LocalStackError(f"{role} exited with code {process.returncode}\n{log_tail(log_path)}")
        time.sleep(0.5)


def run(args: argparse.Namespace) -> None:
    """Start the stack and keep it up until interrupted; stop every child on the way out."""
    ports = [
        PortSetting(args.mlflow_port, "MLflow", "MLFLOW_PORT", "--mlflow-port"),
        PortSetting(args.api_port, "model API", "API_PORT", "--api-port"),
    ]
    for setting in ports:
        setting.ensure_free()

    state_dir: Path = args.state_dir.resolve()
    # From here on this process and the servers it starts create files owner-only: MLflow's SQLite
    # databases, its artifacts, the logs (they would be 0644 with the usual umask).
    os.umask(OWNER_ONLY_UMASK)
    prepare_state_dir(state_dir)
    password_file = state_dir / "admin_password"
    admin_password, password_is_new = read_or_create_secret(password_file)
    flask_secret_key, _ = read_or_create_secret(state_dir / "flask_secret_key")
    reader_password, _ = read_or_create_secret(state_dir / "api_reader_password")
    tighten_modes(state_dir)  # after the secrets were checked: a loose secret is refused, not fixed

    mlflow_url = f"http://{HOST}:{args.mlflow_port}"
    api_url = f"http://{HOST}:{args.api_port}"
    tracking_env = {
        "MLFLOW_TRACKING_URI": mlflow_url,
        "MLFLOW_TRACKING_USERNAME": ADMIN_USERNAME,
        "MLFLOW_TRACKING_PASSWORD": admin_password,
    }
    mlflow_log, api_log = state_dir / "mlflow.log", state_dir / "api.log"
    children: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    stoppers: list[Callable[[], None]] = []
    try:
        say(f"starting MLflow on {mlflow_url} (state in {state_dir})...")
        with mlflow_log.open("ab") as log:
            mlflow_process = start_tracking_server(
                TrackingServerFiles(state_dir), args.mlflow_port, admin_password, flask_secret_key, log=log
            )
        stoppers.append(lambda: stop_process_group(mlflow_process))
        children["MLflow"] = (mlflow_process, mlflow_log)
        wait_or_explain(f"{mlflow_url}/health", mlflow_process, mlflow_log)

        os.environ.update(tracking_env)
        champion = ensure_champion(MlflowClient(), args.model_name, args.retrain)
        model_uri = f"models:/{args.model_name}/{champion}"
        reader_env = ensure_api_reader(mlflow_url, reader_password, args.model_name, champion)

        say(f"starting the model API on {api_url} with {model_uri} (MLflow user {API_READER_USERNAME})...")
        with api_log.open("ab") as log:
            api_process = start_model_api(model_uri, args.api_port, reader_env, log)
        stoppers.insert(0, lambda: stop_process_group(api_process))
        children["model API"] = (api_process, api_log)
        wait_or_explain(f"{api_url}/readyz", api_process, api_log)

        say()
        say(f"MLflow UI:  {mlflow_url}  (user {ADMIN_USERNAME})")
        if password_is_new:
            say(f"MLflow admin password (shown once; kept in {password_file}): {admin_password}")
        else:
            say(f"MLflow admin password: in {password_file}")
        say(f"Model API:  {api_url}  (docs {api_url}/docs), serving {model_uri} (@{CHAMPION_ALIAS})")
        say(f"Logs:       {mlflow_log}, {api_log}")
        say("Try it:")
        say(example_curl(api_url))
        say("Watch its drift and input quality (README: Monitoring):")
        for line in monitoring_commands(api_url):
            say(line)
        say("Ctrl-C stops everything.")
        watch(children)
    except KeyboardInterrupt:
        say("\nstopping...")
    finally:
        # A second Ctrl-C must not cut the clean-up short and leave servers holding the ports.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for stop in stoppers:
            stop()
    say("stopped.")


def wait_or_explain(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Wait for `url` to answer 200; if it never does, fail with the end of the child's log."""
    try:
        wait_until_healthy(url, process)
    except ServerStartError as error:
        raise LocalStackError(f"{error}\n{log_tail(log_path)}") from error


def main(argv: list[str] | None = None) -> None:
    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    try:
        run(parse_args(argv))
    except (LocalStackError, ServerStartError, PromotionError, MlflowException) as error:
        sys.exit(f"make local: {error}")


if __name__ == "__main__":
    main()
