"""`POST /predict`: typed rows whose OpenAPI schema comes from the model's signature.

The body is checked by the data plane with the same rules as `/invocations` (it is `dataframe_records`
under a name a schema can describe); the schema documents those rules, it does not enforce them.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from service.auth import api_key_schemes
from service.data_plane import DataPlane
from service.dependencies import current_plane
from service.scoring_lane import score
from service.served_model import ServedModel
from service.signature_models import request_schema, response_model


def predict_router(model: ServedModel, max_rows: int) -> APIRouter:
    """The /predict route for this model (added once the model is loaded: its schema needs the signature)."""
    router = APIRouter(tags=["model"], dependencies=[Depends(api_key_schemes)])

    async def predict(request: Request, plane: Annotated[DataPlane, Depends(current_plane)]) -> Response:
        # Reached only while no model is loaded (then the dependency answers 503) or when a test calls the
        # route itself: once loaded, service.scoring_lane answers with the same `score`.
        body = await score(plane, "/predict", await request.body(), request.headers.get("content-type"))
        return Response(body, media_type="application/json")

    router.add_api_route(
        "/predict",
        predict,
        methods=["POST"],
        summary="Predict, typed from the model's signature",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": request_schema(model, max_rows)}},
            }
        },
        response_model=response_model(model),
        response_class=Response,
        responses={413: {"description": "More rows than MAX_ROWS"}, 422: {"description": "Invalid rows"}},
    )
    return router
