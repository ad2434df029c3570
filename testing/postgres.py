"""A private PostgreSQL cluster for the tests: `initdb` + `pg_ctl` in a temporary directory.

The cluster listens on 127.0.0.1 on a free port and on a unix socket in its own directory (to stand in
for Cloud Run's `/cloudsql/...` socket mount); the system cluster, if any, is never touched. PostgreSQL
refuses to run as root, so when the tests run as root the cluster runs as the `postgres` system user
(created by the Debian package that brings the binaries) or, failing that, as `nobody`.

Fixtures:
- `postgres_server` (session): the running cluster and its superuser.
- `postgres_database` (per test): a fresh database owned by a fresh login role with a generated
  password, dropped afterwards.
"""

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from mlops_stack.ports import free_port

SUPERUSER = "mlops_test_admin"
UNPRIVILEGED_USERS = ("postgres", "nobody")
INSTALL_HINT = (
    "install the PostgreSQL server binaries: .ci/install_test_deps.sh (or apt-get install postgresql)"
)


@dataclass(frozen=True)
class PostgresServer:
    """A running private cluster: where it listens and how to log in as its superuser."""

    host: str
    port: int
    socket_dir: Path
    superuser: str
    superuser_password: str

    def connect(self, dbname: str = "postgres") -> psycopg.Connection:
        """An autocommit connection as the superuser (for creating and dropping databases)."""
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.superuser,
            password=self.superuser_password,
            dbname=dbname,
            autocommit=True,
        )


@dataclass(frozen=True)
class PostgresDatabase:
    """One database and its owner role, as the tracking server would be given them."""

    host: str
    port: int
    socket_dir: Path
    name: str
    user: str
    password: str

    def server_env(self, via_socket: bool = False) -> dict[str, str]:
        """The tracking entrypoint's `MLFLOW_DB_*` variables pointing at this database.

        TCP without TLS (the test cluster has no certificate), or the unix socket when `via_socket`.
        """
        return {
            "MLFLOW_DB_HOST": str(self.socket_dir) if via_socket else self.host,
            "MLFLOW_DB_PORT": str(self.port),
            "MLFLOW_DB_NAME": self.name,
            "MLFLOW_DB_USER": self.user,
            "MLFLOW_DB_PASSWORD": self.password,
            "MLFLOW_DB_SSLMODE": "disable",
        }


def find_postgres_bin() -> Path:
    """The directory holding `initdb` and `pg_ctl`: on PATH, else the newest /usr/lib/postgresql/*/bin."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        pytest.fail(
            f"PostgreSQL's initdb was not found on PATH or in /usr/lib/postgresql/*/bin: {INSTALL_HINT}"
        )
    return Path(candidates[-1]).parent


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged account to run PostgreSQL as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in UNPRIVILEGED_USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    pytest.fail(f"running as root and none of the users {UNPRIVILEGED_USERS} exists to run PostgreSQL as")


class _Cluster:
    """Runs `initdb` and `pg_ctl` for one temporary cluster, as the account from `_run_as`."""

    def __init__(self, base: Path) -> None:
        self.bin = find_postgres_bin()
        self.base = base
        self.data = base / "data"
        self.sockets = base / "sockets"
        self.log = base / "postgres.log"
        self.account = _run_as()

    def _run(self, *args: str) -> None:
        kwargs: dict[str, object] = {}
        if self.account is not None:
            kwargs = {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []}
        result = subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            check=False,
            cwd=self.base,
            **kwargs,  # type: ignore[call-overload]
        )
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(
                f"{args[0]} failed ({result.returncode}):\n{result.stdout}{result.stderr}{log}"
            )

    def start(self, port: int, password: str) -> None:
        self.sockets.mkdir()
        password_file = self.base / "superuser.pw"
        password_file.write_text(password)
        password_file.chmod(0o600)
        if self.account is not None:
            for path in (self.base, self.sockets, password_file):
                os.chown(path, self.account.pw_uid, self.account.pw_gid)
        self._run(
            "initdb", "-D", str(self.data), "-U", SUPERUSER, f"--pwfile={password_file}",
            "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        password_file.unlink()
        # Durability is worthless for a throwaway cluster; skipping fsync makes migrations fast.
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={self.sockets} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start"
        )

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster for the whole session, removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="mlops-pg-"))
    cluster = _Cluster(base)
    port = free_port()
    password = secrets.token_urlsafe(24)
    try:
        cluster.start(port, password)
        yield PostgresServer("127.0.0.1", port, cluster.sockets, SUPERUSER, password)
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[PostgresDatabase]:
    """A fresh database owned by a fresh, non-superuser login role; both dropped after the test."""
    suffix = secrets.token_hex(4)
    name, user, password = f"mlflow_{suffix}", f"mlflow_{suffix}", secrets.token_urlsafe(24)
    with postgres_server.connect() as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(user), sql.Literal(password))
        )
        admin.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(user))
        )
    yield PostgresDatabase(
        postgres_server.host, postgres_server.port, postgres_server.socket_dir, name, user, password
    )
    with postgres_server.connect() as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(user)))
