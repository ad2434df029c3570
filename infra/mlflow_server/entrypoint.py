"""Entrypoint of the tracking-server image: `python -m infra.mlflow_server.entrypoint`.

Reads the environment infra sets (see `settings.EXPECTED` for every variable), writes MLflow's
basic-auth config file (0600, in a private temporary directory: it holds the database password), makes a
stored admin password follow a rotated secret (`admin_password.py`), and replaces itself with
`mlflow server`, so the server is PID 1's program and gets the platform's signals.
On a missing or malformed variable it prints one message naming all of them and exits with status 2.
"""

import os
import sys
import tempfile
from pathlib import Path

from infra.mlflow_server.admin_password import sync_admin_password
from infra.mlflow_server.command import auth_config_text, build_launch, database_url
from infra.mlflow_server.settings import SettingsError, parse_settings

EXIT_BAD_CONFIG = 2


def write_private_file(path: Path, text: str) -> None:
    """Create `path` readable and writable by its owner only, from the first byte on."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def main() -> None:
    """Validate the environment, write the auth config, exec `mlflow server`."""
    try:
        settings = parse_settings(os.environ)
    except SettingsError as error:
        print(error, file=sys.stderr)
        sys.exit(EXIT_BAD_CONFIG)
    auth_config = Path(tempfile.mkdtemp(prefix="mlflow-auth-")) / "basic_auth.ini"
    write_private_file(auth_config, auth_config_text(settings))
    admin = sync_admin_password(
        database_url(settings).render_as_string(hide_password=False),
        settings.admin_username,
        settings.admin_password.get_secret_value(),
    )
    print(f"admin password: {admin.value}")
    launch = build_launch(settings, auth_config, os.environ, sys.executable)
    sys.stdout.flush()
    os.execve(launch.argv[0], launch.argv, launch.env)  # noqa: S606 (no shell: argv is a list)


if __name__ == "__main__":
    main()
