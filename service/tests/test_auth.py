"""The optional API key: required on prediction and /version routes, never on health, readiness, metrics."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from service.app import create_app
from service.settings import Settings


@pytest.fixture(scope="module")
def locked(settings: Settings, api_key: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(model_uri=settings.model_uri, api_key=SecretStr(api_key)))) as client:
        yield client


@pytest.mark.parametrize("path", ["/invocations", "/predict"])
def test_prediction_without_key_is_401(locked: TestClient, rows: list[dict[str, float]], path: str) -> None:
    body = {"rows": rows} if path == "/predict" else {"dataframe_records": rows}
    response = locked.post(path, json=body)
    assert response.status_code == 401
    assert "X-API-Key" in response.json()["message"]


def test_wrong_key_is_401(locked: TestClient, api_key: str) -> None:
    assert locked.get("/version", headers={"X-API-Key": api_key + "x"}).status_code == 401


@pytest.mark.parametrize("header", ["X-API-Key", "Authorization"])
def test_right_key_in_either_header_passes(
    locked: TestClient, rows: list[dict[str, float]], api_key: str, header: str
) -> None:
    value = api_key if header == "X-API-Key" else f"Bearer {api_key}"
    response = locked.post("/invocations", json={"dataframe_records": rows}, headers={header: value})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_stay_open(locked: TestClient, path: str) -> None:
    assert locked.get(path).status_code == 200
