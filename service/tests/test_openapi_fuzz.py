"""Schemathesis against our own OpenAPI: whatever it sends, no 5xx (bounded: 50 examples per operation)."""

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core.result import Ok

from service.app import create_app
from service.model_loading import load_served_model
from service.settings import Settings
from service.tests.conftest import wait_until_ready


def test_no_server_errors(settings: Settings) -> None:
    # Schemathesis runs the app's lifespan again for the calls it makes: with the model given, each run
    # installs it at once, where a load each time would start a loading thread per call.
    app = create_app(settings, model=load_served_model(settings))
    with TestClient(app) as client:  # runs the lifespan: /predict joins the schema
        wait_until_ready(client)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        results = list(schema.get_all_operations())
        assert all(isinstance(result, Ok) for result in results), "our OpenAPI has an invalid operation"
        operations = [result.ok() for result in results if isinstance(result, Ok)]
        assert {operation.path for operation in operations} >= {"/invocations", "/predict", "/version"}
        for operation in operations:
            check_operation(operation.as_strategy())


def check_operation(strategy: st.SearchStrategy[schemathesis.Case]) -> None:
    @given(case=strategy)
    @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def no_5xx(case: schemathesis.Case) -> None:
        response = case.call()
        assert response.status_code < 500, (
            f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"
        )

    no_5xx()
