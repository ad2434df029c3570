"""Training sizes for tests where the point is the plumbing, not the model: small means seconds saved."""

from typing import TypedDict


class TrainingSize(TypedDict):
    """Keyword arguments of `scripts.train.train_and_register` / `example_model.train` that set the cost."""

    n_estimators: int
    n_rows: int


SMALL: TrainingSize = {"n_estimators": 5, "n_rows": 300}
# Few trees on few rows score clearly worse than more trees on more rows, so their order is known.
WEAK: TrainingSize = {"n_estimators": 1, "n_rows": 200}
STRONG: TrainingSize = {"n_estimators": 10, "n_rows": 800}
