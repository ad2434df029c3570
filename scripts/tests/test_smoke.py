"""The smoke test against real processes: the model API (`python -m service`) serving the example model,
and the real MLflow tracking server with auth on."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mlops_stack.ports import free_port, wait_for_port
from scripts import smoke
from testing.fake_pulumi import FakePulumi
from testing.mlflow_server import MlflowServer
from testing.model_fixtures import LoggedModel

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def api_key() -> str:
    return secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def model_api(
    example_model: LoggedModel, api_key: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`python -m service` on a free port, serving the downloaded example model, API key on."""
    port = free_port()
    env = {**os.environ, "MODEL_URI": example_model.local_path, "API_KEY": api_key}
    env |= {"HOST": "127.0.0.1", "PORT": str(port), "WORKERS": "1"}
    log = (tmp_path_factory.mktemp("api") / "api.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "service"], cwd=REPO, env=env, stdout=log, stderr=log)
    try:
        wait_for_port(port, timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def stack_with(model_api: str, mlflow_server: MlflowServer, api_key: str, password: str) -> FakePulumi:
    pulumi = FakePulumi(environ={"PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER": "true"})
    outputs = {"apiUrl": model_api + "/", "trackingUri": mlflow_server.url, "apiKey": api_key}
    pulumi.backend.add("gcp-dev", {**outputs, "trackingAdminPassword": password})
    return pulumi


def test_smoke_passes_against_a_healthy_stack(
    model_api: str, mlflow_server: MlflowServer, api_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pulumi = stack_with(model_api, mlflow_server, api_key, mlflow_server.password)
    assert smoke.main(["gcp-dev", "--wait", "30"], pulumi=pulumi) == 0
    out = capsys.readouterr().out
    assert "ok: API ready and answering a prediction" in out
    assert "ok: MLflow: 401 without credentials, 200 with" in out
    assert api_key not in out
    assert mlflow_server.password not in out


def test_smoke_fails_on_a_wrong_api_key(
    model_api: str, mlflow_server: MlflowServer, capsys: pytest.CaptureFixture[str]
) -> None:
    pulumi = stack_with(model_api, mlflow_server, "wrong-" + secrets.token_hex(4), mlflow_server.password)
    assert smoke.main(["gcp-dev", "--wait", "0"], pulumi=pulumi) == 1
    assert "POST /predict -> 401" in capsys.readouterr().err


def test_smoke_fails_on_a_wrong_mlflow_password(
    model_api: str, mlflow_server: MlflowServer, api_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pulumi = stack_with(model_api, mlflow_server, api_key, secrets.token_urlsafe(12))
    assert smoke.main(["gcp-dev", "--wait", "0"], pulumi=pulumi) == 1
    assert "answered 401 with the admin credentials" in capsys.readouterr().err


def test_smoke_fails_when_mlflow_needs_no_credentials(
    model_api: str, api_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The model API's /healthz stands in for an MLflow without auth: it answers 200 to anyone.
    target = smoke.Target(model_api, model_api + "/healthz#", api_key, "x")
    with httpx.Client() as client, pytest.raises(smoke.SmokeError, match="expected 401: is auth on"):
        smoke.check_tracking(client, target)


def test_stack_without_a_pinned_model_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    pulumi = FakePulumi(environ={"PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER": "true"})
    pulumi.backend.add("aws-dev", {"apiUrl": "", "trackingUri": "https://t"})
    assert smoke.main(["aws-dev", "--wait", "0"], pulumi=pulumi) == 1
    assert "no apiUrl yet: pin a model" in capsys.readouterr().err
