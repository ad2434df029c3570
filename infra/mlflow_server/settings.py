"""The tracking server's settings: the environment variables infra sets on the container, validated.

This is the contract between the Pulumi code of every cloud and the image: the names below are what
infra sets, and `parse_settings` reports every missing or malformed one in a single message, so a
misconfigured deployment fails at once with everything that must be fixed instead of one error per
restart. Secret values never appear in these messages.
"""

import re
from collections.abc import Mapping
from typing import Annotated, Literal

import sqlalchemy.pool
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

# One line per variable: what a good value looks like. Shown next to every problem with that variable.
EXPECTED: dict[str, str] = {
    "PORT": "a TCP port 1-65535, e.g. 8080 (default 5000)",
    "MLFLOW_BIND_HOST": "the address to listen on, e.g. 0.0.0.0 (default) or 127.0.0.1",
    "MLFLOW_CPU": "the vCPUs given to the container, a number from 0.125 to 64, e.g. 0.5, 1, 2 "
    "(vCPUs, not ECS CPU units: 1024 units = 1)",
    "MLFLOW_DB_HOST": "a hostname or IP (db.internal, 10.0.0.5) or a unix-socket directory starting "
    "with / (/cloudsql/PROJECT:REGION:INSTANCE)",
    "MLFLOW_DB_PORT": "a TCP port 1-65535 (default 5432)",
    "MLFLOW_DB_NAME": "the PostgreSQL database name, e.g. mlflow",
    "MLFLOW_DB_USER": "the PostgreSQL user name, e.g. mlflow",
    "MLFLOW_DB_PASSWORD": "that user's password (a secret), not empty",
    "MLFLOW_DB_SSLMODE": "one of disable, allow, prefer, require, verify-ca, verify-full (default require)",
    "MLFLOW_ARTIFACTS_DESTINATION": "gs://BUCKET[/PATH], s3://BUCKET[/PATH] or "
    "wasbs://CONTAINER@ACCOUNT.blob.core.windows.net[/PATH]",
    "MLFLOW_ADMIN_USERNAME": "the admin user's name, without ':' or whitespace (default admin)",
    "MLFLOW_ADMIN_PASSWORD": "the admin password (a secret), at least 12 characters",
    "MLFLOW_FLASK_SERVER_SECRET_KEY": "a random secret (CSRF key of the auth app), at least 16 characters",
    "MLFLOW_ALLOWED_HOSTS": "comma-separated hosts the service is reached at, e.g. "
    "mlflow-abc.a.run.app,mlflow.example.com; wildcards like *.example.com allowed, a bare * is not",
    "MLFLOW_SQLALCHEMYSTORE_POOLCLASS": "optional: a SQLAlchemy pool class name, e.g. NullPool or QueuePool",
    "MLFLOW_HTTP2": "optional: true to also serve HTTP/2 over cleartext (h2c, prior knowledge) on the same "
    "port, for a platform that forwards HTTP/2 end to end (Cloud Run with port name h2c); default false",
    "MLFLOW_KEEP_ALIVE_SECONDS": "optional: seconds (1-4000) an idle keep-alive connection stays open; "
    "infra sets it above the idle timeout of a load balancer in front",
}

# Variables whose values must never be echoed back, not even in an error message.
SECRET_VARIABLES = frozenset(
    {"MLFLOW_DB_PASSWORD", "MLFLOW_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"}
)

_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
_ARTIFACTS_DESTINATION = re.compile(
    r"^(gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]"
    r"|s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
    r"|wasbs://[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])?@[a-z0-9]{3,24}"
    r"\.blob\.core\.(?:windows\.net|chinacloudapi\.cn|usgovcloudapi\.net))"
    r"(/[^\s]*)?$"
)
# A host as a browser sends it in the Host header: name or IPv4, optional port, optional * wildcards.
_HOST_PATTERN = re.compile(r"^[A-Za-z0-9*]([A-Za-z0-9*.-]*[A-Za-z0-9*])?(:[0-9*]+)?$")


class SettingsError(ValueError):
    """The environment does not describe a server that can start; the message lists every problem."""


def _check_db_host(value: str) -> str:
    if value.startswith("/") or _HOSTNAME.match(value):
        return value
    raise ValueError("neither a hostname nor an absolute socket directory")


def _check_destination(value: str) -> str:
    if _ARTIFACTS_DESTINATION.match(value):
        return value
    raise ValueError("not a gs://, s3:// or wasbs:// bucket URI")


def _split_hosts(value: str) -> tuple[str, ...]:
    hosts = tuple(host.strip() for host in value.split(",") if host.strip())
    if not hosts:
        raise ValueError("no host given")
    bad = [host for host in hosts if host == "*" or not _HOST_PATTERN.match(host)]
    if bad:
        # A bare * would switch MLflow's DNS-rebinding protection off; a URL is not a Host header.
        raise ValueError(f"not a host or host pattern: {', '.join(repr(host) for host in bad)}")
    return hosts


def _check_pool_class(value: str | None) -> str | None:
    if value is None or isinstance(getattr(sqlalchemy.pool, value, None), type):
        return value
    raise ValueError("not a SQLAlchemy pool class")


Port = Annotated[int, Field(ge=1, le=65535)]
NonEmpty = Annotated[str, Field(min_length=1)]


class ServerSettings(BaseModel):
    """Everything the entrypoint needs, read from environment variables of the same (alias) names."""

    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    port: Port = Field(5000, alias="PORT")
    # Not set by infra: containers listen on every interface; the contract tests listen on loopback.
    bind_host: NonEmpty = Field("0.0.0.0", alias="MLFLOW_BIND_HOST")  # noqa: S104
    cpu: float = Field(alias="MLFLOW_CPU", ge=0.125, le=64)
    db_host: Annotated[str, AfterValidator(_check_db_host)] = Field(alias="MLFLOW_DB_HOST")
    db_port: Port = Field(5432, alias="MLFLOW_DB_PORT")
    db_name: NonEmpty = Field(alias="MLFLOW_DB_NAME")
    db_user: NonEmpty = Field(alias="MLFLOW_DB_USER")
    db_password: SecretStr = Field(alias="MLFLOW_DB_PASSWORD", min_length=1)
    db_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = Field(
        "require", alias="MLFLOW_DB_SSLMODE"
    )
    artifacts_destination: Annotated[str, AfterValidator(_check_destination)] = Field(
        alias="MLFLOW_ARTIFACTS_DESTINATION"
    )
    admin_username: str = Field("admin", alias="MLFLOW_ADMIN_USERNAME", pattern=r"^[^:\s]+$")
    admin_password: SecretStr = Field(alias="MLFLOW_ADMIN_PASSWORD", min_length=12)
    flask_secret_key: SecretStr = Field(alias="MLFLOW_FLASK_SERVER_SECRET_KEY", min_length=16)
    allowed_hosts: tuple[str, ...] = Field(alias="MLFLOW_ALLOWED_HOSTS")
    pool_class: Annotated[str | None, AfterValidator(_check_pool_class)] = Field(
        None, alias="MLFLOW_SQLALCHEMYSTORE_POOLCLASS"
    )
    http2: bool = Field(False, alias="MLFLOW_HTTP2")
    # Set by infra behind a load balancer that reuses idle connections (an AWS ALB): above its idle timeout.
    keep_alive_seconds: int | None = Field(None, alias="MLFLOW_KEEP_ALIVE_SECONDS", ge=1, le=4000)

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _parse_hosts(cls, value: object) -> object:
        return _split_hosts(value) if isinstance(value, str) else value

    @property
    def db_is_socket(self) -> bool:
        """True when the database is reached through a unix-socket directory (Cloud Run's Cloud SQL)."""
        return self.db_host.startswith("/")


def parse_settings(environ: Mapping[str, str]) -> ServerSettings:
    """Validate `environ`; raise `SettingsError` naming every bad variable and what it should look like.

    An empty value counts as unset, so a variable infra declares but leaves blank gets its default or,
    when it has none, is reported missing.
    """
    present = {name: value for name, value in environ.items() if name in EXPECTED and value.strip() != ""}
    try:
        return ServerSettings.model_validate(present)
    except ValidationError as error:
        raise SettingsError(_describe(error, present)) from None


def _describe(error: ValidationError, present: Mapping[str, str]) -> str:
    """One line per bad variable: what is wrong, the value when it is not a secret, what is expected."""
    problems: dict[str, str] = {}
    for item in error.errors():
        name = str(item["loc"][0])
        if item["type"] == "missing":
            reason = "missing"
        elif name in SECRET_VARIABLES:
            # Not even the length of a secret goes into a log.
            reason = "too short" if item["type"] in {"too_short", "string_too_short"} else "malformed"
        else:
            reason = f"{present[name]!r}: {item['msg'].removeprefix('Value error, ')}"
        problems.setdefault(name, reason)
    lines = [f"  - {name}: {reason}; expected {EXPECTED[name]}" for name, reason in sorted(problems.items())]
    return (
        f"The tracking server cannot start: {len(problems)} environment variable(s) missing or malformed:\n"
        + "\n".join(lines)
    )
