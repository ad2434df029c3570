"""The stored admin password follows the stack's secret, so rotating `trackingAdminPassword` works.

MLflow reads `MLFLOW_AUTH_ADMIN_PASSWORD` only to create the admin while its user table is empty
(mlflow/server/auth/__init__.py `create_admin_user`; it rotates only the old published default). A stack
whose secret was rotated would start with the new secret in its environment and the old password in its
database: the smoke test, CI and every person using the secret get 401, silently.

So before `mlflow server` starts, the entrypoint brings the admin's stored password to the secret's value,
through MLflow's own auth store (the same tables, migrations and password hashing MLflow uses). The stack's
secret is thereby the admin password: a password changed by hand in MLflow is set back on the next start.
Rotate it with `pulumi up --replace <urn of the stack's tracking-admin-password>` (README).
"""

from enum import Enum


class AdminPassword(Enum):
    """What `sync_admin_password` found and did."""

    NO_ADMIN_YET = "no admin user yet: MLflow creates it with the stack's secret"
    UNCHANGED = "the stored admin password is the stack's secret"
    ROTATED = "the stored admin password was set to the stack's (rotated) secret"


def sync_admin_password(database_uri: str, username: str, password: str) -> AdminPassword:
    """Make `username`'s stored password `password`, if the user exists and has another one."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore()
    # Creates or upgrades the auth tables, as `mlflow server` does next (idempotent; its own version table).
    store.init_db(database_uri)
    try:
        if not store.has_user(username, use_primary=True):
            return AdminPassword.NO_ADMIN_YET
        if store.authenticate_user(username, password, use_primary=True):
            return AdminPassword.UNCHANGED
        store.update_user(username, password=password)
        return AdminPassword.ROTATED
    finally:
        store.engine.dispose()
