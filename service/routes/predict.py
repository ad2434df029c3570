"""`POST /predict`: a typed route whose request and response schemas come from the model's signature."""

from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Depends
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from service.auth import require_api_key
from service.errors import ApiError
from service.metrics import PREDICTIONS
from service.served_model import ServedModel
from service.signature_models import field_name, request_model, response_model


def predict_router(model: ServedModel, max_rows: int) -> APIRouter:
    """The /predict route for this model. Its body is validated once, by pydantic; not again by MLflow."""
    router = APIRouter(tags=["model"], dependencies=[Depends(require_api_key)])
    request_type = request_model(model, max_rows)
    names = [field_name(position) for position in range(len(model.columns))]

    async def predict(request: request_type) -> Response:  # type: ignore[valid-type]
        rows: list[BaseModel] = request.rows  # type: ignore[attr-defined]
        if len(rows) > max_rows:
            raise ApiError(413, f"The input has {len(rows)} rows, more than the limit of {max_rows}.")
        if model.numeric_inputs:
            matrix = np.array([[getattr(row, name) for name in names] for row in rows], dtype=np.float64)
            try:
                if model.fast_predictor is not None:
                    predictions: Any = model.fast_predictor(matrix)
                else:
                    predictions = await run_in_threadpool(model.predict_matrix, matrix)
            except ValueError as error:
                raise ApiError(422, f"The model could not use these rows: {error}") from None
        else:
            predictions = await run_in_threadpool(_predict_records, model, rows)
        PREDICTIONS.labels("/predict").inc(len(rows))
        body = orjson.dumps({"predictions": predictions}, option=orjson.OPT_SERIALIZE_NUMPY)
        return Response(body, media_type="application/json")

    router.add_api_route(
        "/predict",
        predict,
        methods=["POST"],
        summary="Predict, typed from the model's signature",
        response_model=response_model(model),
        response_class=Response,
        responses={413: {"description": "More rows than MAX_ROWS"}, 422: {"description": "Invalid rows"}},
    )
    return router


def _predict_records(model: ServedModel, rows: list[BaseModel]) -> Any:
    import pandas as pd

    frame = pd.DataFrame([row.model_dump(by_alias=True) for row in rows], columns=list(model.column_names))
    predictions = model.predict_pyfunc(frame)
    return predictions.tolist() if hasattr(predictions, "tolist") else predictions
