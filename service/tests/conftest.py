"""Fixtures for the model API tests: settings pointing at the example model, and an in-process client."""

import secrets
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from testing.model_fixtures import LoggedModel

READY_TIMEOUT_S = 60.0


def wait_until_ready(client: TestClient, timeout: float = READY_TIMEOUT_S) -> TestClient:
    """The app loads its model in the background: poll /readyz until it answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return client
        time.sleep(0.05)
    pytest.fail(f"not ready within {timeout:.0f}s: {client.get('/readyz').text}")


@pytest.fixture(scope="session")
def api_key() -> str:
    """A fresh key per run: never a literal secret in the tests."""
    return secrets.token_urlsafe(24)


@pytest.fixture(scope="session")
def settings(example_model: LoggedModel) -> Settings:
    """Settings serving the downloaded example model, no tracking server needed, small limits."""
    return Settings(model_uri=example_model.local_path, max_rows=50, max_body_bytes=64 * 1024)


@pytest.fixture(scope="session")
def client(settings: Settings) -> Iterator[TestClient]:
    """One app (model loaded once) shared by the unit tests; raise_server_exceptions off to see real 500s."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield wait_until_ready(test_client)


@pytest.fixture
def rows(example_model: LoggedModel) -> list[dict[str, float]]:
    """Three held-out rows as records."""
    return [
        {str(name): float(value) for name, value in record.items()}
        for record in example_model.sample.head(3).to_dict(orient="records")
    ]
