"""`POST /invocations`: MLflow's scoring protocol, so clients of `mlflow models serve` keep working."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from service.auth import require_api_key
from service.dependencies import current_model
from service.metrics import PREDICTIONS
from service.scoring_protocol import score
from service.served_model import ServedModel

router = APIRouter(tags=["model"], dependencies=[Depends(require_api_key)])

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
    },
}


@router.post(
    "/invocations",
    summary="Predict, MLflow scoring protocol",
    openapi_extra={"requestBody": _REQUEST_BODY},
    response_class=Response,
    responses={200: {"content": {"application/json": {"example": {"predictions": [1.5]}}}}},
)
async def invocations(request: Request, model: Annotated[ServedModel, Depends(current_model)]) -> Response:
    """Answers `{"predictions": [...]}` exactly as `mlflow models serve` does for the same model."""
    body = await request.body()
    settings = request.app.state.settings
    content_type = request.headers.get("content-type")
    if model.fast_predictor is not None:
        # Exact fast path: ~0.3 ms per row batch, cheaper inline than a thread hop (MAX_ROWS bounds it).
        scored = score(body, content_type, model, settings.max_rows)
    else:
        scored = await run_in_threadpool(score, body, content_type, model, settings.max_rows)
    PREDICTIONS.labels("/invocations").inc(scored.rows)
    return Response(scored.body, media_type="application/json")
