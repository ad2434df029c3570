"""The fast tree paths are bit-identical to scikit-learn's predict, are used only once proven, and decline
what they cannot copy."""

import logging

import mlflow.pyfunc
import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.linear_model import LinearRegression
from sklearn.tree import DecisionTreeRegressor

from mlops_stack.example_model import LoggedModel, train
from service import served_model
from service.served_model import ModelIdentity, ServedModel
from service.tree_ensemble import (
    COMPILED_MAX_ROWS,
    MatrixPredictor,
    TreePaths,
    by_batch_size,
    matches_reference,
    probe_rows,
    tree_paths,
)


def test_both_forest_paths_are_bit_identical_for_every_batch_size() -> None:
    forest = train(n_estimators=7, n_rows=400).model
    paths = tree_paths(forest)
    assert paths is not None
    assert paths.compiled is not None  # treelite is installed in the dev environment, as in the image
    rows = probe_rows(forest, 5, n_rows=500)
    expected = forest.predict(rows)
    for batch in (1, COMPILED_MAX_ROWS, COMPILED_MAX_ROWS + 1, 500):
        assert np.array_equal(paths.walk(rows[:batch]), expected[:batch])
        assert np.array_equal(paths.compiled(rows[:batch]), expected[:batch])


def test_extra_trees_get_both_paths_too() -> None:
    features, target = np.random.default_rng(1).uniform(size=(300, 4)), np.arange(300.0)
    trees = ExtraTreesRegressor(n_estimators=5, random_state=0).fit(features, target)
    paths = tree_paths(trees)
    assert paths is not None
    assert paths.compiled is not None
    rows = probe_rows(trees, 4)
    assert np.array_equal(paths.compiled(rows), trees.predict(rows))


def test_a_single_tree_gets_the_walk_alone() -> None:
    features = np.random.default_rng(2).uniform(size=(200, 3))
    tree = DecisionTreeRegressor(random_state=0).fit(features, features.sum(axis=1))
    paths = tree_paths(tree)
    assert paths is not None
    assert paths.compiled is None
    rows = probe_rows(tree, 3)
    assert np.array_equal(paths.walk(rows), tree.predict(rows))


def test_small_batches_take_the_compiled_path_and_larger_ones_the_walk() -> None:
    def constant(value: float) -> MatrixPredictor:
        return lambda matrix: np.full(len(matrix), value)

    predict = by_batch_size(TreePaths(walk=constant(1.0), compiled=constant(2.0)))
    assert predict(np.zeros((COMPILED_MAX_ROWS, 3))).tolist() == [2.0] * COMPILED_MAX_ROWS
    assert predict(np.zeros((COMPILED_MAX_ROWS + 1, 3))).tolist() == [1.0] * (COMPILED_MAX_ROWS + 1)
    assert by_batch_size(TreePaths(walk=constant(1.0), compiled=None))(np.zeros((1, 3))).tolist() == [1.0]


def test_a_path_wrong_only_on_single_rows_is_not_proven() -> None:
    samples = np.arange(12.0).reshape(4, 3)
    expected = samples.sum(axis=1)

    def right_in_batches_only(matrix: NDArray[np.float64]) -> NDArray[np.float64]:
        total = matrix.sum(axis=1)
        return total + 1.0 if len(matrix) == 1 else total

    assert matches_reference(lambda matrix: matrix.sum(axis=1), samples, expected)
    assert not matches_reference(right_in_batches_only, samples, expected)


def test_a_compiled_path_that_disagrees_with_pyfunc_is_dropped_and_the_walk_serves(
    example_model: LoggedModel, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_paths = served_model.tree_paths

    def off_by_one_ulp(estimator: object) -> TreePaths | None:
        paths = real_paths(estimator)
        assert paths is not None
        walk = paths.walk
        return TreePaths(walk=walk, compiled=lambda matrix: np.nextafter(walk(matrix), np.inf))

    monkeypatch.setattr(served_model, "tree_paths", off_by_one_ulp)
    pyfunc = mlflow.pyfunc.load_model(example_model.local_path)
    with caplog.at_level(logging.WARNING):
        model = ServedModel(pyfunc, ModelIdentity(example_model.local_path, None, None, None), 0.0)
    assert "compiled trees disagree with pyfunc" in caplog.text
    rows = example_model.sample.head(1)
    assert model.fast_predictor is not None
    assert np.array_equal(model.predict_matrix(rows.to_numpy()), pyfunc.predict(rows))


def test_other_estimators_get_no_fast_path() -> None:
    linear = LinearRegression().fit(np.eye(3), [1.0, 2.0, 3.0])
    assert tree_paths(linear) is None
