"""Loading from registry URIs (version and alias pinned), /version, and retrying, then staying unready."""

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from service.tests.conftest import wait_until_ready
from testing.model_fixtures import LoggedModel


@pytest.fixture
def tracking(example_model: LoggedModel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", example_model.tracking_uri)


@pytest.mark.usefixtures("tracking")
def test_alias_is_pinned_to_its_version(example_model: LoggedModel) -> None:
    settings = Settings(
        model_uri=example_model.alias_uri, service_version="1.2.3", image="registry/api:1.2.3"
    )
    with TestClient(create_app(settings)) as client:
        version = wait_until_ready(client).get("/version").json()
    assert version == {
        "model_name": "throughput",
        "model_version": "1",
        "model_uri": "models:/throughput/1",
        "run_id": example_model.run_id,
        "service_version": "1.2.3",
        "image": "registry/api:1.2.3",
    }


def test_local_path_reports_configured_name_and_version(
    settings: Settings, example_model: LoggedModel
) -> None:
    named = settings.model_copy(update={"model_name": "throughput", "model_version": "7"})
    with TestClient(create_app(named)) as client:
        version = wait_until_ready(client).get("/version").json()
    assert (version["model_name"], version["model_version"], version["run_id"]) == (
        "throughput",
        "7",
        example_model.run_id,
    )


def test_a_failing_load_is_retried_then_given_up_live_and_without_internals(tmp_path: Path) -> None:
    missing = tmp_path / "no-model-here"
    settings = Settings(model_uri=str(missing), model_load_budget_seconds=2.5)
    with TestClient(create_app(settings)) as client:
        answers = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert client.get("/healthz").status_code == 200, "live while the load is retried"
            answers.append(client.get("/readyz"))
            if "within 2.5s" in answers[-1].json()["reason"]:
                break
            time.sleep(0.1)
        refused = client.post("/invocations", json={"inputs": [1]})
    reasons = [answer.json()["reason"] for answer in answers]
    assert {answer.status_code for answer in answers} == {503}
    assert any("retrying" in reason for reason in reasons), reasons
    assert "within 2.5s (failed attempts: 2)" in reasons[-1]
    assert (refused.status_code, refused.headers["retry-after"]) == (503, "5")
    for text in [*reasons, refused.text]:
        assert "no-model-here" not in text
        assert "Mlflow" not in text
        assert "Exception" not in text
