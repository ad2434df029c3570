"""MLflow's scoring protocol (`/invocations`): JSON in four layouts, or CSV; answers `{"predictions": [...]}`.

Plain numeric requests for a model whose inputs are all numeric columns take a fast path: values are
checked once here and become a float64 matrix in signature order, exactly what pyfunc's schema enforcement
would produce. Anything else (params, nulls, non-numeric schemas) goes through MLflow's own parser and
pyfunc, so its behaviour is MLflow's.
"""

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from mlflow.exceptions import MlflowException
from mlflow.pyfunc.scoring_server import infer_and_parse_data, parse_csv_input, predictions_to_json
from numpy.typing import NDArray

from service.errors import ApiError
from service.served_model import ServedModel

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_FORMAT_HELP = (
    'Send JSON with exactly one of "dataframe_split" ({"columns": [...], "data": [[...]]}), '
    '"dataframe_records" ([{column: value}]), "instances" or "inputs", or CSV with a header row.'
)


class _NeedsPyfuncError(Exception):
    """The request is valid-looking but outside the fast path: let MLflow parse it."""


@dataclass(frozen=True)
class Scored:
    """A finished prediction: the JSON body and how many rows it covered."""

    body: bytes
    rows: int


def score(body: bytes, content_type: str | None, model: ServedModel, max_rows: int) -> Scored:
    """Parse a scoring request, predict, and serialise the answer; raises ApiError for client mistakes."""
    mime = _mime_type(content_type)
    if mime == "application/json":
        payload = _json_object(body)
        try:
            matrix = _numeric_matrix(payload, model)
        except _NeedsPyfuncError:
            return _score_with_pyfunc(lambda schema: _mlflow_json(payload, schema), model, max_rows)
        _check_row_count(matrix.shape[0], max_rows)
        try:
            return _fast_scored(model.predict_matrix(matrix))
        except ValueError as error:
            raise ApiError(400, f"The model could not use this input: {error}") from None
    return _score_with_pyfunc(lambda schema: _mlflow_csv(body, schema, model), model, max_rows)


def _mime_type(content_type: str | None) -> str:
    parts = [part.strip() for part in (content_type or "").split(";")]
    mime = parts[0].lower()
    if mime not in ("application/json", "text/csv"):
        raise ApiError(415, f"Content-Type must be application/json or text/csv, got {content_type!r}.")
    for parameter in parts[1:]:
        key, _, value = parameter.partition("=")
        if key.strip().lower() != "charset" or value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise ApiError(415, f"Only 'charset=utf-8' may follow the media type, got {parameter!r}.")
    return mime


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, f"Malformed JSON: {error}. {_FORMAT_HELP}") from None
    if not isinstance(payload, dict):
        raise ApiError(400, f"Expected a JSON object, got {type(payload).__name__}. {_FORMAT_HELP}")
    present = [key for key in FORMATS if key in payload]
    if len(present) != 1:
        raise ApiError(400, f"Found input fields {present or 'none'}. {_FORMAT_HELP}")
    unknown = sorted(set(payload) - set(FORMATS) - {"params"})
    if unknown:
        raise ApiError(400, f"Unknown top-level fields {unknown}. {_FORMAT_HELP}")
    return payload


def _numeric_matrix(payload: dict[str, Any], model: ServedModel) -> NDArray[np.float64]:
    """The request as float64 rows in signature order, or _NeedsPyfuncError when it is not that simple."""
    if not model.numeric_inputs or "params" in payload:
        raise _NeedsPyfuncError
    if "dataframe_split" in payload:
        return _from_split(payload["dataframe_split"], model)
    data = payload.get("dataframe_records", payload.get("instances", payload.get("inputs")))
    if isinstance(data, list):
        return _from_records(data, model)
    if isinstance(data, dict) and "inputs" in payload:
        return _from_columns(data, model)
    raise _NeedsPyfuncError


def _from_split(split: Any, model: ServedModel) -> NDArray[np.float64]:
    if not isinstance(split, dict) or not isinstance(split.get("data"), list):
        raise ApiError(400, f'"dataframe_split" needs "columns" and "data" lists. {_FORMAT_HELP}')
    columns = split.get("columns")
    if not isinstance(columns, list):
        raise _NeedsPyfuncError
    _check_columns(columns, model)
    order = [columns.index(name) for name in model.column_names]
    rows = split["data"]
    _check_not_empty(len(rows))
    for number, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(columns):
            raise ApiError(400, f"dataframe_split row {number} must be a list of {len(columns)} values.")
    return _checked_matrix([[row[index] for index in order] for row in rows], model)


def _from_records(records: list[Any], model: ServedModel) -> NDArray[np.float64]:
    _check_not_empty(len(records))
    names = model.column_names
    values = []
    for number, record in enumerate(records):
        if not isinstance(record, dict):
            raise _NeedsPyfuncError
        if len(record) != len(names) or any(name not in record for name in names):
            _check_columns(list(record), model, where=f"row {number}")
        values.append([record[name] for name in names])
    return _checked_matrix(values, model)


def _from_columns(columns: dict[str, Any], model: ServedModel) -> NDArray[np.float64]:
    _check_columns(list(columns), model)
    lists = [columns[name] for name in model.column_names]
    if not all(isinstance(values, list) for values in lists) or len({len(values) for values in lists}) != 1:
        raise ApiError(400, '"inputs" as columns needs one list per column, all of the same length.')
    _check_not_empty(len(lists[0]))
    return _checked_matrix([list(row) for row in zip(*lists, strict=True)], model)


def _checked_matrix(rows: list[list[Any]], model: ServedModel) -> NDArray[np.float64]:
    """Float64 matrix after checking every value is a JSON number (not a string, bool or null)."""
    for number, row in enumerate(rows):
        for name, value in zip(model.column_names, row, strict=True):
            kind = type(value)
            if kind is not float and kind is not int:
                if value is None:
                    raise _NeedsPyfuncError
                raise ApiError(400, f"Column {name!r} in row {number} must be a number, got {value!r:.60}.")
    return np.array(rows, dtype=np.float64)


def _check_columns(columns: list[Any], model: ServedModel, where: str = "input") -> None:
    expected = set(model.column_names)
    missing = [name for name in model.column_names if name not in columns]
    extra = [name for name in columns if name not in expected]
    if missing or extra:
        problems = ([f"missing columns {missing}"] if missing else []) + (
            [f"unexpected columns {extra}"] if extra else []
        )
        raise ApiError(
            400, f"The {where} has {' and '.join(problems)}; the model takes {list(model.column_names)}."
        )
    if len(columns) != len(expected):
        raise ApiError(400, f"The {where} repeats a column; the model takes {list(model.column_names)}.")


def _check_not_empty(rows: int) -> None:
    if rows == 0:
        raise ApiError(400, "The input has no rows; send at least one.")


def _check_row_count(rows: int, max_rows: int) -> None:
    _check_not_empty(rows)
    if rows > max_rows:
        raise ApiError(413, f"The input has {rows} rows, more than the limit of {max_rows}; split the batch.")


def _fast_scored(predictions: Any) -> Scored:
    body = orjson.dumps({"predictions": predictions}, option=orjson.OPT_SERIALIZE_NUMPY)
    return Scored(body=body, rows=len(predictions))


def _mlflow_json(payload: dict[str, Any], schema: Any) -> tuple[Any, dict[str, Any] | None]:
    data = {key: value for key, value in payload.items() if key in FORMATS}
    return infer_and_parse_data(data, schema), payload.get("params")


def _mlflow_csv(body: bytes, schema: Any, model: ServedModel) -> tuple[Any, None]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ApiError(400, f"CSV must be UTF-8: {error}.") from None
    if not text.strip():
        raise ApiError(400, "The CSV is empty; send a header row and at least one row.")
    frame = parse_csv_input(io.StringIO(text), schema=schema)
    if model.columns:
        _check_columns(list(frame.columns), model, where="CSV header")
    return frame, None


def _score_with_pyfunc(parse: Any, model: ServedModel, max_rows: int) -> Scored:
    """MLflow's parser and pyfunc predict; MLflow's input errors become 400s with its message."""
    try:
        data, params = parse(model.input_schema)
        _check_row_count(len(data), max_rows)
        if params is not None:
            raw = model.pyfunc.predict(data, params=params)
        elif model.fast_predictor is not None and hasattr(data, "columns"):
            raw = model.predict_matrix(data[list(model.column_names)].to_numpy(dtype=np.float64))
        else:
            raw = model.predict_pyfunc(data)
    except MlflowException as error:
        raise ApiError(400, f"Invalid input for this model: {error.message}") from None
    except (ValueError, TypeError, KeyError) as error:
        raise ApiError(400, f"The model could not use this input: {error}") from None
    output = io.StringIO()
    predictions_to_json(raw, output)
    return Scored(body=output.getvalue().encode(), rows=len(raw))
