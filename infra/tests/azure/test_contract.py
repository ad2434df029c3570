"""Contract: the environment the mocked tracking Container App gets, run through the real entrypoint
against local PostgreSQL and Azurite. Secret references are resolved to freshly generated values; the
overrides point the server at the local database and give the Blob client Azurite's connection string
(in Azure the same client authenticates with the app's managed identity, AZURE_CLIENT_ID)."""

import secrets

import pytest

from infra.tests.azure.conftest import container_app, container_env, standard_run
from testing.postgres import PostgresDatabase
from testing.storage_emulators import AzuriteBlob
from testing.tracking_contract import run_tracking_contract

pytestmark = pytest.mark.slow


def tracking_app_environment(environment: str) -> dict[str, str]:
    """Plain values as recorded, each secret reference resolved to a generated test secret."""
    inputs = container_app(standard_run(environment, model=False), "tracking")
    declared = {secret["name"] for secret in inputs["configuration"]["secrets"]}
    test_secrets = {name: secrets.token_urlsafe(24) for name in declared}
    env: dict[str, str] = {}
    for variable in container_env(inputs):
        env[variable["name"]] = (
            variable["value"] if "value" in variable else test_secrets[variable["secretRef"]]
        )
    return env


def test_tracking_app_environment_runs_the_real_server(
    postgres_database: PostgresDatabase, azurite_blob: AzuriteBlob
) -> None:
    env = tracking_app_environment("dev")
    assert env["MLFLOW_ARTIFACTS_DESTINATION"].startswith("wasbs://mlflow@")
    assert "AZURE_CLIENT_ID" in env  # passed through to the Blob SDK in the cloud
    overrides = {**postgres_database.server_env(), **azurite_blob.server_env()}
    outcome = run_tracking_contract(env, overrides, storage=azurite_blob)
    print(f"\nazure tracking contract: server healthy after {outcome.startup_seconds:.1f}s")
    assert outcome.artifact_key.endswith("/artifacts/contract/model-card.txt")
