"""The tracking contract harness, proven with a hand-written environment against every storage backend.

Each cloud's own contract test calls `run_tracking_contract` the same way, with the environment taken
from its mocked Pulumi resources instead of `container_env` below.
"""

import secrets

import pytest

from testing.postgres import PostgresDatabase
from testing.storage_emulators import AzuriteBlob, GcsEmulator, S3Emulator, StorageEmulator
from testing.tracking_contract import TrackingContractError, run_tracking_contract

pytestmark = pytest.mark.slow


def container_env(destination: str) -> dict[str, str]:
    """What infra would give the container, secrets resolved to freshly generated test values."""
    return {
        "MLFLOW_CPU": "1",
        "MLFLOW_DB_HOST": "db.internal",
        "MLFLOW_DB_NAME": "mlflow",
        "MLFLOW_DB_USER": "mlflow",
        "MLFLOW_DB_PASSWORD": secrets.token_urlsafe(24),
        "MLFLOW_ARTIFACTS_DESTINATION": destination,
        "MLFLOW_ADMIN_PASSWORD": secrets.token_urlsafe(24),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_urlsafe(32),
        "MLFLOW_ALLOWED_HOSTS": "mlflow-abc123-uc.a.run.app,mlflow.example.com",
    }


def test_gcs_through_the_cloud_sql_style_unix_socket(
    postgres_database: PostgresDatabase, gcs_emulator: GcsEmulator
) -> None:
    """GCS artifacts; the database reached through a socket directory, as Cloud Run mounts Cloud SQL."""
    env = container_env(f"gs://mlops-artifacts-{secrets.token_hex(3)}/mlflow")
    overrides = {**postgres_database.server_env(via_socket=True), **gcs_emulator.server_env()}
    outcome = run_tracking_contract(env, overrides, storage=gcs_emulator)
    assert outcome.artifact_key.endswith("/artifacts/contract/model-card.txt")


def test_s3_with_aurora_style_null_pool(postgres_database: PostgresDatabase, s3_emulator: S3Emulator) -> None:
    """S3 artifacts with NullPool passed through (AWS sets it so a paused Aurora is not kept awake)."""
    env = {
        **container_env(f"s3://mlops-artifacts-{secrets.token_hex(3)}"),
        "MLFLOW_SQLALCHEMYSTORE_POOLCLASS": "NullPool",
        "MLFLOW_ADMIN_USERNAME": "platform-admin",
        "MLFLOW_ALLOWED_HOSTS": "*.ecs.eu-west-1.on.aws",
    }
    overrides = {**postgres_database.server_env(), **s3_emulator.server_env()}
    run_tracking_contract(env, overrides, storage=s3_emulator)


def test_azure_blob_with_a_two_cpu_container(
    postgres_database: PostgresDatabase, azurite_blob: AzuriteBlob
) -> None:
    """Blob artifacts under infra's real account name (the connection string points at Azurite)."""
    env = {
        **container_env(f"wasbs://mlflow@stmlopsdev{secrets.token_hex(3)}.blob.core.windows.net/artifacts"),
        "MLFLOW_CPU": "2",
        "MLFLOW_ALLOWED_HOSTS": "mlflow.kindsea-1234.westeurope.azurecontainerapps.io",
    }
    overrides = {**postgres_database.server_env(), **azurite_blob.server_env()}
    run_tracking_contract(env, overrides, storage=azurite_blob)


def test_a_broken_environment_fails_with_the_entrypoint_message(
    postgres_database: PostgresDatabase, s3_emulator: S3Emulator
) -> None:
    """The harness reports an entrypoint that refuses to start, with the entrypoint's own message."""
    env = container_env("s3://mlops-artifacts")
    del env["MLFLOW_ALLOWED_HOSTS"]
    storage: StorageEmulator = s3_emulator
    with pytest.raises(TrackingContractError, match=r"(?s)exited with code 2.*MLFLOW_ALLOWED_HOSTS: missing"):
        run_tracking_contract(env, {**postgres_database.server_env(), **storage.server_env()})
