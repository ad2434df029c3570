"""Request and response models for /predict, generated from the model's signature at startup.

Field names are positional (`f0`, `f1`, ...) with the column name as alias, so any column name works
(spaces, dots, keywords) while /docs shows the real names and types.
"""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from service.served_model import InputColumn, ServedModel

# MLflow DataType name -> Python type. Strict validation: "3.5" is not a number, true is not 1.
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


def field_name(position: int) -> str:
    """The Python attribute that holds the column at `position`."""
    return f"f{position}"


def row_model(model: ServedModel) -> type[BaseModel]:
    """One input row: a field per signature column, unknown columns refused."""
    fields: dict[str, Any] = {
        field_name(position): _row_field(column) for position, column in enumerate(model.columns)
    }
    return create_model(
        "InputRow",
        __config__=ConfigDict(extra="forbid", strict=True, populate_by_name=False),
        **fields,
    )


def _row_field(column: InputColumn) -> tuple[Any, Any]:
    python_type: Any = _PYTHON_TYPES.get(column.type, Any)
    description = f"MLflow type {column.type}"
    if column.required:
        return python_type, Field(alias=column.name, description=description)
    return python_type | None, Field(default=None, alias=column.name, description=description + ", optional")


def request_model(model: ServedModel, max_rows: int) -> type[BaseModel]:
    """`{"rows": [InputRow, ...]}`: at least one row, at most MAX_ROWS (more is a 413)."""
    rows_type: Any = list[row_model(model)]  # type: ignore[misc]
    return create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid"),
        rows=(
            rows_type,
            Field(min_length=1, description=f"Rows to predict, in any order of keys; at most {max_rows}."),
        ),
    )


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
