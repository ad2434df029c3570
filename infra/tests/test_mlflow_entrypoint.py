"""The tracking entrypoint: settings validation, the command it builds, the auth config it writes."""

import configparser
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.server.auth.config import read_auth_config
from sqlalchemy.engine import make_url

from infra.images import TRACKING_DOCKERFILE, copied_sources
from infra.mlflow_server.command import (
    APP_ROOT,
    DEFAULT_PERMISSION,
    HTTP2_UVICORN_OPTIONS,
    ServerLaunch,
    auth_config_text,
    build_launch,
    database_url,
    install_hooks,
    workers_for_cpu,
)
from infra.mlflow_server.entrypoint import write_private_file
from infra.mlflow_server.settings import SettingsError, parse_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
# A password with every character that needs escaping in a URL or in configparser.
AWKWARD_PASSWORD = "p@ss:w/rd%41#;? &=+" + secrets.token_hex(4)


def valid_env(**changes: str) -> dict[str, str]:
    """A complete environment as infra sets it; `changes` override (an empty string unsets)."""
    env = {
        "PORT": "8080",
        "MLFLOW_CPU": "1",
        "MLFLOW_DB_HOST": "10.20.0.5",
        "MLFLOW_DB_NAME": "mlflow",
        "MLFLOW_DB_USER": "mlflow",
        "MLFLOW_DB_PASSWORD": AWKWARD_PASSWORD,
        "MLFLOW_ARTIFACTS_DESTINATION": "gs://acme-mlflow-artifacts/mlflow",
        "MLFLOW_ADMIN_PASSWORD": secrets.token_urlsafe(24),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_urlsafe(32),
        "MLFLOW_ALLOWED_HOSTS": "mlflow-abc-uc.a.run.app, mlflow.example.com",
    }
    env.update(changes)
    return {name: value for name, value in env.items() if value != ""}


def launch_for(env: dict[str, str], tmp_path: Path) -> ServerLaunch:
    return build_launch(parse_settings(env), tmp_path / "auth.ini", env, "/venv/bin/python")


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


@pytest.mark.parametrize(
    ("cpu", "workers"), [("0.25", 1), ("0.5", 1), ("1", 1), ("2", 2), ("4", 4), ("8", 4)]
)
def test_workers_follow_whole_vcpus_between_one_and_four(cpu: str, workers: int, tmp_path: Path) -> None:
    assert workers_for_cpu(float(cpu)) == workers
    assert option(launch_for(valid_env(MLFLOW_CPU=cpu), tmp_path).argv, "--workers") == str(workers)


def test_command_runs_basic_auth_with_proxied_artifacts_on_the_given_port(tmp_path: Path) -> None:
    argv = launch_for(valid_env(), tmp_path).argv
    assert argv[:4] == ["/venv/bin/python", "-m", "mlflow", "server"]
    assert option(argv, "--app-name") == "basic-auth"
    assert option(argv, "--host") == "0.0.0.0"  # noqa: S104 (the container must listen on all)
    assert option(argv, "--port") == "8080"
    assert "--serve-artifacts" in argv
    assert option(argv, "--artifacts-destination") == "gs://acme-mlflow-artifacts/mlflow"
    assert "--disable-security-middleware" not in argv


def test_port_defaults_to_5000(tmp_path: Path) -> None:
    argv = launch_for(valid_env(PORT=""), tmp_path).argv
    assert option(argv, "--port") == "5000"
    assert "localhost:5000" in option(argv, "--allowed-hosts").split(",")


def test_allowed_hosts_are_infras_plus_loopback_and_cors_follows_them(tmp_path: Path) -> None:
    argv = launch_for(valid_env(), tmp_path).argv
    assert option(argv, "--allowed-hosts").split(",") == [
        "mlflow-abc-uc.a.run.app",
        "mlflow.example.com",
        "localhost:8080",
        "127.0.0.1:8080",
    ]
    assert option(argv, "--cors-allowed-origins").split(",") == [
        "https://mlflow-abc-uc.a.run.app",
        "https://mlflow.example.com",
    ]


def test_no_secret_in_argv_and_raw_secrets_not_passed_on(tmp_path: Path) -> None:
    env = valid_env(
        AZURE_CLIENT_ID="11111111-2222-3333-4444-555555555555", MLFLOW_SQLALCHEMYSTORE_POOLCLASS="NullPool"
    )
    launch = launch_for(env, tmp_path)
    joined = " ".join(launch.argv)
    for name in ("MLFLOW_DB_PASSWORD", "MLFLOW_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        assert env[name] not in joined
    assert "MLFLOW_DB_PASSWORD" not in launch.env
    assert "MLFLOW_ADMIN_PASSWORD" not in launch.env
    # MLflow's and the SDKs' own variables pass through untouched.
    assert launch.env["AZURE_CLIENT_ID"] == env["AZURE_CLIENT_ID"]
    assert launch.env["MLFLOW_SQLALCHEMYSTORE_POOLCLASS"] == "NullPool"


def test_environment_given_to_mlflow(tmp_path: Path) -> None:
    env = valid_env()
    launch = launch_for(env, tmp_path)
    assert launch.env["MLFLOW_AUTH_CONFIG_PATH"] == str(tmp_path / "auth.ini")
    assert launch.env["MLFLOW_AUTH_ADMIN_PASSWORD"] == env["MLFLOW_ADMIN_PASSWORD"]
    assert launch.env["MLFLOW_FLASK_SERVER_SECRET_KEY"] == env["MLFLOW_FLASK_SERVER_SECRET_KEY"]
    # A client switch (mlflow/store/artifact/http_artifact_repo.py): the server never reads it.
    assert "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD" not in launch.env
    assert launch.env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    backend = make_url(launch.env["MLFLOW_BACKEND_STORE_URI"])
    assert backend.password == AWKWARD_PASSWORD


def test_database_url_over_tcp_requires_tls_by_default() -> None:
    url = database_url(parse_settings(valid_env(MLFLOW_DB_PORT="6432")))
    assert (url.drivername, url.host, url.port, url.database) == (
        "postgresql+psycopg",
        "10.20.0.5",
        6432,
        "mlflow",
    )
    assert url.query == {"sslmode": "require"}
    # The rendered URL parses back to the same password: SQLAlchemy escaped it.
    assert make_url(url.render_as_string(hide_password=False)).password == AWKWARD_PASSWORD
    assert AWKWARD_PASSWORD not in str(url)


def test_database_url_through_a_cloud_sql_socket_directory_skips_sslmode() -> None:
    url = database_url(parse_settings(valid_env(MLFLOW_DB_HOST="/cloudsql/acme:europe-west1:mlflow-1a2b")))
    assert url.host is None
    assert url.query == {"host": "/cloudsql/acme:europe-west1:mlflow-1a2b", "port": "5432"}


def test_auth_config_is_read_by_mlflow_with_the_exact_database_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = parse_settings(valid_env(MLFLOW_ADMIN_USERNAME="platform-admin"))
    path = tmp_path / "auth.ini"
    write_private_file(path, auth_config_text(settings))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(path))
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_USERNAME", raising=False)
    config = read_auth_config()
    assert config.default_permission == DEFAULT_PERMISSION == "NO_PERMISSIONS"
    assert config.admin_username == "platform-admin"
    assert make_url(config.database_uri).password == AWKWARD_PASSWORD
    assert configparser.ConfigParser().read(path)  # plain configparser agrees too


def test_private_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "auth.ini"
    write_private_file(path, "first")
    with pytest.raises(FileExistsError):
        write_private_file(path, "second")


@pytest.mark.parametrize(
    "destination",
    [
        "gs://acme-artifacts",
        "s3://acme-artifacts/mlflow",
        "wasbs://mlflow@stacmedev01.blob.core.windows.net/artifacts",
        "wasbs://mlflow@stacme.blob.core.chinacloudapi.cn",
    ],
)
def test_accepted_artifact_destinations(destination: str) -> None:
    assert (
        parse_settings(valid_env(MLFLOW_ARTIFACTS_DESTINATION=destination)).artifacts_destination
        == destination
    )


def test_every_problem_is_reported_at_once_without_secrets() -> None:
    env = valid_env(
        PORT="http",
        MLFLOW_CPU="1024",
        MLFLOW_DB_HOST="db host",
        MLFLOW_DB_NAME="",
        MLFLOW_DB_USER="",
        MLFLOW_DB_PASSWORD="",
        MLFLOW_DB_PORT="70000",
        MLFLOW_DB_SSLMODE="sometimes",
        MLFLOW_ARTIFACTS_DESTINATION="https://storage.example.com/bucket",
        MLFLOW_ADMIN_USERNAME="ad:min",
        MLFLOW_ADMIN_PASSWORD="short-pw",
        MLFLOW_FLASK_SERVER_SECRET_KEY="",
        MLFLOW_ALLOWED_HOSTS="*,https://mlflow.example.com",
        MLFLOW_SQLALCHEMYSTORE_POOLCLASS="TinyPool",
    )
    with pytest.raises(SettingsError) as raised:
        parse_settings(env)
    message = str(raised.value)
    lines = {line.split(":", 1)[0].strip(" -"): line for line in message.splitlines()[1:]}
    assert set(lines) == {
        "PORT",
        "MLFLOW_CPU",
        "MLFLOW_DB_HOST",
        "MLFLOW_DB_NAME",
        "MLFLOW_DB_USER",
        "MLFLOW_DB_PASSWORD",
        "MLFLOW_DB_PORT",
        "MLFLOW_DB_SSLMODE",
        "MLFLOW_ARTIFACTS_DESTINATION",
        "MLFLOW_ADMIN_USERNAME",
        "MLFLOW_ADMIN_PASSWORD",
        "MLFLOW_FLASK_SERVER_SECRET_KEY",
        "MLFLOW_ALLOWED_HOSTS",
        "MLFLOW_SQLALCHEMYSTORE_POOLCLASS",
    }
    assert message.startswith("The tracking server cannot start: 14 environment variable(s)")
    assert "missing" in lines["MLFLOW_DB_NAME"]
    assert "'1024'" in lines["MLFLOW_CPU"]
    assert "ECS CPU units" in lines["MLFLOW_CPU"]
    assert "'*'" in lines["MLFLOW_ALLOWED_HOSTS"]
    assert "'https://mlflow.example.com'" in lines["MLFLOW_ALLOWED_HOSTS"]
    assert "too short" in lines["MLFLOW_ADMIN_PASSWORD"]
    assert "short-pw" not in message
    assert "/cloudsql/" in lines["MLFLOW_DB_HOST"]  # what a good value looks like


def test_entrypoint_exits_2_with_one_message_before_starting_anything(tmp_path: Path) -> None:
    env = valid_env(MLFLOW_ARTIFACTS_DESTINATION="", MLFLOW_ALLOWED_HOSTS="")
    env["PATH"] = os.environ["PATH"]
    result = subprocess.run(
        [sys.executable, "-m", "infra.mlflow_server.entrypoint"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "2 environment variable(s) missing or malformed" in result.stderr
    assert "MLFLOW_ARTIFACTS_DESTINATION: missing" in result.stderr
    assert "MLFLOW_ALLOWED_HOSTS: missing" in result.stderr
    assert env["MLFLOW_DB_PASSWORD"] not in result.stderr + result.stdout


@pytest.mark.parametrize(("value", "served"), [("true", True), ("false", False), ("", False)])
def test_http2_selects_the_h2c_protocol_only_when_asked(value: str, served: bool, tmp_path: Path) -> None:
    launch = launch_for(
        valid_env(MLFLOW_HTTP2=value, MLFLOW_ARTIFACTS_DESTINATION="s3://acme-mlflow/m"), tmp_path
    )
    assert ("--uvicorn-opts" in launch.argv) is served
    if served:
        assert option(launch.argv, "--uvicorn-opts") == HTTP2_UVICORN_OPTIONS
        # uvicorn resolves the import string itself (uvicorn/config.py): it must name the protocol class.
        from uvicorn.importer import import_from_string

        from infra.mlflow_server.h2c import AutoH2cProtocol

        assert import_from_string(HTTP2_UVICORN_OPTIONS.removeprefix("--http ")) is AutoH2cProtocol
        assert str(APP_ROOT) in launch.env["PYTHONPATH"].split(os.pathsep)


HOOKS_INSTALLED = (
    "from google.cloud.storage import Blob; "
    "from mlflow.server import security_utils; "
    "print(getattr(Blob.generate_signed_url, '_signs_through_iam', False), "
    "security_utils.LOCALHOST_ORIGIN_PATTERNS == [], "
    "security_utils.is_localhost_origin('http://127.0.0.1:9999'))"
)


@pytest.mark.parametrize(
    ("destination", "signs"),
    [("gs://acme-mlflow-artifacts/mlflow", "True"), ("s3://acme-mlflow-artifacts/mlflow", "False")],
)
def test_server_processes_get_strict_cors_and_sign_gcs_urls_through_iam(
    destination: str, signs: str, tmp_path: Path
) -> None:
    """A new interpreter with the server's environment (as uvicorn and its workers are) has the hooks in:
    localhost origins are not trusted on any cloud, and GCS URLs are signed through IAM for gs:// only."""
    launch = launch_for(
        valid_env(MLFLOW_ARTIFACTS_DESTINATION=destination, PYTHONPATH="/opt/extra"), tmp_path
    )
    assert launch.env["PYTHONPATH"].split(os.pathsep)[-1] == "/opt/extra"  # kept, after ours
    result = subprocess.run(
        [sys.executable, "-c", HOOKS_INSTALLED],
        env={**launch.env, "PATH": os.environ["PATH"]},
        cwd=tmp_path,  # not the repository: the path must come from the environment, as in /app
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.split() == [signs, "True", "False"]


def test_an_unknown_server_hook_stops_the_server_from_starting() -> None:
    with pytest.raises(ValueError, match="unknown hooks"):
        install_hooks("strict-cors,gcs-signin")


def test_the_image_copies_every_module_the_server_runs() -> None:
    server = REPO_ROOT / "infra" / "mlflow_server"
    modules = {path for path in server.rglob("*.py") if "__pycache__" not in path.parts}
    copied = set(copied_sources(REPO_ROOT / TRACKING_DOCKERFILE))
    assert modules <= copied, f"{TRACKING_DOCKERFILE} misses {sorted(str(m) for m in modules - copied)}"


def test_a_keep_alive_from_infra_joins_the_http2_option_in_one_uvicorn_argument(tmp_path: Path) -> None:
    launch = launch_for(
        valid_env(
            MLFLOW_HTTP2="true",
            MLFLOW_KEEP_ALIVE_SECONDS="65",
            MLFLOW_ARTIFACTS_DESTINATION="s3://acme-mlflow/m",
        ),
        tmp_path,
    )
    assert option(launch.argv, "--uvicorn-opts") == f"{HTTP2_UVICORN_OPTIONS} --timeout-keep-alive 65"
    assert "--uvicorn-opts" not in launch_for(valid_env(), tmp_path).argv
