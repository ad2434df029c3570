"""The OpenAPI schemas of /predict, generated from the model's signature once it is loaded.

They document the rules the data plane applies (service.input_rules); they do not validate anything.
Field names are positional (`f0`, `f1`, ...) with the column name as alias, so any column name works
(spaces, dots, keywords) while /docs shows the real names and types. Every value may be null: a missing
value, which the model receives as NaN, as MLflow's own parser gives it.
"""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from service.served_model import InputColumn, ServedModel

# MLflow DataType name -> Python type (strict: "3.5" is not a number, true is not 1).
_PYTHON_TYPES: dict[str, type] = {
    "double": float,
    "float": float,
    "long": int,
    "integer": int,
    "boolean": bool,
    "string": str,
    "binary": bytes,
    "datetime": datetime,
}


def _field_name(position: int) -> str:
    """The Python attribute that holds the column at `position`."""
    return f"f{position}"


def row_model(model: ServedModel) -> type[BaseModel]:
    """One input row: a field per signature column, unknown columns refused."""
    fields: dict[str, Any] = {
        _field_name(position): _row_field(column) for position, column in enumerate(model.columns)
    }
    return create_model(
        "InputRow",
        __config__=ConfigDict(extra="forbid", strict=True, populate_by_name=False),
        **fields,
    )


def _row_field(column: InputColumn) -> tuple[Any, Any]:
    python_type: Any = _PYTHON_TYPES.get(column.type, Any)
    description = f"MLflow type {column.type}; null for a missing value"
    if column.required:
        return python_type | None, Field(alias=column.name, description=description)
    return python_type | None, Field(default=None, alias=column.name, description=description + ", optional")


def request_schema(model: ServedModel, max_rows: int) -> dict[str, Any]:
    """`{"rows": [InputRow, ...]}`: at least one row, at most MAX_ROWS (more is a 413)."""
    if model.takes_inputs_as_sent:
        return _inputs_schema(model, max_rows)
    return _rows_request(
        {
            "type": "array",
            "items": row_model(model).model_json_schema(by_alias=True),
            "minItems": 1,
            "description": f"Rows to predict, keys in any order; at most {max_rows} (more is a 413).",
        }
    )


def _inputs_schema(model: ServedModel, max_rows: int) -> dict[str, Any]:
    """`{"rows": [input, ...]}` for a model whose signature comes from type hints: the list its predict
    takes, an input per row (typed when the hint is a list of a plain type, such as `list[str]`)."""
    inputs = model.input_schema.inputs if model.input_schema is not None else []
    python_type = _PYTHON_TYPES.get(str(getattr(inputs[0].type, "name", ""))) if len(inputs) == 1 else None
    item = TypeAdapter(python_type).json_schema() if python_type not in (None, bytes, datetime) else {}
    return _rows_request(
        {
            "type": "array",
            "items": item,
            "description": f"The inputs, each as the model's type hints take it; at most {max_rows}.",
        }
    )


def _rows_request(rows: dict[str, Any]) -> dict[str, Any]:
    """The /predict body: an object whose one field is `rows`."""
    return {
        "title": "PredictRequest",
        "type": "object",
        "properties": {"rows": rows},
        "required": ["rows"],
        "additionalProperties": False,
    }


def response_model(model: ServedModel) -> type[BaseModel]:
    """`{"predictions": [...]}`, typed from the output signature when it has a single column."""
    outputs = model.output_schema.inputs if model.output_schema is not None else []
    item: Any = _output_type(outputs[0].type) if len(outputs) == 1 else Any
    return create_model(
        "PredictResponse",
        predictions=(list[item], Field(description="One prediction per row, in the order sent.")),
    )


def _output_type(mlflow_type: Any) -> Any:
    """Python type of a column spec (DataType) or tensor spec (numpy dtype) output; Any if unknown."""
    kind = getattr(mlflow_type, "kind", None)  # numpy dtypes: tensor-based signatures
    if kind is not None:
        return {"f": float, "i": int, "u": int, "b": bool}.get(kind, Any)
    return _PYTHON_TYPES.get(str(getattr(mlflow_type, "name", mlflow_type)), Any)
