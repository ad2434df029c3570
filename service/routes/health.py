"""Liveness and readiness, open even when an API key is set (platform probes send none)."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    """Always 200 while the process serves requests."""
    return {"status": "ok"}


@router.get("/readyz", summary="The model is loaded and predictions can be served")
def readyz(request: Request) -> JSONResponse:
    """200 once the model is loaded; 503 with the reason when loading failed."""
    if request.app.state.model is None:
        return JSONResponse({"status": "not ready", "reason": request.app.state.load_error}, status_code=503)
    return JSONResponse({"status": "ready"})
