"""Liveness and readiness, open even when an API key is set (platform probes send none)."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from service.dependencies import not_ready_reason

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    """Always 200 while the process serves requests, the model loaded or not."""
    return {"status": "ok"}


@router.get("/readyz", summary="The model is loaded and predictions can be served")
def readyz(request: Request) -> JSONResponse:
    """200 once the model is loaded; until then 503 with the reason (never the cause's internals)."""
    if request.app.state.plane is None:
        return JSONResponse({"status": "not ready", "reason": not_ready_reason(request)}, status_code=503)
    return JSONResponse({"status": "ready"})
