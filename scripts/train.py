"""Train the example throughput model, log it to MLflow, register it and mark it `challenger`.

The tracking server and credentials come from MLflow's own environment variables (`MLFLOW_TRACKING_URI`,
`MLFLOW_TRACKING_USERNAME`, `MLFLOW_TRACKING_PASSWORD`), so the same command works against the local
stack, a test server and a cloud stack:

    MLFLOW_TRACKING_URI=http://127.0.0.1:5000 python -m scripts.train --model-name throughput

Promotion to `champion` is a separate, deliberate step: `python -m scripts.promote`.
"""

import argparse
import sys
from dataclasses import dataclass

import mlflow
import mlflow.sklearn
from mlflow.environment_variables import MLFLOW_TRACKING_URI
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from mlops_stack import example_model
from service.reference_profile import ARTIFACT_FILE, METADATA_KEY

DEFAULT_MODEL_NAME = "throughput"
DEFAULT_EXPERIMENT = "throughput"
CHALLENGER_ALIAS = "challenger"
# What skops must trust to load a random forest beyond its built-in safe set: the trees' Cython class.
# Found with `skops.io.get_untrusted_types` on a saved model; mlflow re-loads the model when it saves it,
# so a type missing here fails at training time, not in the serving container.
INPUT_EXAMPLE_ROWS = 3


@dataclass(frozen=True)
class RegisteredVersion:
    """A model version that training registered, and how it scored on held-out data."""

    name: str
    version: str
    run_id: str
    metrics: dict[str, float]


def train_and_register(
    model_name: str = DEFAULT_MODEL_NAME,
    experiment: str = DEFAULT_EXPERIMENT,
    n_estimators: int = 50,
    n_rows: int = 2_000,
    seed: int = 7,
) -> RegisteredVersion:
    """Fit the example model, log params, metrics, signature, input example and reference profile, register
    it, alias it. The profile goes inside the model (MLmodel metadata, what the API reads) and next to it as
    the run artifact reference_profile.json (what people read)."""
    trained = example_model.train(n_estimators=n_estimators, n_rows=n_rows, seed=seed)
    profile = trained.reference_profile()
    signature = infer_signature(trained.test_features, trained.model.predict(trained.test_features))
    mlflow.set_experiment(experiment)
    with mlflow.start_run() as run:
        mlflow.log_params({**trained.params, "n_rows": n_rows})
        mlflow.log_metrics(trained.metrics)
        mlflow.log_dict(profile, ARTIFACT_FILE)
        model_info = mlflow.sklearn.log_model(
            trained.model,
            name="model",
            signature=signature,
            input_example=trained.test_features.head(INPUT_EXAMPLE_ROWS),
            registered_model_name=model_name,
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
            skops_trusted_types=example_model.SKOPS_TRUSTED_TYPES,
            # What the model needs is known: mlflow, scikit-learn and skops, pinned to what trained it.
            # Left to infer, mlflow exports the whole uv project (Pulumi included) when run from this
            # repository, or else loads the model in a subprocess to watch its imports (seconds).
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True),
            metadata={METADATA_KEY: profile},
        )
    version = str(model_info.registered_model_version)
    MlflowClient().set_registered_model_alias(model_name, CHALLENGER_ALIAS, version)
    return RegisteredVersion(
        name=model_name, version=version, run_id=run.info.run_id, metrics=trained.metrics
    )


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.train", description=__doc__.splitlines()[0])
    parser.add_argument("--model-name", default=DEFAULT_MODEL_NAME, help="registered model name")
    parser.add_argument(
        "--experiment", default=DEFAULT_EXPERIMENT, help="MLflow experiment to log the run in"
    )
    parser.add_argument("--n-estimators", type=positive_int, default=50, help="trees in the forest")
    parser.add_argument("--n-rows", type=positive_int, default=2_000, help="rows of generated data")
    parser.add_argument("--seed", type=int, default=7, help="seed for the data and the forest")
    return parser.parse_args(argv)


def require_tracking_uri() -> None:
    """Refuse to fall back to MLflow's default local store: a model registered there is lost to the team."""
    if not MLFLOW_TRACKING_URI.get():
        sys.exit(
            "MLFLOW_TRACKING_URI is not set: point it at the tracking server, e.g. "
            "MLFLOW_TRACKING_URI=http://127.0.0.1:5000 (with MLFLOW_TRACKING_USERNAME/PASSWORD if auth is on)"
        )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    require_tracking_uri()
    registered = train_and_register(
        model_name=args.model_name,
        experiment=args.experiment,
        n_estimators=args.n_estimators,
        n_rows=args.n_rows,
        seed=args.seed,
    )
    metrics = ", ".join(f"{name}={value:.4f}" for name, value in sorted(registered.metrics.items()))
    print(
        f"registered {registered.name} version {registered.version} as @{CHALLENGER_ALIAS} "
        f"(run {registered.run_id}; {metrics})"
    )


if __name__ == "__main__":
    main()
