"""The real chain over HTTP: MLflow with auth -> train -> register -> promote -> model API -> predictions."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from mlflow.tracking import MlflowClient

from mlops_stack import example_model
from mlops_stack.local_mlflow import stop_process_group, wait_until_healthy
from mlops_stack.ports import free_port
from scripts.local_stack import start_model_api
from scripts.promote import CHAMPION_ALIAS, promote, version_by_alias
from scripts.tests.sizes import SMALL
from scripts.train import train_and_register
from testing.mlflow_server import MlflowServer

pytestmark = pytest.mark.slow


def test_mlflow_refuses_requests_without_credentials(mlflow_server: MlflowServer) -> None:
    search = f"{mlflow_server.url}/api/2.0/mlflow/registered-models/search"
    assert requests.get(search, timeout=10).status_code == 401
    assert requests.get(search, auth=(mlflow_server.username, "wrong"), timeout=10).status_code == 401
    assert requests.get(search, auth=(mlflow_server.username, mlflow_server.password), timeout=10).ok


@pytest.fixture
def champion_api(mlflow_client_env: MlflowServer, model_name: str, tmp_path: Path) -> Iterator[str]:
    """Train, register and promote a model, then serve its champion version; yields the API's URL."""
    train_and_register(model_name=model_name, **SMALL)
    decision = promote(MlflowClient(), model_name)
    assert decision.promoted
    champion = version_by_alias(MlflowClient(), model_name, CHAMPION_ALIAS)
    port = free_port()
    log_path = tmp_path / "api.log"
    with log_path.open("wb") as log:
        api = start_model_api(f"models:/{model_name}/{champion}", port, mlflow_client_env.client_env(), log)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}/readyz", api, timeout=120)
        yield f"http://127.0.0.1:{port}"
    except Exception:
        print(log_path.read_text(errors="replace")[-3000:])
        raise
    finally:
        stop_process_group(api)


def test_the_champion_serves_the_predictions_it_was_trained_to_make(champion_api: str) -> None:
    # Training is deterministic: the same settings locally give the model the API should be serving.
    trained = example_model.train(**SMALL)
    rows = trained.test_features.head(4)
    expected = trained.model.predict(rows)
    body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}}

    response = requests.post(f"{champion_api}/invocations", json=body, timeout=30)

    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == pytest.approx(list(expected))
