"""A rotated `trackingAdminPassword` reaches MLflow: against a real PostgreSQL, through MLflow's own store."""

import secrets

from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore
from sqlalchemy.engine import URL

from infra.mlflow_server.admin_password import AdminPassword, sync_admin_password
from testing.postgres import PostgresDatabase

ADMIN = "admin"


def uri_of(database: PostgresDatabase) -> str:
    url = URL.create(
        "postgresql+psycopg",
        username=database.user,
        password=database.password,
        host=database.host,
        port=database.port,
        database=database.name,
        query={"sslmode": "disable"},
    )
    return url.render_as_string(hide_password=False)


def store_of(uri: str) -> SqlAlchemyStore:
    store = SqlAlchemyStore()
    store.init_db(uri)
    return store


def test_a_rotated_secret_becomes_the_admin_password_and_the_old_one_stops_working(
    postgres_database: PostgresDatabase,
) -> None:
    uri = uri_of(postgres_database)
    first, rotated = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    # A fresh database: MLflow creates the admin itself, from the secret, on its first start.
    assert sync_admin_password(uri, ADMIN, first) is AdminPassword.NO_ADMIN_YET
    store = store_of(uri)
    store.create_user(ADMIN, first, is_admin=True)  # what `mlflow server` then does

    assert sync_admin_password(uri, ADMIN, first) is AdminPassword.UNCHANGED
    assert sync_admin_password(uri, ADMIN, rotated) is AdminPassword.ROTATED
    assert store.authenticate_user(ADMIN, rotated)
    assert not store.authenticate_user(ADMIN, first)
    assert store.get_user(ADMIN).is_admin, "still the admin"
    assert sync_admin_password(uri, ADMIN, rotated) is AdminPassword.UNCHANGED
    store.engine.dispose()
