"""A fast path for scikit-learn tree regressors: the same arithmetic as `predict`, without its overhead.

`RandomForestRegressor.predict` on one row spends ~5 ms here in input validation and joblib dispatch for
~0.3 ms of tree walking. Calling each fitted tree's `tree_.predict` on float32 input and summing in
estimator order is exactly what scikit-learn does with `n_jobs=1`, so the result is bit-identical; the
caller still proves it on sample rows before trusting it (`matches_reference`).
"""

import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

MatrixPredictor = Callable[[NDArray[np.float64]], NDArray[np.float64]]


class OutOfRangeError(ValueError):
    """A value the trees cannot take; the message is ours and safe to send back."""


def tree_ensemble_predictor(estimator: Any) -> MatrixPredictor | None:
    """A fast predictor for a single-output tree regressor or forest of them, else None."""
    # A scikit-learn estimator was built by an imported scikit-learn; without one in the process (an image
    # built for a LightGBM model has no scikit-learn at all) the model is something else.
    if "sklearn" not in sys.modules:
        return None
    from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
    from sklearn.tree import DecisionTreeRegressor, ExtraTreeRegressor

    if type(estimator) in (DecisionTreeRegressor, ExtraTreeRegressor):
        trees = [estimator.tree_]
    elif type(estimator) in (RandomForestRegressor, ExtraTreesRegressor):
        trees = [tree.tree_ for tree in estimator.estimators_]
    else:
        return None
    if getattr(estimator, "n_outputs_", None) != 1:
        return None
    return _averaging_predictor(trees)


def _averaging_predictor(trees: Sequence[Any]) -> MatrixPredictor:
    count = len(trees)

    def predict(matrix: NDArray[np.float64]) -> NDArray[np.float64]:
        with np.errstate(over="ignore"):
            as_float32 = np.ascontiguousarray(matrix, dtype=np.float32)
        if np.isinf(as_float32).any():
            # scikit-learn refuses these too (after the same float32 cast); NaN it routes like missing values.
            raise OutOfRangeError("The input has a value too large for the model (beyond float32's range).")
        total = np.zeros(as_float32.shape[0], dtype=np.float64)
        for tree in trees:
            total += tree.predict(as_float32)[:, 0]
        total /= count
        return total

    return predict


def matches_reference(
    fast: MatrixPredictor, reference: MatrixPredictor, samples: NDArray[np.float64]
) -> bool:
    """True when the fast path gives bit-identical predictions to the reference on `samples`."""
    return bool(np.array_equal(fast(samples), reference(samples)))


def probe_rows(estimator: Any, n_features: int, n_rows: int = 256, seed: int = 0) -> NDArray[np.float64]:
    """Rows spread over the range of the split thresholds, so the probe takes both sides of many splits."""
    trees = getattr(estimator, "estimators_", [estimator])
    low = np.full(n_features, np.inf)
    high = np.full(n_features, -np.inf)
    for fitted in trees:
        split = fitted.tree_.feature >= 0
        np.minimum.at(low, fitted.tree_.feature[split], fitted.tree_.threshold[split])
        np.maximum.at(high, fitted.tree_.feature[split], fitted.tree_.threshold[split])
    unused = ~np.isfinite(low)
    low[unused], high[unused] = 0.0, 1.0
    span = high - low
    rng = np.random.default_rng(seed)
    return np.asarray(rng.uniform(low - 0.1 * span, high + 0.1 * span, size=(n_rows, n_features)))
