"""The fast tree path is bit-identical to scikit-learn's predict, and declines what it cannot copy."""

import numpy as np
from sklearn.linear_model import LinearRegression

from mlops_stack.example_model import train
from service.tree_ensemble import probe_rows, tree_ensemble_predictor


def test_forest_fast_path_is_bit_identical() -> None:
    forest = train(n_estimators=7, n_rows=400).model
    fast = tree_ensemble_predictor(forest)
    assert fast is not None
    rows = probe_rows(forest, 5, n_rows=500)
    assert np.array_equal(fast(rows), forest.predict(rows))


def test_other_estimators_get_no_fast_path() -> None:
    linear = LinearRegression().fit(np.eye(3), [1.0, 2.0, 3.0])
    assert tree_ensemble_predictor(linear) is None
