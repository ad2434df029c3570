"""Real MLflow models of the flavors the model API serves beside the example, saved to a directory (no
tracking store): what the API loads from a local path, and what `mlflow models serve -m <path>` serves in
the comparison tests and in `make bench`.

- `save_lightgbm_model`: a LightGBM booster on the example data (the gradient-boosting flavor).
- `save_frame_model`: a custom PythonModel without type hints that takes a DataFrame of mixed column types
  (string, long, double) and answers a DataFrame.
- `save_type_hinted_model`: a custom PythonModel in the style MLflow now recommends, its signature from type
  hints and its input not tabular (`list[str]`).

The models' classes live here, in an importable module, because `mlflow models serve` unpickles them in
another process.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from mlops_stack.example_model import FEATURES, TARGET, make_dataset


@dataclass(frozen=True)
class FlavorModel:
    """A saved model, and sample inputs it accepts."""

    flavor: str
    local_path: str
    sample: Any
    """Rows it takes: a DataFrame for tabular models, a list for a type-hinted one."""


def save_lightgbm_model(directory: Path) -> FlavorModel:
    """A 20-tree LightGBM booster on the example data, saved with mlflow.lightgbm (a text model file, no
    pickle). A Booster, not LGBMRegressor: MLflow pickles the scikit-learn wrapper."""
    import lightgbm
    import mlflow.lightgbm
    from mlflow.models import infer_signature

    data = make_dataset(n_rows=600, seed=11)
    features = data[list(FEATURES)]
    booster = lightgbm.train(
        {"objective": "regression", "num_leaves": 15, "verbose": -1, "num_threads": 1, "seed": 11},
        lightgbm.Dataset(features, data[TARGET]),
        num_boost_round=20,
    )
    sample = features.tail(30).reset_index(drop=True)
    path = str(directory / "model")
    mlflow.lightgbm.save_model(
        booster,
        path,
        signature=infer_signature(sample, booster.predict(sample)),
        input_example=sample.head(2),
        pip_requirements=mlflow.lightgbm.get_default_pip_requirements(),
    )
    return FlavorModel("lightgbm", path, sample)


class RentEstimate(PythonModel):
    """Rent per month from a flat's city, rooms and area: a DataFrame in, a DataFrame of two columns out."""

    BASE: ClassVar[dict[str, float]] = {"Lyon": 14.0, "Paris": 30.0}

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        if (model_input["area_m2"] <= 0).any():
            # Not a ValueError: what a model's own code may raise for input it cannot use.
            raise RuntimeError("a flat has a positive area")
        per_m2 = model_input["city"].map(self.BASE).fillna(11.0)
        rent = per_m2 * model_input["area_m2"] + 25.0 * model_input["rooms"]
        return pd.DataFrame({"rent": rent.round(2), "band": np.where(rent > 1500, "high", "normal")})


def save_frame_model(directory: Path) -> FlavorModel:
    """RentEstimate with a signature inferred from a DataFrame: string, long and double columns."""
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    sample = pd.DataFrame(
        {
            "city": ["Paris", "Lyon", "Nantes", "Paris", "Lyon"],
            "rooms": np.array([2, 3, 1, 4, 2], dtype=np.int64),
            "area_m2": [45.5, 70.0, 28.25, 96.0, 51.0],
        }
    )
    path = str(directory / "model")
    model = RentEstimate()
    mlflow.pyfunc.save_model(
        path,
        python_model=model,
        signature=infer_signature(sample, model.predict(None, sample)),
        input_example=sample.head(2),
        pip_requirements=["mlflow-skinny", "pandas", "numpy"],
    )
    return FlavorModel("pyfunc-dataframe", path, sample)


class Upper(PythonModel):
    """A custom model in the style MLflow now recommends: type hints are its signature, input not tabular."""

    # MLflow takes predict without `context` (its current style); its stub still declares the old one.
    def predict(self, model_input: list[str], params: dict[str, Any] | None = None) -> list[str]:  # type: ignore[override]
        return [text.upper() for text in model_input]


def save_type_hinted_model(directory: Path) -> FlavorModel:
    """Upper, saved with an input example (its signature comes from the hints)."""
    import mlflow.pyfunc

    path = str(directory / "model")
    mlflow.pyfunc.save_model(
        path, python_model=Upper(), input_example=["a", "b"], pip_requirements=["mlflow-skinny"]
    )
    return FlavorModel("pyfunc-type-hints", path, ["hello", "world", "ça va"])
