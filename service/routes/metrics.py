"""Prometheus exposition, open like the health routes (scrapers send no API key)."""

from fastapi import APIRouter
from starlette.responses import Response

from service.metrics import render

router = APIRouter(tags=["health"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics() -> Response:
    """Requests, latency, predictions and model load time in Prometheus text format."""
    body, content_type = render()
    return Response(body, media_type=content_type)
