"""Training against a real tracking server with auth: what lands in the registry, and how it loads back."""

import os
import subprocess
import sys

import mlflow
import mlflow.pyfunc
import pytest
from mlflow.tracking import MlflowClient

from mlops_stack import example_model
from mlops_stack.example_model import SKOPS_TRUSTED_TYPES
from scripts.tests.sizes import SMALL
from scripts.train import CHALLENGER_ALIAS, main, train_and_register
from testing.mlflow_server import MlflowServer

pytestmark = pytest.mark.slow


def test_registers_a_challenger_that_loads_back_with_metrics_signature_and_example(
    mlflow_client_env: MlflowServer, model_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    registered = train_and_register(model_name=model_name, **SMALL)

    client = MlflowClient()
    aliased = client.get_model_version_by_alias(model_name, CHALLENGER_ALIAS)
    assert aliased.version == registered.version == "1"
    run = client.get_run(registered.run_id)
    assert run.data.params["n_estimators"] == "5"
    assert run.data.params["n_rows"] == "300"
    assert set(run.data.metrics) >= {"mae", "r2"}
    assert run.data.metrics["mae"] == pytest.approx(registered.metrics["mae"])

    model_info = mlflow.models.get_model_info(f"models:/{model_name}@{CHALLENGER_ALIAS}")
    assert model_info.signature is not None
    assert model_info.signature.inputs.input_names() == list(example_model.FEATURES)
    assert model_info.saved_input_example_info is not None
    sklearn_flavor = model_info.flavors["sklearn"]
    assert sklearn_flavor["serialization_format"] == "skops"
    assert sklearn_flavor["skops_trusted_types"] == SKOPS_TRUSTED_TYPES
    # The reference profile travels inside the model (what the API reads) and beside it (what people read).
    assert model_info.metadata is not None
    profile = model_info.metadata["reference_profile"]
    assert [column["name"] for column in profile["features"]] == list(example_model.FEATURES)
    assert profile["rows"] == 225, "the training rows: three quarters of 300"
    assert profile["prediction"]["kind"] == "numeric"
    assert mlflow.artifacts.load_dict(f"runs:/{registered.run_id}/reference_profile.json") == profile

    # Loading a skops model is gated by this flag in MLflow 3.17, as unpickling is.
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    loaded = mlflow.pyfunc.load_model(f"models:/{model_name}@{CHALLENGER_ALIAS}")
    local = example_model.train(**SMALL)
    rows = local.test_features.head(10)
    assert list(loaded.predict(rows)) == pytest.approx(list(local.model.predict(rows)))


def test_a_second_training_moves_the_challenger_alias(
    mlflow_client_env: MlflowServer, model_name: str
) -> None:
    train_and_register(model_name=model_name, **SMALL)
    second = train_and_register(model_name=model_name, seed=11, **SMALL)

    assert second.version == "2"
    assert MlflowClient().get_model_version_by_alias(model_name, CHALLENGER_ALIAS).version == "2"


def test_cli_registers_through_mlflow_env_vars(mlflow_server: MlflowServer, model_name: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.train",
            "--model-name",
            model_name,
            "--n-estimators",
            "3",
            "--n-rows",
            "200",
        ],
        env={**os.environ, **mlflow_server.client_env()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"registered {model_name} version 1 as @{CHALLENGER_ALIAS}" in result.stdout


def test_cli_without_tracking_uri_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(SystemExit, match="MLFLOW_TRACKING_URI is not set"):
        main(["--n-estimators", "3"])


def test_cli_rejects_a_non_positive_tree_count(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--n-estimators", "0"])
    assert exit_info.value.code == 2
    assert "--n-estimators: must be at least 1, got 0" in capsys.readouterr().err


def test_wrong_credentials_are_refused(
    mlflow_server: MlflowServer, model_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", mlflow_server.username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not-the-password")
    with pytest.raises(mlflow.MlflowException, match=r"401|Unauthorized|credentials"):
        train_and_register(model_name=model_name, **SMALL)
