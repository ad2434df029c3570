"""Liveness and readiness, open even when an API key is set (platform probes send none).

`/ping` and `/health` answer as `mlflow models serve` does (mlflow/pyfunc/scoring_server: 200 with a body of
one newline once the model is loaded, 404 before, media type application/json), so MLflow's own client
(`ScoringServerClient.wait_server_ready`) and tools written for MLflow's server work against this one.
`/version` stays ours (the model and build, behind the key) rather than MLflow's bare version string.
"""

from fastapi import APIRouter, Request, Response
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


@router.get("/ping", summary="MLflow's scoring-server health check: 200 once the model is loaded, else 404")
@router.get("/health", summary="The same as /ping, as in MLflow's scoring server")
def ping(request: Request) -> Response:
    loaded = request.app.state.plane is not None
    return Response(content="\n", status_code=200 if loaded else 404, media_type="application/json")
