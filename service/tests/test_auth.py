"""The optional API key: checked on the headers before any body is read; never on probes, metrics, docs."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from service.app import create_app
from service.settings import Settings
from service.tests.conftest import wait_until_ready


@pytest.fixture(scope="module")
def locked(settings: Settings, api_key: str) -> Iterator[TestClient]:
    locked_settings = settings.model_copy(update={"api_key": SecretStr(api_key)})
    with TestClient(create_app(locked_settings)) as client:
        yield wait_until_ready(client)


@pytest.mark.parametrize("path", ["/invocations", "/predict"])
def test_prediction_without_key_is_401(locked: TestClient, rows: list[dict[str, float]], path: str) -> None:
    body = {"rows": rows} if path == "/predict" else {"dataframe_records": rows}
    response = locked.post(path, json=body)
    assert response.status_code == 401
    assert "X-API-Key" in response.json()["message"]
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("path", ["/invocations", "/predict", "/no-such-route"])
def test_without_key_the_body_is_never_parsed(locked: TestClient, path: str) -> None:
    """Malformed JSON and an oversized declared length: 401 either way (FastAPI would have said 422)."""
    malformed = locked.post(path, content=b"{", headers={"Content-Type": "application/json"})
    oversized = locked.post(path, content=b"x" * (70 * 1024), headers={"Content-Type": "text/csv"})
    assert (malformed.status_code, oversized.status_code) == (401, 401)
    assert oversized.headers["connection"] == "close", "the unread body must not be drained"


def test_wrong_key_is_401(locked: TestClient, api_key: str) -> None:
    assert locked.get("/version", headers={"X-API-Key": api_key + "x"}).status_code == 401
    assert locked.get("/version", headers={"Authorization": f"Basic {api_key}"}).status_code == 401


@pytest.mark.parametrize("header", ["X-API-Key", "Authorization"])
def test_right_key_in_either_header_passes(
    locked: TestClient, rows: list[dict[str, float]], api_key: str, header: str
) -> None:
    value = api_key if header == "X-API-Key" else f"Bearer {api_key}"
    response = locked.post("/invocations", json={"dataframe_records": rows}, headers={header: value})
    assert response.status_code == 200, response.text
    assert "connection" not in response.headers, "a fully read request keeps its connection"


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"])
def test_probes_and_docs_stay_open(locked: TestClient, path: str) -> None:
    assert locked.get(path).status_code == 200


def test_openapi_declares_both_schemes(locked: TestClient) -> None:
    schemes = locked.get("/openapi.json").json()["components"]["securitySchemes"]
    assert {scheme["type"] for scheme in schemes.values()} == {"apiKey", "http"}
