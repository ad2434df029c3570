"""What a prediction request says, decoded: MLflow's scoring protocol for `/invocations`, rows for `/predict`.

`/invocations` takes JSON with exactly one of four layouts (`dataframe_split`, `dataframe_records`,
`instances`, `inputs`, plus optional `params`), CSV with a header row, or a Parquet file (MLflow's
`application/vnd.apache.parquet`); `/predict` takes `{"rows": [...]}`,
which is `dataframe_records` under a name its OpenAPI schema can describe. Both become one `payload`
dict that `numeric_matrix` turns into float64 rows when the model's inputs are all `double` columns (the
numeric plane, see `service.input_rules`); anything else is parsed by MLflow's own scoring server code,
after its width is bounded.
"""

import csv
import io
import re
from typing import Any

import numpy as np
from mlflow.pyfunc.scoring_server import infer_and_parse_data, parse_csv_input, parse_parquet_input
from numpy.typing import NDArray

from service.errors import ApiError, echo, echo_names
from service.input_rules import (
    INVALID_PARAMETER_VALUE,
    InputError,
    check_columns,
    check_known_columns,
    check_row_count,
    check_width,
    matrix_from_columns,
    matrix_from_records,
    matrix_from_split,
)

JSON = "application/json"
CSV = "text/csv"
# MLflow's scoring server takes Parquet under this name only (its CONTENT_TYPE_PARQUET); the older
# `application/x-parquet` is a 415 there and here.
PARQUET = "application/vnd.apache.parquet"
# What a Parquet body may decode to (its row groups' uncompressed size, read from its footer before any
# data page is): a compressed file of 1 MiB can hold gigabytes of repeated values.
MAX_PARQUET_DECODED_BYTES = 64 * 1024 * 1024
# The footer's sizes are the writer's word; what bounds a lying file is its codec. Snappy (pandas'
# default) expands at most about 22 times (its longest copy, 64 bytes, costs 3), so a MAX_BODY_BYTES body
# stays tens of MiB; gzip, zstd, brotli or LZ4 can turn 1 MiB into gigabytes, and are refused unread.
PARQUET_CODECS = frozenset({"UNCOMPRESSED", "SNAPPY"})
_LINE_END = re.compile(r"\r\n|\r|\n")
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
FORMAT_HELP = (
    'Send JSON with exactly one of "dataframe_split" ({"columns": [...], "data": [[...]]}), '
    '"dataframe_records" ([{column: value}]), "instances" or "inputs", CSV with a header row, or Parquet.'
)


def media_type(content_type: str | None, accepted: tuple[str, ...] = (JSON, CSV)) -> str:
    """One of `accepted` (optionally with `; charset=utf-8`); anything else is 415."""
    parts = [part.strip() for part in (content_type or "").split(";")]
    mime = parts[0].lower()
    if mime not in accepted:
        raise ApiError(415, f"Content-Type must be {' or '.join(accepted)}, got {echo(content_type)}.")
    for parameter in parts[1:]:
        key, _, value = parameter.partition("=")
        if key.strip().lower() != "charset" or value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise ApiError(415, f"Only 'charset=utf-8' may follow the media type, got {echo(parameter)}.")
    return mime


def invocation_payload(value: Any) -> dict[str, Any]:
    """The decoded `/invocations` JSON, checked to hold exactly one input layout (and maybe `params`)."""
    if not isinstance(value, dict):
        raise InputError(f"Expected a JSON object, got {type(value).__name__}. {FORMAT_HELP}")
    present = [key for key in FORMATS if key in value]
    if len(present) != 1:
        raise InputError(f"Found input fields {present or 'none'}. {FORMAT_HELP}")
    unknown = [key for key in value if key not in FORMATS and key != "params"]
    if unknown:
        raise InputError(f"Unknown top-level fields {echo_names(sorted(unknown))}. {FORMAT_HELP}")
    if "params" in value and not isinstance(value["params"], dict):
        raise InputError('"params" must be an object of parameter names and values.')
    return value


def typed_payload(value: Any) -> dict[str, Any]:
    """The decoded `/predict` JSON, `{"rows": [{column: value}, ...]}`, as the equivalent MLflow payload."""
    rows = _rows(value, "{column: value}")
    if not all(isinstance(row, dict) for row in rows):
        raise InputError('"rows" must be a list of objects, one {column: value} per row.')
    return {"dataframe_records": rows}


def typed_inputs(value: Any) -> dict[str, Any]:
    """The decoded `/predict` JSON of a model whose signature comes from type hints, `{"rows": [...]}`, as
    `{"inputs": [...]}`: each row one input as the hints take it (a string for `list[str]`)."""
    return {"inputs": _rows(value, "input")}


def _rows(value: Any, row: str) -> list[Any]:
    if not isinstance(value, dict) or list(value) != ["rows"]:
        keys = echo_names(sorted(value)) if isinstance(value, dict) else type(value).__name__
        raise InputError(f'Expected {{"rows": [{row}, ...]}} and nothing else, got {keys}.')
    if not isinstance(value["rows"], list):
        raise InputError(f'"rows" must be a list, one {row} per row.')
    return value["rows"]


def numeric_matrix(payload: dict[str, Any], names: tuple[str, ...]) -> NDArray[np.float64] | None:
    """The request as float64 rows in `names` order (all inputs `double`); None for layouts that are not
    rows of named values (tensors, scalars), which only MLflow's parser understands."""
    if "dataframe_split" in payload:
        return matrix_from_split(payload["dataframe_split"], names)
    data = payload.get("dataframe_records", payload.get("instances", payload.get("inputs")))
    if isinstance(data, list):
        return matrix_from_records(data, names)
    if isinstance(data, dict) and "inputs" in payload:
        return matrix_from_columns(data, names)
    return None


def check_mlflow_columns(payload: dict[str, Any], names: tuple[str, ...]) -> None:
    """Bound the columns of a JSON request before MLflow's parser builds a DataFrame from it, and refuse
    columns the signature does not name (MLflow's schema enforcement would drop them unseen), as the
    numeric plane, CSV and Parquet do. Missing columns are left to MLflow: it knows which are optional."""
    split = payload.get("dataframe_split")
    if isinstance(split, dict) and isinstance(split.get("columns"), list):
        check_width(len(split["columns"]), names, "input")
        check_known_columns(split["columns"], names)
    data = payload.get("dataframe_records", payload.get("instances", payload.get("inputs")))
    rows = data if isinstance(data, list) else [data]
    for row in rows:
        if isinstance(row, dict | list):
            check_width(len(row), names, "input")
        if isinstance(row, dict):
            check_known_columns(list(row), names)


def mlflow_json_input(
    payload: dict[str, Any], schema: Any, inputs_as_sent: bool = False
) -> tuple[Any, dict[str, Any] | None]:
    """MLflow's own parse of the JSON layouts, and the `params` to pass to predict.

    With `inputs_as_sent` (a model whose signature comes from type hints) only `inputs` is accepted, and
    passed to predict as decoded, which then checks it against the hints: what MLflow's scoring server
    does (mlflow/pyfunc/scoring_server `_parse_json_data`).
    """
    data = {key: value for key, value in payload.items() if key in FORMATS}
    if inputs_as_sent:
        if "inputs" not in data:
            raise InputError(
                'This model takes {"inputs": ...} (its signature comes from type hints), '
                f"got {echo_names(sorted(data))}.",
                INVALID_PARAMETER_VALUE,
            )
        return data["inputs"], payload.get("params")
    return infer_and_parse_data(data, schema), payload.get("params")


def mlflow_csv_input(body: bytes, schema: Any, names: tuple[str, ...]) -> tuple[Any, None]:
    """MLflow's own parse of a CSV body, after its header is checked (and its width bounded) unparsed."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("CSV must be UTF-8 text.") from None
    if not text.strip():
        raise InputError("The CSV is empty; send a header row and at least one row.")
    header = csv_header(text, names)
    if names:
        check_columns(header, names, where="CSV header")
    return parse_csv_input(io.StringIO(text), schema=schema), None


def csv_header(text: str, names: tuple[str, ...]) -> list[str]:
    """The header row's fields. Its width is bounded by counting separators first, so a header of a
    hundred thousand fields is refused without being split (a quoted comma only overcounts)."""
    first_line = _LINE_END.split(text, maxsplit=1)[0]
    check_width(first_line.count(",") + 1, names, "CSV header")
    try:
        return next(csv.reader([first_line]), [])
    except csv.Error:
        raise InputError("The CSV header row is not valid CSV.") from None


def mlflow_parquet_input(body: bytes, names: tuple[str, ...], max_rows: int) -> tuple[Any, None]:
    """MLflow's own parse of a Parquet body, after its footer is checked: its columns (as for a CSV
    header), its row count and its decoded size, so nothing large is decoded to be refused afterwards."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        # MLflow's server answers 400 "Failed to parse input" here, as if the file were bad; it is not.
        raise ApiError(
            415, "This server cannot read Parquet (no pyarrow installed with the model); send JSON or CSV."
        ) from None
    try:
        metadata = pyarrow.parquet.ParquetFile(io.BytesIO(body)).metadata
        schema = metadata.schema.to_arrow_schema()
    except (pyarrow.ArrowException, OSError, ValueError):
        raise InputError("The body is not a Parquet file (write one with DataFrame.to_parquet).") from None
    check_width(metadata.num_columns, names, "Parquet file")
    chunks = (
        metadata.row_group(g).column(c)
        for g in range(metadata.num_row_groups)
        for c in range(metadata.num_columns)
    )
    codecs = {chunk.compression for chunk in chunks} - PARQUET_CODECS
    if codecs:
        raise ApiError(
            415,
            f"Parquet compressed with {echo_names(sorted(codecs))} is not read here (it can expand a small "
            "body to gigabytes); write it with compression='snappy' (pandas' default) or None.",
        )
    if names:
        # pandas may store the index as a column; it is not an input.
        stored_index = (schema.pandas_metadata or {}).get("index_columns", [])
        columns = [name for name in schema.names if name not in stored_index]
        check_columns(columns, names, where="Parquet file")
    check_row_count(metadata.num_rows, max_rows)
    declared = sum(metadata.row_group(group).total_byte_size for group in range(metadata.num_row_groups))
    if declared > MAX_PARQUET_DECODED_BYTES:
        _too_large(declared)
    expanded = _expanded_bytes(body, schema)
    if expanded > MAX_PARQUET_DECODED_BYTES:
        _too_large(expanded)
    return parse_parquet_input(io.BytesIO(body)), None


def _expanded_bytes(body: bytes, schema: Any) -> int:
    """What the file's columns take once every value is materialised, as pandas will: read with its text
    columns kept dictionary-encoded (a value stored once, however many rows repeat it), so a 20 MB string
    that a thousand rows share is counted a thousand times without being copied once. The read itself is
    bounded by the body and its codec (PARQUET_CODECS). Text inside nested columns is counted as read."""
    import pyarrow
    import pyarrow.compute
    import pyarrow.parquet

    textual = [
        field.name
        for field in schema
        if pyarrow.types.is_string(field.type)
        or pyarrow.types.is_large_string(field.type)
        or pyarrow.types.is_binary(field.type)
        or pyarrow.types.is_large_binary(field.type)
    ]
    try:
        table = pyarrow.parquet.read_table(io.BytesIO(body), read_dictionary=textual, use_threads=False)
    except (pyarrow.ArrowException, OSError, ValueError):
        raise InputError(
            "The Parquet file's data does not read (write it with DataFrame.to_parquet)."
        ) from None
    total = 0
    for column in table.columns:
        for chunk in column.chunks:
            if pyarrow.types.is_dictionary(chunk.type):
                lengths = pyarrow.compute.binary_length(chunk.dictionary).take(chunk.indices)
                total += int(pyarrow.compute.sum(lengths).as_py() or 0) + 8 * len(chunk)
            else:
                total += chunk.nbytes
    return total


def _too_large(size: int) -> None:
    raise InputError(
        f"The Parquet file decodes to {size} bytes, more than {MAX_PARQUET_DECODED_BYTES}; split it."
    )
