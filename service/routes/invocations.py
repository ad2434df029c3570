"""`POST /invocations`: MLflow's scoring protocol, so clients of `mlflow models serve` keep working."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from service.auth import api_key_schemes
from service.data_plane import DataPlane
from service.dependencies import current_plane
from service.scoring_lane import score

router = APIRouter(tags=["model"], dependencies=[Depends(api_key_schemes)])

_ROWS = {"type": "array", "items": {"type": "object"}}
_REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "description": "Exactly one of the four MLflow input fields.",
                "properties": {
                    "dataframe_split": {
                        "type": "object",
                        "properties": {
                            "columns": {"type": "array", "items": {"type": "string"}},
                            "data": {"type": "array", "items": {"type": "array"}},
                        },
                        "required": ["columns", "data"],
                    },
                    "dataframe_records": _ROWS,
                    "instances": _ROWS,
                    "inputs": {"oneOf": [_ROWS, {"type": "object"}]},
                },
            }
        },
        "text/csv": {"schema": {"type": "string", "description": "A header row, then one row per line."}},
        "application/vnd.apache.parquet": {
            "schema": {"type": "string", "format": "binary", "description": "A DataFrame.to_parquet file."}
        },
    },
}


@router.post(
    "/invocations",
    summary="Predict, MLflow scoring protocol",
    openapi_extra={"requestBody": _REQUEST_BODY},
    response_class=Response,
    responses={200: {"content": {"application/json": {"example": {"predictions": [1.5]}}}}},
)
async def invocations(request: Request, plane: Annotated[DataPlane, Depends(current_plane)]) -> Response:
    """Answers `{"predictions": [...]}` exactly as `mlflow models serve` does for the same model.

    Once the model is loaded, service.scoring_lane answers these requests with the same `score`."""
    body = await score(plane, "/invocations", await request.body(), request.headers.get("content-type"))
    return Response(body, media_type="application/json")
