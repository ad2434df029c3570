"""Fast paths for scikit-learn tree regressors: the same arithmetic as `predict`, without its overhead.

`RandomForestRegressor.predict` on one row spends ~5 ms here in input validation and joblib dispatch for
~0.3 ms of tree walking. Two exact shortcuts, each proven by the caller on sample rows against MLflow's own
predict before it is trusted (`matches_reference`):

- the walk: each fitted tree's `tree_.predict` on float32 input, summed in estimator order, is exactly
  what scikit-learn does with `n_jobs=1`. ~0.27 ms for one row of the 50-tree example model (50 calls
  into Cython), ~2 us per further row: the path for every batch size.
- treelite's GTIL (https://treelite.readthedocs.io/en/latest/tutorials/builder.html): the same trees
  imported into one compiled ensemble, ~0.07 ms for one row but ~11 us per row on one thread, so only for
  batches up to COMPILED_MAX_ROWS (the two cross near 25 rows here). Only when treelite is installed: the
  API image adds it for models that need scikit-learn (service/image_build/environment.py).
"""

import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

MatrixPredictor = Callable[[NDArray[np.float64]], NDArray[np.float64]]
COMPILED_MAX_ROWS = 16
SINGLE_ROW_PROBES = 32


@dataclass(frozen=True)
class TreePaths:
    """The exact shortcuts for one estimator: the walk (any batch), and the compiled ensemble (small batches)
    when treelite can import the model."""

    walk: MatrixPredictor
    compiled: MatrixPredictor | None


class OutOfRangeError(ValueError):
    """A value the trees cannot take; the message is ours and safe to send back."""


def tree_paths(estimator: Any) -> TreePaths | None:
    """The fast paths for a single-output tree regressor or forest of them, else None."""
    # A scikit-learn estimator was built by an imported scikit-learn; without one in the process (an image
    # built for a LightGBM model has no scikit-learn at all) the model is something else.
    if "sklearn" not in sys.modules:
        return None
    from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
    from sklearn.tree import DecisionTreeRegressor, ExtraTreeRegressor

    if getattr(estimator, "n_outputs_", None) != 1:
        return None
    if type(estimator) in (DecisionTreeRegressor, ExtraTreeRegressor):
        # One tree is one call into Cython (~10 us); treelite imports forests only.
        return TreePaths(walk=_averaging_predictor([estimator.tree_]), compiled=None)
    if type(estimator) in (RandomForestRegressor, ExtraTreesRegressor):
        trees = [tree.tree_ for tree in estimator.estimators_]
        return TreePaths(walk=_averaging_predictor(trees), compiled=_compiled_predictor(estimator))
    return None


def by_batch_size(paths: TreePaths) -> MatrixPredictor:
    """One predictor: the compiled ensemble for batches up to COMPILED_MAX_ROWS rows, else the walk.
    Give it only paths that were proven exact."""
    compiled, walk = paths.compiled, paths.walk
    if compiled is None:
        return walk

    def predict(matrix: NDArray[np.float64]) -> NDArray[np.float64]:
        return compiled(matrix) if len(matrix) <= COMPILED_MAX_ROWS else walk(matrix)

    return predict


def _as_float32(matrix: NDArray[np.float64]) -> NDArray[np.float32]:
    """The cast scikit-learn's trees make before comparing with their thresholds, with its refusal."""
    with np.errstate(over="ignore"):
        as_float32 = np.ascontiguousarray(matrix, dtype=np.float32)
    if np.isinf(as_float32).any():
        # scikit-learn refuses these too (after the same float32 cast); NaN it routes like missing values.
        raise OutOfRangeError("The input has a value too large for the model (beyond float32's range).")
    return as_float32


def _compiled_predictor(estimator: Any) -> MatrixPredictor | None:
    try:
        import treelite.gtil
        import treelite.sklearn
    except ImportError:
        return None
    try:
        compiled = treelite.sklearn.import_model(estimator)
    except Exception:  # a version of treelite that cannot read this estimator: the walk serves alone
        logger.warning("treelite could not import %s; serving with the tree walk", type(estimator).__name__)
        return None

    def predict(matrix: NDArray[np.float64]) -> NDArray[np.float64]:
        # One thread: a worker process per CPU already; GTIL's thread pool costs ~2 ms to start per call.
        return np.asarray(treelite.gtil.predict(compiled, _as_float32(matrix), nthread=1)).reshape(-1)

    return predict


def _averaging_predictor(trees: Sequence[Any]) -> MatrixPredictor:
    count = len(trees)

    def predict(matrix: NDArray[np.float64]) -> NDArray[np.float64]:
        as_float32 = _as_float32(matrix)
        total = np.zeros(as_float32.shape[0], dtype=np.float64)
        for tree in trees:
            total += tree.predict(as_float32)[:, 0]
        total /= count
        return total

    return predict


def matches_reference(
    fast: MatrixPredictor, samples: NDArray[np.float64], expected: NDArray[np.float64]
) -> bool:
    """True when the fast path gives bit-identical predictions to `expected` on `samples`, both as one
    batch and, for the first SINGLE_ROW_PROBES rows, one row at a time (a path may take another route
    through its code for a single row, the size most requests have)."""
    if not np.array_equal(fast(samples), expected):
        return False
    singles = range(min(len(samples), SINGLE_ROW_PROBES))
    return all(np.array_equal(fast(samples[i : i + 1]), expected[i : i + 1]) for i in singles)


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
