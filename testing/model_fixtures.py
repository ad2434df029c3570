"""Real MLflow models of each flavor the model API serves, as session fixtures (trained and saved once).

- `example_model`: the scikit-learn example (skops), logged and registered in a local store
  (`mlops_stack.example_model.log_example_model`, which `make bench` uses too).
- `lightgbm_model`, `frame_model`, `type_hinted_model`: the other flavors, built by testing/flavor_models.py
  (which `make bench` uses too).
"""

import pytest

from mlops_stack.example_model import LoggedModel, log_example_model
from testing.flavor_models import (
    FlavorModel,
    save_frame_model,
    save_lightgbm_model,
    save_type_hinted_model,
)

__all__ = ["FlavorModel", "LoggedModel"]


@pytest.fixture(scope="session")
def example_model(tmp_path_factory: pytest.TempPathFactory) -> LoggedModel:
    """A small (10-tree) example model in a throwaway local MLflow store, shared by the whole session."""
    return log_example_model(tmp_path_factory.mktemp("mlflow"), n_estimators=10)


@pytest.fixture(scope="session")
def example_model_without_reference(tmp_path_factory: pytest.TempPathFactory) -> LoggedModel:
    """The same small model logged without a reference profile, as tools other than ours would log it."""
    return log_example_model(tmp_path_factory.mktemp("mlflow"), n_estimators=10, with_reference=False)


@pytest.fixture(scope="session")
def lightgbm_model(tmp_path_factory: pytest.TempPathFactory) -> FlavorModel:
    return save_lightgbm_model(tmp_path_factory.mktemp("lightgbm"))


@pytest.fixture(scope="session")
def frame_model(tmp_path_factory: pytest.TempPathFactory) -> FlavorModel:
    return save_frame_model(tmp_path_factory.mktemp("frame"))


@pytest.fixture(scope="session")
def type_hinted_model(tmp_path_factory: pytest.TempPathFactory) -> FlavorModel:
    return save_type_hinted_model(tmp_path_factory.mktemp("type-hinted"))
