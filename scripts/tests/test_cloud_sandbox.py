"""Opt-in: really deploy a sandbox stack on a cloud, take a model through it, smoke-test it, destroy it.

Runs only when a person or workflow asks for it and can pay for it, so it is skipped (with the reason)
unless all of these are present:

- `MLOPS_STACK_CLOUD_TEST=gcp|aws|azure`, the cloud to deploy on;
- `MLOPS_STACK_CLOUD_CONFIG`, the stack's other config as comma-separated `key=value` pairs, e.g.
  `gcp:project=acme-sandbox,gcp:region=europe-west1,githubRepository=acme/mlops-stack` (on Azure also
  `azureResourceGroup=<the dev stack's sandboxCiIdentity.resourceGroup>`);
- `PULUMI_BACKEND_URL` and `PULUMI_SECRETS_PROVIDER` (what scripts/bootstrap.py printed);
- the `pulumi` CLI on PATH and the cloud's credentials in the environment (the workflows log in by OIDC).

The flow is what a team does: `up` a new sandbox (no model yet, so no API), train and register the example
model on its MLflow with the generated admin password, promote it, pin the champion, `up` again, run the
smoke test (API answers predictions; MLflow 401 without credentials, 200 with), round-trip a 40 MiB artifact
through MLflow, and always destroy the sandbox through the same guarded path the sweeper uses, checking it
is gone. These are the README's first-deploy checklist items.
"""

import hashlib
import os
import secrets
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from infra.tests.paths import REPOSITORY_ROOT
from mlops_stack.pulumi_cli import AutomationPulumi
from scripts import promote, sandbox, smoke, train

CLOUD = os.environ.get("MLOPS_STACK_CLOUD_TEST", "")
REQUIRED_ENVIRONMENT = ("MLOPS_STACK_CLOUD_CONFIG", "PULUMI_BACKEND_URL", "PULUMI_SECRETS_PROVIDER")


def _skip_reason() -> str | None:
    if CLOUD not in sandbox.CLOUDS:
        return "set MLOPS_STACK_CLOUD_TEST=gcp|aws|azure (and cloud credentials) to deploy a real sandbox"
    missing = [name for name in REQUIRED_ENVIRONMENT if not os.environ.get(name)]
    if missing:
        return f"a real sandbox deploy needs {', '.join(missing)} in the environment"
    if shutil.which("pulumi") is None:
        return "a real sandbox deploy needs the Pulumi CLI on PATH"
    return None


pytestmark = [
    pytest.mark.cloud,
    pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or ""),
]


@pytest.fixture
def deployed_sandbox() -> Iterator[tuple[AutomationPulumi, str]]:
    cli = AutomationPulumi(REPOSITORY_ROOT)  # streams Pulumi's progress into the test's output
    sandbox_id = f"test-{secrets.token_hex(3)}"
    config = sandbox.parse_config_pairs(os.environ["MLOPS_STACK_CLOUD_CONFIG"].split(","))
    stack = sandbox.sandbox_stack_name(CLOUD, sandbox_id)
    try:
        sandbox.up_sandbox(
            cli,
            CLOUD,
            sandbox_id,
            ttl=timedelta(hours=3),  # the nightly sweep removes it even if this process dies
            now=datetime.now(UTC),
            secrets_provider=os.environ["PULUMI_SECRETS_PROVIDER"],
            extra_config=config,
        )
        yield cli, stack
    finally:
        # Checklist: destroy completes and leaves no stack behind.
        assert sandbox.destroy_sandbox(cli, stack, config)
        assert stack not in cli.stack_names()


def test_a_sandbox_takes_a_model_from_training_to_predictions(
    deployed_sandbox: tuple[AutomationPulumi, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cli, stack = deployed_sandbox
    outputs = cli.outputs(stack, show_secrets=True)
    assert outputs["apiUrl"] == ""  # no model pinned yet: the first up needs none

    monkeypatch.setenv("MLFLOW_TRACKING_URI", outputs["trackingUri"])
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", outputs["trackingAdminUsername"])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", outputs["trackingAdminPassword"])
    train.train_and_register(n_estimators=10, n_rows=500)
    client = MlflowClient()
    assert promote.promote(client).promoted
    pin = promote.champion_pin(client, train.DEFAULT_MODEL_NAME, outputs["artifactRoot"])

    cli.set_config(stack, "mlops-stack:modelVersion", str(pin.version))
    cli.set_config(stack, "mlops-stack:modelSource", pin.source)
    cli.up(stack)

    # Checklist: the API predicts (with its key); MLflow answers 401 without credentials and 200 with.
    passed = smoke.run(smoke.target_from_stack(cli, stack), wait_seconds=600)
    assert len(passed) == 2

    # Checklist: an artifact larger than Cloud Run's 32 MiB HTTP/1 request cap round-trips through the
    # deployed MLflow (proxied uploads and downloads) intact.
    large = tmp_path / "large.bin"
    large.write_bytes(secrets.token_bytes(40 * 1024 * 1024))
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(large))
    fetched = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="large.bin"))
    assert hashlib.sha256(fetched.read_bytes()).digest() == hashlib.sha256(large.read_bytes()).digest()
