"""The example model logged with MLflow to a local store, as a session fixture for tests that need a real
MLflow model (`mlops_stack.example_model.log_example_model`, which `make bench` uses too)."""

import pytest

from mlops_stack.example_model import LoggedModel, log_example_model


@pytest.fixture(scope="session")
def example_model(tmp_path_factory: pytest.TempPathFactory) -> LoggedModel:
    """A small (10-tree) example model in a throwaway local MLflow store, shared by the whole session."""
    return log_example_model(tmp_path_factory.mktemp("mlflow"), n_estimators=10)


@pytest.fixture(scope="session")
def example_model_without_reference(tmp_path_factory: pytest.TempPathFactory) -> LoggedModel:
    """The same small model logged without a reference profile, as tools other than ours would log it."""
    return log_example_model(tmp_path_factory.mktemp("mlflow"), n_estimators=10, with_reference=False)
