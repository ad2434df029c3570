"""Turn validated settings into the `mlflow server` command, its environment and its auth config file.

Pure functions only (no I/O), so tests can check exactly what the container will run.

Decisions written down here because the issue leaves them open:

- Workers: one uvicorn worker per whole vCPU, at least 1 and at most 4 (`workers_for_cpu`). MLflow's
  Flask app runs in a thread pool inside each worker, so one worker already serves many concurrent,
  I/O-bound requests (database, artifact proxy); more workers only add CPU parallelism, and each costs
  about 250 MiB of memory. Size memory as roughly 512 MiB + 256 MiB per worker.
- Allowed hosts: the hosts infra names, plus `localhost:PORT` and `127.0.0.1:PORT` for checks run inside
  the container. Platform health checkers (Cloud Run probes, ECS/ALB target checks, Container Apps
  probes) send the task's IP or an internal name as Host; they must probe `/health`, which MLflow
  exempts from both the host check and authentication, so no private-IP wildcard is allowed here.
- CORS: the UI is served by the same hosts, so `https://<host>` for each allowed host is an allowed
  origin (the browser sends Origin on the UI's own POSTs, which MLflow would otherwise refuse), and the only
  ones: MLflow's built-in trust of localhost origins is taken out (`strict_cors.py`).
- Auth: `default_permission = NO_PERMISSIONS`: a user the admin creates sees nothing until granted.
  The users live in the same PostgreSQL database as the runs: MLflow's auth tables and migration table
  (`alembic_version_auth`) do not collide with the tracking schema (the contract tests prove it).
- Secrets stay out of argv (visible in /proc to anyone in the container): the database URL goes in
  `MLFLOW_BACKEND_STORE_URI`, which `mlflow server` reads, and in the 0600 auth config file.
- HTTP/2 (`MLFLOW_HTTP2=true`, set by infra where the platform forwards HTTP/2 end to end): uvicorn, which
  `mlflow server` runs, serves cleartext HTTP/2 with prior knowledge next to HTTP/1.1 on the same port with
  its zttp protocol (uvicorn/protocols/http/auto_zttp_impl.py sniffs the connection preface), so MLflow keeps
  its default server and FastAPI app. `h2c.py` completes bodyless HTTP/2 requests, which uvicorn 0.54 leaves
  waiting. Cloud Run caps HTTP/1 request bodies at 32 MiB and has no limit for HTTP/2
  (https://cloud.google.com/run/quotas), so proxied artifacts above 32 MiB need it.
- Multipart uploads are the client's decision (`MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD` is read by the client
  only, mlflow/store/artifact/http_artifact_repo.py); a client that leaves it unset follows the server's
  `/server-info`, which advertises them for S3, GCS and Azure. For `gs://` destinations the server processes
  sign part URLs through IAM (`startup/sitecustomize.py`, `gcs_signing.py`): Cloud Run's credentials hold
  no key.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

from infra.mlflow_server.settings import ServerSettings

MAX_WORKERS = 4
# uvicorn options for HTTP/1.1 and prior-knowledge h2c on one port: its zttp protocol, as fixed in h2c.py
# (uvicorn takes the protocol class as an import string; not imported here: the entrypoint stays light).
H2C_PROTOCOL = "infra.mlflow_server.h2c:AutoH2cProtocol"
HTTP2_UVICORN_OPTIONS = f"--http {H2C_PROTOCOL}"
# Put on PYTHONPATH of the server processes: its sitecustomize installs the hooks HOOKS_VARIABLE names.
STARTUP_HOOKS = Path(__file__).resolve().parent / "startup"
HOOKS_VARIABLE = "MLOPS_STACK_SERVER_HOOKS"
STRICT_CORS = "strict-cors"
GCS_SIGNING = "gcs-signing"
# Where `infra` is importable from (the repository, /app in the image): the hooks and H2C_PROTOCOL need it.
APP_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PERMISSION = "NO_PERMISSIONS"
# Variables the entrypoint consumes; their secret values reach MLflow only through the derived ones.
CONSUMED_SECRETS = ("MLFLOW_DB_PASSWORD", "MLFLOW_ADMIN_PASSWORD")


@dataclass(frozen=True)
class ServerLaunch:
    """What the entrypoint execs: the argument vector and the complete environment."""

    argv: list[str]
    env: dict[str, str]


def workers_for_cpu(cpu: float) -> int:
    """One worker per whole vCPU, between 1 and `MAX_WORKERS` (see the module docstring)."""
    return max(1, min(MAX_WORKERS, int(cpu)))


def database_url(settings: ServerSettings) -> URL:
    """The SQLAlchemy URL of the PostgreSQL database, with the password escaped by SQLAlchemy.

    A host starting with `/` is a unix-socket directory (Cloud Run mounts Cloud SQL at
    `/cloudsql/PROJECT:REGION:INSTANCE`); libpq finds the socket `.s.PGSQL.<port>` in it, and TLS does
    not apply to a local socket, so sslmode is left out there.
    """
    password = settings.db_password.get_secret_value()
    if settings.db_is_socket:
        return URL.create(
            "postgresql+psycopg",
            username=settings.db_user,
            password=password,
            database=settings.db_name,
            query={"host": settings.db_host, "port": str(settings.db_port)},
        )
    return URL.create(
        "postgresql+psycopg",
        username=settings.db_user,
        password=password,
        host=settings.db_host,
        port=settings.db_port,
        database=settings.db_name,
        query={"sslmode": settings.db_sslmode},
    )


def allowed_hosts(settings: ServerSettings) -> list[str]:
    """Infra's hosts plus the loopback names for in-container checks, without duplicates."""
    local = [f"localhost:{settings.port}", f"127.0.0.1:{settings.port}"]
    return list(dict.fromkeys([*settings.allowed_hosts, *local]))


def auth_config_text(settings: ServerSettings) -> str:
    """MLflow's basic-auth config file for the image (it holds the database password: write it 0600)."""
    return basic_auth_config(
        database_url(settings).render_as_string(hide_password=False), settings.admin_username
    )


def basic_auth_config(database_uri: str, admin_username: str) -> str:
    """MLflow's basic-auth config, the same for the image and the local stack (mlops_stack/local_mlflow.py).

    MLflow reads it with `configparser`, whose interpolation treats `%` specially, and SQLAlchemy's
    escaping produces `%XX` sequences, hence the doubling. The admin password is not in it: MLflow takes
    it from the environment.
    """
    return (
        "[mlflow]\n"
        f"default_permission = {DEFAULT_PERMISSION}\n"
        f"database_uri = {database_uri.replace('%', '%%')}\n"
        f"admin_username = {admin_username}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = false\n"
    )


def build_launch(
    settings: ServerSettings, auth_config_path: Path, environ: Mapping[str, str], python: str
) -> ServerLaunch:
    """The `mlflow server` command and its environment: `environ` passed through, plus what we derive.

    Everything infra sets that MLflow or the cloud SDKs read themselves (`MLFLOW_SQLALCHEMYSTORE_POOLCLASS`,
    `AZURE_CLIENT_ID`, `GOOGLE_*`, `AWS_*`, ...) reaches the server unchanged.
    """
    hosts = allowed_hosts(settings)
    argv = [
        python,
        "-m",
        "mlflow",
        "server",
        "--app-name",
        "basic-auth",
        "--host",
        settings.bind_host,
        "--port",
        str(settings.port),
        "--workers",
        str(workers_for_cpu(settings.cpu)),
        "--serve-artifacts",
        "--artifacts-destination",
        settings.artifacts_destination,
        "--allowed-hosts",
        ",".join(hosts),
        "--cors-allowed-origins",
        ",".join(f"https://{host}" for host in settings.allowed_hosts),
    ]
    uvicorn_options = [HTTP2_UVICORN_OPTIONS] if settings.http2 else []
    if settings.keep_alive_seconds is not None:
        uvicorn_options.append(f"--timeout-keep-alive {settings.keep_alive_seconds}")
    if uvicorn_options:
        # mlflow shlex-splits this and puts it before its own uvicorn arguments (mlflow/server/__init__.py).
        argv += ["--uvicorn-opts", " ".join(uvicorn_options)]
    env = {name: value for name, value in environ.items() if name not in CONSUMED_SECRETS}
    hooks = [STRICT_CORS]
    if settings.artifacts_destination.startswith("gs://"):
        # Every server process (the CLI, uvicorn and its workers) then signs GCS URLs through IAM.
        hooks.append(GCS_SIGNING)
    inherited = [part for part in env.get("PYTHONPATH", "").split(os.pathsep) if part]
    env["PYTHONPATH"] = os.pathsep.join([str(STARTUP_HOOKS), str(APP_ROOT), *inherited])
    env[HOOKS_VARIABLE] = ",".join(hooks)
    env.update(
        {
            "MLFLOW_BACKEND_STORE_URI": database_url(settings).render_as_string(hide_password=False),
            "MLFLOW_AUTH_CONFIG_PATH": str(auth_config_path),
            # MLflow reads it only while the user store is empty; the entrypoint makes a stored admin
            # password follow a rotated secret first (admin_password.py).
            "MLFLOW_AUTH_ADMIN_PASSWORD": settings.admin_password.get_secret_value(),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": settings.flask_secret_key.get_secret_value(),
            # The job runner costs ~2 GiB and nothing in this stack uses it.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
    )
    return ServerLaunch(argv=argv, env=env)


def install_hooks(names: str) -> None:
    """Install the server hooks named in `names` (comma-separated), in this process; refuse unknown ones."""
    requested = [name for name in names.split(",") if name]
    unknown = set(requested) - {STRICT_CORS, GCS_SIGNING}
    if unknown:
        raise ValueError(f"{HOOKS_VARIABLE} names unknown hooks {sorted(unknown)}")
    # Imported only when asked for: each pulls in MLflow or google-cloud-storage.
    if STRICT_CORS in requested:
        from infra.mlflow_server import strict_cors

        strict_cors.install()
    if GCS_SIGNING in requested:
        from infra.mlflow_server import gcs_signing

        gcs_signing.install()
