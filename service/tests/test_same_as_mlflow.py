"""Side by side with a real `mlflow models serve`: the same requests give the same predictions."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from mlops_stack.ports import free_port
from testing.model_fixtures import LoggedModel

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mlflow_url(example_model: LoggedModel) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", example_model.local_path]
    command += ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, env=os.environ, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        assert process.poll() is None, "mlflow models serve exited"
        try:
            if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.3)
    yield url
    os.killpg(process.pid, 15)
    process.wait(timeout=30)


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
