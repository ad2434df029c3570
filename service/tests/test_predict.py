"""/predict: typed from the signature (visible in OpenAPI), same numbers as /invocations, clear 422/413."""

from fastapi.testclient import TestClient

from mlops_stack.example_model import FEATURES


def test_openapi_shows_feature_names_and_types(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    properties = schemas["InputRow"]["properties"]
    assert list(properties) == list(FEATURES)
    assert all(spec["type"] == "number" for spec in properties.values())
    assert schemas["PredictResponse"]["properties"]["predictions"]["items"]["type"] == "number"


def test_predict_equals_invocations(client: TestClient, rows: list[dict[str, float]]) -> None:
    typed = client.post("/predict", json={"rows": rows})
    scoring = client.post("/invocations", json={"dataframe_records": rows})
    assert typed.status_code == 200, typed.text
    assert typed.json()["predictions"] == scoring.json()["predictions"]


def test_wrong_type_is_422_naming_the_field(client: TestClient, rows: list[dict[str, float]]) -> None:
    response = client.post("/predict", json={"rows": [{**rows[0], "rpm": "fast"}]})
    assert response.status_code == 422
    assert "rows.0.rpm" in response.json()["message"]


def test_missing_and_extra_fields_are_422(client: TestClient, rows: list[dict[str, float]]) -> None:
    record = {**rows[0], "colour": 1.0}
    del record["rpm"]
    message = client.post("/predict", json={"rows": [record]}).json()["message"]
    assert "rows.0.rpm: Field required" in message
    assert "rows.0.colour: Extra inputs are not permitted" in message


def test_empty_rows_are_422(client: TestClient) -> None:
    assert client.post("/predict", json={"rows": []}).status_code == 422


def test_too_many_rows_are_413(client: TestClient, rows: list[dict[str, float]]) -> None:
    assert client.post("/predict", json={"rows": rows[:1] * 51}).status_code == 413


def test_malformed_json_is_422(client: TestClient) -> None:
    response = client.post("/predict", content=b"{", headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert "JSON" in response.json()["message"]
