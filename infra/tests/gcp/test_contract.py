"""Contract: the environment the mocked tracking Cloud Run service gets, run through the real entrypoint
against local PostgreSQL (over its unix socket, as Cloud Run's /cloudsql connection is) and the GCS
emulator. Secret Manager references are resolved to freshly generated values; the overrides point the
server at the local database and the emulator (in Cloud Run the GCS client uses the service account)."""

import secrets

import pytest

from infra.tests.gcp.conftest import run_gcp
from testing.postgres import PostgresDatabase
from testing.storage_emulators import GcsEmulator
from testing.tracking_contract import run_tracking_contract

pytestmark = pytest.mark.slow


def tracking_service_environment(environment: str) -> dict[str, str]:
    """Plain values as recorded; each secret reference resolved to one generated value per secret."""
    service = run_gcp(environment).one("gcp:cloudrunv2/service:Service", "-tracking-service")
    test_secrets: dict[str, str] = {}
    env: dict[str, str] = {}
    for variable in service.inputs["template"]["containers"][0]["envs"]:
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        else:
            secret = variable["valueSource"]["secretKeyRef"]["secret"]
            env[variable["name"]] = test_secrets.setdefault(secret, secrets.token_urlsafe(24))
    return env


def test_tracking_service_environment_runs_the_real_server(
    postgres_database: PostgresDatabase, gcs_emulator: GcsEmulator
) -> None:
    env = tracking_service_environment("dev")
    assert env["MLFLOW_DB_HOST"].startswith("/cloudsql/")
    assert env["MLFLOW_ARTIFACTS_DESTINATION"].startswith("gs://")
    assert set(env) >= {"MLFLOW_DB_PASSWORD", "MLFLOW_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"}
    overrides = {**postgres_database.server_env(via_socket=True), **gcs_emulator.server_env()}
    outcome = run_tracking_contract(env, overrides, storage=gcs_emulator)
    print(f"\ngcp tracking contract: server healthy after {outcome.startup_seconds:.1f}s")
    assert outcome.artifact_key.endswith("/artifacts/contract/model-card.txt")
