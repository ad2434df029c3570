"""/predict: typed from the signature (visible in OpenAPI), the same rules and numbers as /invocations."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from mlops_stack.example_model import FEATURES
from service.app import create_app
from service.settings import Settings
from service.tests.conftest import wait_until_ready
from testing.model_fixtures import FlavorModel


def test_openapi_shows_feature_names_and_types(client: TestClient) -> None:
    openapi = client.get("/openapi.json").json()
    body = openapi["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    properties = body["properties"]["rows"]["items"]["properties"]
    assert list(properties) == list(FEATURES)
    assert all(spec["anyOf"] == [{"type": "number"}, {"type": "null"}] for spec in properties.values())
    response = openapi["components"]["schemas"]["PredictResponse"]
    assert response["properties"]["predictions"]["items"]["type"] == "number"


def test_predict_equals_invocations(client: TestClient, rows: list[dict[str, float]]) -> None:
    typed = client.post("/predict", json={"rows": rows})
    scoring = client.post("/invocations", json={"dataframe_records": rows})
    assert typed.status_code == 200, typed.text
    assert typed.json()["predictions"] == scoring.json()["predictions"]


def test_wrong_type_is_422_naming_column_and_row(client: TestClient, rows: list[dict[str, float]]) -> None:
    response = client.post("/predict", json={"rows": [rows[0], {**rows[1], "rpm": "fast"}]})
    assert response.status_code == 422
    assert "'rpm' in row 1 must be a number or null" in response.json()["message"]


def test_missing_and_extra_fields_are_422(client: TestClient, rows: list[dict[str, float]]) -> None:
    record = {**rows[0], "colour": 1.0}
    del record["rpm"]
    message = client.post("/predict", json={"rows": [record]}).json()["message"]
    assert "missing columns ['rpm']" in message
    assert "unexpected columns ['colour']" in message


@pytest.mark.parametrize("body", [{"rows": []}, {"rows": [[1.0, 2.0]]}, {"rows": [], "more": 1}, [1]])
def test_wrong_envelope_or_no_rows_is_422(client: TestClient, body: object) -> None:
    assert client.post("/predict", json=body).status_code == 422


def test_too_many_rows_are_413(client: TestClient, rows: list[dict[str, float]]) -> None:
    assert client.post("/predict", json={"rows": rows[:1] * 51}).status_code == 413


def test_malformed_json_is_422(client: TestClient) -> None:
    response = client.post("/predict", content=b"{", headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert "Malformed JSON" in response.json()["message"]


@pytest.fixture(scope="module")
def type_hinted_client(type_hinted_model: FlavorModel) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(model_uri=type_hinted_model.local_path))) as client:
        yield wait_until_ready(client)


def test_a_type_hinted_model_takes_its_inputs_as_rows(type_hinted_client: TestClient) -> None:
    """A `list[str]` model: /predict's rows are the strings, typed so in OpenAPI, and an empty list is an
    empty answer, as MLflow's `{"inputs": []}` is."""
    openapi = type_hinted_client.get("/openapi.json").json()
    body = openapi["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["rows"]["items"] == {"type": "string"}
    answer = type_hinted_client.post("/predict", json={"rows": ["a", "b"]})
    assert answer.json() == {"predictions": ["A", "B"]}
    assert type_hinted_client.post("/predict", json={"rows": []}).json() == {"predictions": []}
    refused = type_hinted_client.post("/predict", json={"rows": [1]})
    assert (refused.status_code, refused.json()["error_code"]) == (422, "INVALID_INPUT")
