"""Loading from registry URIs (version and alias pinned), /version, and staying unready on failure."""

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
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
        version = client.get("/version").json()
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
        version = client.get("/version").json()
    assert (version["model_name"], version["model_version"], version["run_id"]) == (
        "throughput",
        "7",
        example_model.run_id,
    )


def test_load_failure_stays_unready_with_the_reason(tmp_path: object) -> None:
    settings = Settings(model_uri=f"{tmp_path}/no-model-here")
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "no-model-here" in ready.json()["reason"]
        refused = client.post("/invocations", json={"inputs": [1]})
        assert refused.status_code == 503
        assert "not loaded" in refused.json()["message"]
