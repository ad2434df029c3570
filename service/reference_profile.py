"""The reference profile: what a model's training inputs and predictions looked like, in a few kilobytes.

Training (`scripts/train.py`, `mlops_stack.example_model`) builds it with `build_reference_profile` and
logs it with the model: inside the model, as the `reference_profile` key of the MLmodel file's metadata,
so every copy of the model (registry, bucket, downloaded) carries it and the API needs no extra download;
and as the run artifact `reference_profile.json` for people and tools to read. The API reads it back with
`profile_from_model_metadata`; a model without one (or with one it cannot read) still serves, and its
drift metrics say "no reference".

Per column (each input of the signature, and the predictions when they are one value per row):
- numeric: the deciles of the training values as bin edges (`edges`, at most 9, repeated values merged),
  the row count in each bin, the null count, and the training minimum and maximum (values outside them
  are "out of range" in the API);
- anything else (strings, booleans): the most frequent categories (at most MAX_CATEGORIES) with their
  counts, the count of all other values, and the null count.

The JSON shape (`format` 1):

    {"format": 1, "rows": 1500,
     "features": [{"name": "rpm", "kind": "numeric", "edges": [...], "counts": [...], "nulls": 0,
                   "min": 801.2, "max": 2999.1},
                  {"name": "site", "kind": "categorical", "categories": ["a", "b"], "counts": [900, 600],
                   "other": 0, "nulls": 0}],
     "prediction": {"name": "prediction", "kind": "numeric", ...} or null}
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

FORMAT = 1
METADATA_KEY = "reference_profile"
ARTIFACT_FILE = "reference_profile.json"
PREDICTION = "prediction"
# Ten bins of equal training mass: the usual PSI binning, fine enough to see a shift, coarse enough that a
# window of a few hundred rows fills every bin.
DECILES = np.linspace(0.1, 0.9, 9)
MAX_CATEGORIES = 20
# Wider models are profiled on their first columns only: every profiled column is a set of time series
# in Prometheus, so the label set stays bounded whatever the model.
MAX_FEATURES = 200


@dataclass(frozen=True)
class NumericReference:
    """A numeric column: decile bins, nulls, and the training range."""

    name: str
    edges: tuple[float, ...]
    counts: tuple[int, ...]
    nulls: int
    min: float
    max: float

    @property
    def slots(self) -> int:
        """Bins, then one slot for nulls."""
        return len(self.counts) + 1

    def reference_counts(self) -> NDArray[np.float64]:
        return np.array([*self.counts, self.nulls], dtype=np.float64)


@dataclass(frozen=True)
class CategoricalReference:
    """A categorical column: the frequent categories, everything else, nulls."""

    name: str
    categories: tuple[str, ...]
    counts: tuple[int, ...]
    other: int
    nulls: int

    @property
    def slots(self) -> int:
        """Categories, then one slot for any other value, then one for nulls."""
        return len(self.categories) + 2

    def reference_counts(self) -> NDArray[np.float64]:
        return np.array([*self.counts, self.other, self.nulls], dtype=np.float64)


ColumnReference = NumericReference | CategoricalReference


@dataclass(frozen=True)
class ReferenceProfile:
    """A model's reference: its input columns (signature order) and its predictions, if one per row."""

    rows: int
    features: tuple[ColumnReference, ...]
    prediction: ColumnReference | None


class ProfileError(ValueError):
    """A stored profile this API cannot read (another format, or damaged)."""


def build_reference_profile(features: pd.DataFrame, predictions: Any) -> dict[str, Any]:
    """The JSON-ready profile of `features` (training inputs, one column per signature input) and of the
    model's `predictions` on them. Predictions that are not one value per row are left out."""
    columns = [_profile_column(str(name), features[name]) for name in list(features.columns)[:MAX_FEATURES]]
    predicted = np.asarray(predictions)
    prediction = (
        _profile_column(PREDICTION, pd.Series(predicted))
        if predicted.ndim == 1 and len(predicted) == len(features)
        else None
    )
    return {"format": FORMAT, "rows": len(features), "features": columns, "prediction": prediction}


def _profile_column(name: str, values: pd.Series) -> dict[str, Any]:
    nulls = values.isna()
    present = values[~nulls]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = present.to_numpy(dtype=np.float64)
        if len(numbers) == 0:
            edges: list[float] = []
            bounds = (0.0, 0.0)
        else:
            edges = [float(edge) for edge in np.unique(np.quantile(numbers, DECILES))]
            bounds = (float(numbers.min()), float(numbers.max()))
        # Bin i holds edges[i-1] <= value < edges[i]: the same `side="right"` search the API uses.
        counts = np.bincount(np.searchsorted(edges, numbers, side="right"), minlength=len(edges) + 1)
        return {
            "name": name,
            "kind": "numeric",
            "edges": edges,
            "counts": [int(count) for count in counts],
            "nulls": int(nulls.sum()),
            "min": bounds[0],
            "max": bounds[1],
        }
    frequencies = present.astype(str).value_counts()
    top = frequencies.head(MAX_CATEGORIES)
    return {
        "name": name,
        "kind": "categorical",
        "categories": [str(category) for category in top.index],
        "counts": [int(count) for count in top.to_numpy()],
        "other": int(frequencies.to_numpy()[MAX_CATEGORIES:].sum()),
        "nulls": int(nulls.sum()),
    }


def profile_from_model_metadata(metadata: Mapping[str, Any] | None) -> ReferenceProfile | None:
    """The profile stored in a model's MLmodel metadata; None when there is none or it cannot be read
    (the reason is logged: the model still serves, without drift scores)."""
    stored = (metadata or {}).get(METADATA_KEY)
    if stored is None:
        return None
    try:
        return parse_profile(stored)
    except ProfileError as error:
        logger.warning("ignoring the model's reference profile: %s", error)
        return None


def parse_profile(stored: Any) -> ReferenceProfile:
    """A `build_reference_profile` document, checked; ProfileError says what is wrong with it."""
    if not isinstance(stored, Mapping) or stored.get("format") != FORMAT:
        found = stored.get("format") if isinstance(stored, Mapping) else type(stored).__name__
        raise ProfileError(f"expected format {FORMAT}, found {found!r}")
    try:
        features = tuple(_parse_column(column) for column in stored["features"])
        prediction = None if stored.get("prediction") is None else _parse_column(stored["prediction"])
        return ReferenceProfile(rows=int(stored["rows"]), features=features, prediction=prediction)
    except (KeyError, TypeError, ValueError) as error:
        raise ProfileError(f"malformed profile ({type(error).__name__}: {error})") from None


def _parse_column(column: Mapping[str, Any]) -> ColumnReference:
    if column["kind"] == "numeric":
        edges = tuple(float(edge) for edge in column["edges"])
        counts = _counts(column["counts"], len(edges) + 1)
        if list(edges) != sorted(set(edges)):
            raise ValueError(f"edges of {column['name']!r} are not increasing")
        return NumericReference(
            name=str(column["name"]),
            edges=edges,
            counts=counts,
            nulls=int(column["nulls"]),
            min=float(column["min"]),
            max=float(column["max"]),
        )
    if column["kind"] == "categorical":
        categories = tuple(str(category) for category in column["categories"])
        return CategoricalReference(
            name=str(column["name"]),
            categories=categories,
            counts=_counts(column["counts"], len(categories)),
            other=int(column["other"]),
            nulls=int(column["nulls"]),
        )
    raise ValueError(f"unknown column kind {column['kind']!r}")


def _counts(values: Sequence[Any], expected: int) -> tuple[int, ...]:
    counts = tuple(int(value) for value in values)
    if len(counts) != expected or any(count < 0 for count in counts):
        raise ValueError(f"expected {expected} non-negative counts, got {len(counts)}")
    return counts
