"""The loaded model as the routes see it: its inputs, its identity, and the fastest exact way to predict."""

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PyFuncModel
from numpy.typing import NDArray

from service.tree_ensemble import (
    MatrixPredictor,
    TreePaths,
    by_batch_size,
    matches_reference,
    probe_rows,
    tree_paths,
)

logger = logging.getLogger(__name__)

# The column type a float64 matrix carries exactly as MLflow's parser would. Not long/integer/float: MLflow's
# schema enforcement refuses a float64 column for those ("Can not safely convert float64 to int64"), so
# their requests go through MLflow's own parser.
NUMERIC_TYPES = frozenset({"double"})


@dataclass(frozen=True)
class InputColumn:
    """One named input of the model's signature."""

    name: str
    type: str
    required: bool


@dataclass(frozen=True)
class ModelIdentity:
    """Which model this is, for /version and the logs."""

    uri: str
    name: str | None
    version: str | None
    run_id: str | None


class ServedModel:
    """A pyfunc model plus what serving needs to know about it, computed once at load."""

    def __init__(self, pyfunc: PyFuncModel, identity: ModelIdentity, load_seconds: float) -> None:
        self.pyfunc = pyfunc
        self.identity = identity
        self.load_seconds = load_seconds
        self.input_schema = pyfunc.metadata.get_input_schema()
        self.output_schema = pyfunc.metadata.get_output_schema()
        self.columns = _named_columns(self.input_schema)
        self.column_names = tuple(column.name for column in self.columns)
        self.fast_predictor = self._verified_fast_predictor()
        # A PythonModel whose predict is type-hinted (MLflow's recommended style) takes `inputs` as sent:
        # MLflow's scoring server skips its DataFrame parsing for it, and so do we (scoring_protocol).
        is_from_type_hints = getattr(pyfunc.metadata, "_is_signature_from_type_hint", None)
        self.takes_inputs_as_sent = bool(is_from_type_hints and is_from_type_hints())

    def predict_pyfunc(self, data: Any) -> Any:
        """MLflow's own predict (schema enforcement included): the reference for every other path."""
        return self.pyfunc.predict(data)

    def predict_matrix(self, matrix: NDArray[np.float64]) -> NDArray[np.float64] | Any:
        """Predict rows given as float64 values in `column_names` order (all columns numeric)."""
        if self.fast_predictor is not None:
            return self.fast_predictor(matrix)
        return self.predict_pyfunc(pd.DataFrame(matrix, columns=list(self.column_names)))

    @property
    def numeric_inputs(self) -> bool:
        """True when every input is a named `double` column, so a float64 matrix can carry a request."""
        return bool(self.columns) and all(column.type in NUMERIC_TYPES for column in self.columns)

    def _verified_fast_predictor(self) -> MatrixPredictor | None:
        """The tree fast paths, only for `double` inputs and only those that match pyfunc exactly: the walk
        must, or there is no fast path; the compiled ensemble joins it for small batches if it does too.
        Each is proven on the whole probe and on single rows of it (the batch size the compiled one gets)."""
        if not self.numeric_inputs:
            return None
        try:
            estimator = self.pyfunc.get_raw_model()
        except NotImplementedError:
            return None
        paths = tree_paths(estimator)
        if paths is None:
            return None
        samples = probe_rows(estimator, len(self.columns))
        expected = self._pyfunc_on_matrix(samples)
        if not matches_reference(paths.walk, samples, expected):
            logger.warning("fast tree path disagrees with pyfunc on probe rows; serving through pyfunc")
            return None
        compiled = paths.compiled
        if compiled is not None and not matches_reference(compiled, samples, expected):
            logger.warning("compiled trees disagree with pyfunc on probe rows; serving with the walk alone")
            compiled = None
        logger.info(
            "serving %s through the exact fast tree path%s",
            type(estimator).__name__,
            " (compiled ensemble for small batches)" if compiled is not None else "",
        )
        return by_batch_size(TreePaths(walk=paths.walk, compiled=compiled))

    def _pyfunc_on_matrix(self, matrix: NDArray[np.float64]) -> NDArray[np.float64]:
        frame = pd.DataFrame(matrix, columns=list(self.column_names))
        return np.asarray(self.predict_pyfunc(frame), dtype=np.float64)


def _named_columns(schema: Any) -> tuple[InputColumn, ...]:
    """The signature's named columns; empty when there is no signature or it is tensor-based."""
    if schema is None or not schema.has_input_names() or schema.is_tensor_spec():
        return ()
    return tuple(
        InputColumn(name=spec.name, type=str(getattr(spec.type, "name", spec.type)), required=spec.required)
        for spec in schema.inputs
    )
