"""Side by side with a real `mlflow models serve`: the same requests give the same predictions."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import mlflow
import pytest
from fastapi.testclient import TestClient
from mlflow.pyfunc import PythonModel

from mlops_stack.ports import free_port
from service.app import create_app
from service.settings import Settings
from service.tests.conftest import wait_until_ready
from testing.model_fixtures import LoggedModel

pytestmark = pytest.mark.slow


@contextmanager
def mlflow_models_serve(model_path: str) -> Iterator[str]:
    """`mlflow models serve` of `model_path` on a free loopback port, once it answers /ping."""
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_path]
    command += ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, env=os.environ, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            assert process.poll() is None, "mlflow models serve exited"
            try:
                if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        yield url
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def mlflow_url(example_model: LoggedModel) -> Iterator[str]:
    with mlflow_models_serve(example_model.local_path) as url:
        yield url


def requests_in_every_format(example_model: LoggedModel) -> list[tuple[str, Any]]:
    frame = example_model.sample.head(25)
    records = frame.to_dict(orient="records")
    ints = [{name: round(value) for name, value in record.items()} for record in records[:3]]
    return [
        ("application/json", {"dataframe_split": frame.to_dict(orient="split", index=False)}),
        ("application/json", {"dataframe_records": records}),
        ("application/json", {"dataframe_records": ints}),
        ("application/json", {"instances": records}),
        ("application/json", {"inputs": frame.to_dict(orient="list")}),
        ("application/json", {"inputs": records}),
        ("text/csv", frame.to_csv(index=False)),
    ]


def test_identical_predictions(client: TestClient, mlflow_url: str, example_model: LoggedModel) -> None:
    for content_type, payload in requests_in_every_format(example_model):
        kwargs: dict[str, Any] = {"json": payload} if content_type != "text/csv" else {"content": payload}
        headers = {"Content-Type": content_type}
        theirs = httpx.post(f"{mlflow_url}/invocations", headers=headers, timeout=30, **kwargs)
        ours = client.post("/invocations", headers=headers, **kwargs)
        assert theirs.status_code == 200, theirs.text
        assert ours.status_code == 200, ours.text
        assert ours.json() == theirs.json(), f"{content_type} {str(payload)[:80]}"


@pytest.mark.parametrize("path", ["/ping", "/health"])
def test_health_checks_answer_as_mlflows_do(client: TestClient, mlflow_url: str, path: str) -> None:
    """Status, body and content type, without a key (ours has one set), as tools written for MLflow expect."""
    theirs = httpx.get(f"{mlflow_url}{path}", timeout=10)
    ours = client.get(path)
    assert (ours.status_code, ours.content) == (theirs.status_code, theirs.content) == (200, b"\n")
    assert ours.headers["content-type"] == theirs.headers["content-type"]


class Upper(PythonModel):
    """A custom model in the style MLflow now recommends: type hints are its signature, input not tabular."""

    # MLflow takes predict without `context` (its current style); its stub still declares the old one.
    def predict(self, model_input: list[str], params: dict[str, Any] | None = None) -> list[str]:  # type: ignore[override]
        return [text.upper() for text in model_input]


@pytest.fixture(scope="module")
def type_hinted_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("type-hinted") / "model")
    mlflow.pyfunc.save_model(path, python_model=Upper(), input_example=["a", "b"])
    return path


@pytest.mark.parametrize(
    "payload",
    [
        {"inputs": ["hello", "world"]},
        {"dataframe_split": {"columns": ["x"], "data": [["a"]]}},
        {"instances": ["a"]},
        {"inputs": [1, 2]},
        {"inputs": "hello"},
    ],
    ids=["strings", "dataframe-split", "instances", "numbers", "not-a-list"],
)
def test_a_type_hinted_model_answers_as_mlflow_does(
    type_hinted_model: str, type_hinted_mlflow_url: str, payload: dict[str, Any]
) -> None:
    """The same status for every body, and the same predictions when both accept it."""
    theirs = httpx.post(f"{type_hinted_mlflow_url}/invocations", json=payload, timeout=30)
    with TestClient(
        create_app(Settings(model_uri=type_hinted_model)), raise_server_exceptions=False
    ) as client:
        ours = wait_until_ready(client).post("/invocations", json=payload)
    assert ours.status_code == theirs.status_code, (ours.text, theirs.text)
    if theirs.status_code == 200:
        assert ours.json() == theirs.json()


@pytest.fixture(scope="module")
def type_hinted_mlflow_url(type_hinted_model: str) -> Iterator[str]:
    with mlflow_models_serve(type_hinted_model) as url:
        yield url


@pytest.fixture(scope="module")
def type_hinted_client(type_hinted_model: str) -> Iterator[TestClient]:
    app = create_app(Settings(model_uri=type_hinted_model))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield wait_until_ready(client)
