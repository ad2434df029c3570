"""One data plane for both prediction routes, as MLServer has one `DataPlane` behind its REST and gRPC
front ends: the routes only read the body; decoding, the rules, the choice of path, prediction and the
answer's JSON happen here, the same way for `/invocations` and `/predict`.

What runs on the event loop is only cheap and bounded: a JSON body of at most INLINE_BODY_BYTES whose
rows fit the numeric plane and at most INLINE_MAX_ROWS of them, predicted by the verified tree walk
(well under a millisecond, cheaper than the hop to a thread). Everything else (bigger bodies, CSV, Parquet,
MLflow's parser, pyfunc) runs in a worker thread, so one costly request cannot stall the health checks
or the other requests of its process. A thread cannot be interrupted: when the request times out its
answer is dropped, and MAX_BODY_BYTES / MAX_ROWS bound how long it keeps running.
"""

import csv
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import numpy as np
import orjson
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.pyfunc.scoring_server import predictions_to_json
from numpy.typing import NDArray

from service.errors import ApiError
from service.input_rules import (
    BAD_REQUEST,
    INVALID_PARAMETER_VALUE,
    InputError,
    check_row_count,
    decode_json,
)
from service.scoring_protocol import (
    CSV,
    JSON,
    PARQUET,
    check_mlflow_columns,
    invocation_payload,
    media_type,
    mlflow_csv_input,
    mlflow_json_input,
    mlflow_parquet_input,
    numeric_matrix,
    typed_inputs,
    typed_payload,
)
from service.served_model import ServedModel
from service.stuck_calls import CallWatch
from service.tree_ensemble import OutOfRangeError

logger = logging.getLogger(__name__)

INLINE_BODY_BYTES = 8 * 1024
INLINE_MAX_ROWS = 64
THREADS_PER_WORKER = 2
# What MLflow's parser, pandas or a model raise for input they cannot use. Their text stays in the log:
# it can name internals (types, paths) and says nothing a client can act on that our message does not.
_INPUT_FAILURES = (MlflowException, ValueError, TypeError, KeyError, IndexError, RecursionError, csv.Error)
_UNUSABLE = (
    "The model could not use this input: check the columns and values against the model's signature "
    "(GET /docs shows it). The details are in the server's log."
)


@dataclass(frozen=True)
class Prediction:
    """A finished prediction: the JSON body of the answer and how many rows it covered."""

    body: bytes
    rows: int


Envelope = Callable[[Any], dict[str, Any]]


class DataPlane:
    """Decode, check, predict and serialise for one loaded model."""

    def __init__(self, model: ServedModel, max_rows: int, calls: CallWatch | None = None) -> None:
        self.model = model
        self.max_rows = max_rows
        # What service.stuck_calls watches: every call that runs in a scoring thread.
        self.calls = calls or CallWatch()
        # Parsing and predicting are CPU-bound and hold the GIL most of the time: more threads at once
        # add no throughput to a worker, and every one of them delays the event loop's next turn (health
        # checks included). Requests beyond these wait on the loop, under their request timeout.
        self._threads = anyio.CapacityLimiter(THREADS_PER_WORKER)

    async def invocations(self, body: bytes, content_type: str | None) -> Prediction:
        """MLflow's scoring protocol; a broken rule is a 400, as `mlflow models serve` answers."""
        mime = media_type(content_type, accepted=(JSON, CSV, PARQUET))
        try:
            if mime == JSON:
                return await self._json(body, invocation_payload)
            if mime == PARQUET:
                return await self._in_thread(self._score_parquet, body)
            return await self._in_thread(self._score_csv, body)
        except InputError as error:
            raise ApiError(400, error.message, error_code=error.error_code) from None

    async def predict(self, body: bytes, content_type: str | None) -> Prediction:
        """Typed rows (`{"rows": [...]}`); a broken rule is a 422, as the route's OpenAPI says."""
        media_type(content_type, accepted=(JSON,))
        envelope = typed_inputs if self.model.takes_inputs_as_sent else typed_payload
        try:
            return await self._json(body, envelope)
        except InputError as error:
            raise ApiError(422, error.message) from None

    async def _json(self, body: bytes, envelope: Envelope) -> Prediction:
        if self.model.fast_predictor is None or len(body) > INLINE_BODY_BYTES:
            return await self._in_thread(self._score_json, body, envelope)
        payload = envelope(decode_json(body))
        matrix = numeric_matrix(payload, self.model.column_names)
        if matrix is None or "params" in payload or len(matrix) > INLINE_MAX_ROWS:
            return await self._in_thread(self._score_payload, payload, matrix)
        return self._score_matrix(matrix, None)

    async def _in_thread(self, function: Callable[..., Prediction], *args: Any) -> Prediction:
        """Run off the event loop; if the request times out meanwhile, stop waiting (the thread finishes
        on its own and its result is dropped) so the timeout's 504 is not held back by the work."""
        return await anyio.to_thread.run_sync(
            self._watched, function, *args, abandon_on_cancel=True, limiter=self._threads
        )

    def _watched(self, function: Callable[..., Prediction], *args: Any) -> Prediction:
        with self.calls.running():
            return function(*args)

    def _score_json(self, body: bytes, envelope: Envelope) -> Prediction:
        payload = envelope(decode_json(body))
        matrix = numeric_matrix(payload, self.model.column_names) if self.model.numeric_inputs else None
        return self._score_payload(payload, matrix)

    def _score_payload(self, payload: dict[str, Any], matrix: NDArray[np.float64] | None) -> Prediction:
        if matrix is not None:
            return self._score_matrix(matrix, payload.get("params"))
        check_mlflow_columns(payload, self.model.column_names)
        return self._score_with_mlflow(
            lambda schema: mlflow_json_input(payload, schema, self.model.takes_inputs_as_sent)
        )

    def _score_csv(self, body: bytes) -> Prediction:
        return self._score_with_mlflow(lambda schema: mlflow_csv_input(body, schema, self.model.column_names))

    def _score_parquet(self, body: bytes) -> Prediction:
        return self._score_with_mlflow(
            lambda _: mlflow_parquet_input(body, self.model.column_names, self.max_rows)
        )

    def _score_matrix(self, matrix: NDArray[np.float64], params: dict[str, Any] | None) -> Prediction:
        """The numeric plane: rows already checked by the shared rules."""
        check_row_count(len(matrix), self.max_rows)
        try:
            if params is not None:
                frame = pd.DataFrame(matrix, columns=list(self.model.column_names))
                predictions = self.model.pyfunc.predict(frame, params=params)
            else:
                predictions = self.model.predict_matrix(matrix)
        except OutOfRangeError as error:
            raise InputError(str(error)) from None
        except _INPUT_FAILURES as error:
            _log_refusal("the model refused a request's rows", error)
            raise InputError(_UNUSABLE, _mlflows_code(error)) from None
        except Exception as error:
            raise _model_failure(error) from None
        return _answer(predictions, len(matrix))

    def _score_with_mlflow(self, parse: Callable[[Any], tuple[Any, dict[str, Any] | None]]) -> Prediction:
        """MLflow's parser and pyfunc predict, for everything outside the numeric plane."""
        model = self.model
        try:
            data, params = parse(model.input_schema)
            if model.takes_inputs_as_sent:
                # Whatever its type hints take, as sent: an empty list is a valid input there (MLflow
                # answers `{"predictions": []}`), and a value that is not a list is one input.
                check_row_count(len(data) if isinstance(data, list) else 1, self.max_rows, allow_empty=True)
            else:
                check_row_count(len(data), self.max_rows)
            if params is not None:
                predictions = model.pyfunc.predict(data, params=params)
            elif model.fast_predictor is not None and _float64_columns(data, model.column_names):
                predictions = model.predict_matrix(data[list(model.column_names)].to_numpy())
            else:
                predictions = model.predict_pyfunc(data)
        except OutOfRangeError as error:
            raise InputError(str(error)) from None
        except _INPUT_FAILURES as error:
            _log_refusal("MLflow's parser or the model refused a request", error)
            raise InputError(_UNUSABLE, _mlflows_code(error)) from None
        except (ApiError, InputError):
            raise
        except Exception as error:
            raise _model_failure(error) from None
        return _answer(predictions, len(data))


def _float64_columns(data: Any, names: tuple[str, ...]) -> bool:
    """True when `data` is a DataFrame of exactly the signature's columns, all float64: what pyfunc's
    schema enforcement passes through unchanged, so the fast path sees what pyfunc would. Anything else
    (a Parquet file's int or bool or text columns, extra columns) goes to pyfunc, which converts or
    refuses it as MLflow does."""
    if not isinstance(data, pd.DataFrame) or len(data.columns) != len(names):
        return False
    if set(data.columns) != set(names):
        return False
    return all(data[name].dtype == np.float64 for name in names)


def _mlflows_code(error: Exception) -> str:
    """The error_code `mlflow models serve` answers for this failure: an MlflowException's own when it is
    a client's mistake (schema enforcement says INVALID_PARAMETER_VALUE), BAD_REQUEST for anything else
    (its server wraps every other exception of predict in a BAD_REQUEST)."""
    code = getattr(error, "error_code", None) if isinstance(error, MlflowException) else None
    return INVALID_PARAMETER_VALUE if code == INVALID_PARAMETER_VALUE else BAD_REQUEST


def _model_failure(error: Exception) -> InputError:
    """Any other exception of a model's predict: `mlflow models serve` answers it 400 BAD_REQUEST ("an
    unexpected error while evaluating the model"), and so do we. It may be the model's bug rather than the
    request's, so the log gets its traceback, once per exception type and process (a client repeating
    the request must not write one each time), then one line each time."""
    kind = type(error).__qualname__
    if kind not in _TRACED:
        _TRACED.add(kind)
        logger.warning("the model raised %s on a request (traceback logged once)", kind, exc_info=error)
    _log_refusal("the model raised on a request", error)
    return InputError(_UNUSABLE, BAD_REQUEST)


_TRACED: set[str] = set()


def _log_refusal(what: str, error: Exception) -> None:
    """One line per refused request, cut short and with its newlines escaped (the text may quote the
    request): what the client was not told, without a flood of bad requests writing a traceback each."""
    logger.info("%s: %s: %.500r", what, type(error).__name__, str(error))


def _answer(predictions: Any, rows: int) -> Prediction:
    """`{"predictions": [...]}`: orjson for a plain vector, MLflow's own serialiser for anything else."""
    if isinstance(predictions, np.ndarray) and predictions.ndim == 1 and predictions.dtype.kind in "fiub":
        return Prediction(orjson.dumps({"predictions": predictions}, option=orjson.OPT_SERIALIZE_NUMPY), rows)
    output = io.StringIO()
    predictions_to_json(predictions, output)
    return Prediction(output.getvalue().encode(), rows)
