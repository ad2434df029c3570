"""The environment the mocked AWS tracking service gets, run through the real entrypoint against a local
PostgreSQL and moto's S3: log a run with an artifact, read it back, 401 without credentials."""

import secrets

import pytest

from infra.tests.aws.conftest import express_service, run_aws
from testing.postgres import PostgresDatabase
from testing.pulumi_program import ProgramRun
from testing.storage_emulators import S3Emulator
from testing.tracking_contract import run_tracking_contract

pytestmark = pytest.mark.slow


def container_environment(run: ProgramRun) -> dict[str, str]:
    """Plain variables as sent, and each secret reference resolved to a freshly generated value, after
    checking the reference names a secret of this stack that the program stores a value in."""
    service = express_service(run, "tracking").inputs["primaryContainer"]
    env = {item["name"]: item["value"] for item in service["environments"]}
    stored = {
        f"{version.inputs['secretId'].removesuffix('-id')}"
        for version in run.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    }
    for reference in service["secrets"]:
        (secret,) = [
            s
            for s in run.of_type("aws:secretsmanager/secret:Secret")
            if reference["valueFrom"].endswith(f":secret:{s.inputs['namePrefix']}AbCdEf")
        ]
        assert secret.name in stored, f"{reference['name']} refers to a secret with no value"
        env[reference["name"]] = secrets.token_urlsafe(32)
    return env


def test_mocked_tracking_service_environment_runs_mlflow(
    postgres_database: PostgresDatabase, s3_emulator: S3Emulator
) -> None:
    run = run_aws("dev")
    env = container_environment(run)
    assert env["MLFLOW_SQLALCHEMYSTORE_POOLCLASS"] == "NullPool"  # Aurora Serverless: nothing pooled
    # Only where the container is: the local database (no TLS on the test cluster) and moto instead of S3.
    overrides = {**postgres_database.server_env(), **s3_emulator.server_env()}
    outcome = run_tracking_contract(env, overrides, storage=s3_emulator)
    assert outcome.artifact_key.endswith("/artifacts/contract/model-card.txt")
