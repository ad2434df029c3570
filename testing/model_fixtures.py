"""The example model logged with MLflow to a local store, for tests that need a real MLflow model.

`log_example_model` is also what `make bench` uses, so the benchmark and the tests serve the same kind of
model: the seed story's random forest, signature and input example included, saved as skops with only
the one type it needs trusted.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from scripts.example_model import FEATURES, SKOPS_TRUSTED_TYPES, train

REGISTERED_NAME = "throughput"


@dataclass(frozen=True)
class LoggedModel:
    """Where the example model lives, under each kind of URI the API accepts."""

    tracking_uri: str
    registry_uri: str
    """`models:/throughput/1`, needs MLFLOW_TRACKING_URI."""
    alias_uri: str
    """`models:/throughput@challenger`, needs MLFLOW_TRACKING_URI."""
    local_path: str
    """A downloaded copy: serves with no tracking server at all."""
    run_id: str
    sample: pd.DataFrame
    """Held-out feature rows, in signature order."""


def log_example_model(root: Path, n_estimators: int = 50) -> LoggedModel:
    """Train the example model, log and register it in a SQLite store under `root`, return its URIs."""
    import mlflow
    from mlflow.models import infer_signature

    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    # Through the environment, not mlflow.set_tracking_uri: that one pins a process-wide URI that outlives
    # this function and would send later tests' MLflow calls here instead of to their own servers.
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    try:
        experiment_id = mlflow.create_experiment("example", artifact_location=(root / "artifacts").as_uri())
        trained = train(n_estimators=n_estimators)
        sample = trained.test_features[list(FEATURES)].reset_index(drop=True)
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_params(trained.params)
            mlflow.log_metrics(trained.metrics)
            mlflow.sklearn.log_model(
                trained.model,
                name="model",
                signature=infer_signature(sample, trained.model.predict(sample)),
                input_example=sample.head(2),
                registered_model_name=REGISTERED_NAME,
                skops_trusted_types=SKOPS_TRUSTED_TYPES,
                # Named, not inferred: inferring exports this whole uv project (Pulumi included).
                pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True),
            )
        client = mlflow.MlflowClient()
        version = client.search_model_versions(f"name='{REGISTERED_NAME}'")[0].version
        client.set_registered_model_alias(REGISTERED_NAME, "challenger", version)
        registry_uri = f"models:/{REGISTERED_NAME}/{version}"
        local_path = mlflow.artifacts.download_artifacts(registry_uri, dst_path=str(root / "downloaded"))
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
    return LoggedModel(
        tracking_uri=tracking_uri,
        registry_uri=registry_uri,
        alias_uri=f"models:/{REGISTERED_NAME}@challenger",
        local_path=local_path,
        run_id=run.info.run_id,
        sample=sample,
    )


@pytest.fixture(scope="session")
def example_model(tmp_path_factory: pytest.TempPathFactory) -> LoggedModel:
    """A small (10-tree) example model in a throwaway local MLflow store, shared by the whole session."""
    return log_example_model(tmp_path_factory.mktemp("mlflow"), n_estimators=10)
