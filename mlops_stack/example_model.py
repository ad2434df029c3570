"""The seed story's data and model: predict a machine's throughput from its sensor readings.

The data is generated in code (no downloads) from a known relationship plus noise, so a trained model has
something real to learn and tests can check that its predictions make sense.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from service.reference_profile import METADATA_KEY, build_reference_profile

if TYPE_CHECKING:
    from sklearn.ensemble import RandomForestRegressor

FEATURES: tuple[str, ...] = ("temperature_c", "vibration_mm_s", "pressure_kpa", "humidity_pct", "rpm")
TARGET = "throughput_units_per_hour"
# What skops must be told to trust when loading the model: the one type a random forest stores that skops
# does not trust out of the box. Nothing more, so a tampered model file cannot smuggle in other types.
SKOPS_TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]


def make_dataset(n_rows: int = 2_000, seed: int = 7) -> pd.DataFrame:
    """Sensor readings and the throughput they produce.

    Throughput rises with rpm, falls when the machine runs hot or vibrates, and dips at the pressure
    extremes; humidity barely matters. All features are float64, as a sensor feed would give them.
    """
    rng = np.random.default_rng(seed)
    temperature = rng.normal(65.0, 12.0, n_rows)
    vibration = rng.gamma(2.0, 1.5, n_rows)
    pressure = rng.normal(300.0, 40.0, n_rows)
    humidity = rng.uniform(20.0, 80.0, n_rows)
    rpm = rng.uniform(800.0, 3_000.0, n_rows)
    throughput = (
        0.12 * rpm
        - 2.5 * np.clip(temperature - 70.0, 0.0, None)
        - 9.0 * vibration
        - 0.004 * (pressure - 300.0) ** 2
        - 0.05 * humidity
        + rng.normal(0.0, 8.0, n_rows)
    )
    return pd.DataFrame(
        {
            "temperature_c": temperature,
            "vibration_mm_s": vibration,
            "pressure_kpa": pressure,
            "humidity_pct": humidity,
            "rpm": rpm,
            TARGET: throughput,
        }
    )


@dataclass(frozen=True)
class TrainedModel:
    """A fitted model, the data it was judged on, and how well it did there."""

    model: "RandomForestRegressor"
    params: dict[str, int]
    metrics: dict[str, float]
    test_features: pd.DataFrame
    train_features: pd.DataFrame

    def reference_profile(self) -> dict[str, Any]:
        """What the API compares live traffic with: the training inputs and the model's predictions on
        them (service.reference_profile), logged with the model."""
        return build_reference_profile(self.train_features, self.model.predict(self.train_features))


def train(n_estimators: int = 50, max_depth: int = 12, n_rows: int = 2_000, seed: int = 7) -> TrainedModel:
    """Fit a random forest on generated data and score it on a held-out quarter.

    `n_jobs=1`: a serving process predicts a few rows at a time, where joblib's thread pool costs far
    more than it saves.
    """
    # Imported here: scikit-learn takes seconds to import, and the data alone (make_dataset, used by
    # scripts.shift_traffic) does not need it.
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.metrics import mean_absolute_error, r2_score
    from sklearn.model_selection import train_test_split

    data = make_dataset(n_rows=n_rows, seed=seed)
    features, target = data[list(FEATURES)], data[TARGET]
    x_train, x_test, y_train, y_test = train_test_split(features, target, test_size=0.25, random_state=seed)
    params = {"n_estimators": n_estimators, "max_depth": max_depth, "random_state": seed}
    model = RandomForestRegressor(**params, n_jobs=1).fit(x_train, y_train)
    predicted = model.predict(x_test)
    metrics = {
        "mae": float(mean_absolute_error(y_test, predicted)),
        "r2": float(r2_score(y_test, predicted)),
    }
    return TrainedModel(
        model=model, params=params, metrics=metrics, test_features=x_test, train_features=x_train
    )


# --- the example model logged with MLflow to a local store (tests and `make bench` serve the same model) ---

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


def log_example_model(root: Path, n_estimators: int = 50, with_reference: bool = True) -> LoggedModel:
    """Train the example model, log and register it in a SQLite store under `root`, return its URIs.
    `with_reference=False` leaves out the reference profile, as a model logged by other tools would."""
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
                metadata={METADATA_KEY: trained.reference_profile()} if with_reference else None,
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
