"""`GET /monitoring`: the drift window as JSON, for a person or a script (Prometheus reads /metrics).

Behind the API key when one is set, like /version: besides the scores it shows each column's reference
bins, a summary of the training data that /metrics does not carry.
"""

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from service.auth import api_key_schemes
from service.dependencies import current_model
from service.monitoring import DriftMonitor
from service.served_model import ServedModel

router = APIRouter(tags=["model"], dependencies=[Depends(api_key_schemes)])


@router.get("/monitoring", summary="Input drift and input quality over the latest window")
def monitoring(request: Request, model: Annotated[ServedModel, Depends(current_model)]) -> dict[str, Any]:
    """`status` is `off` (MONITORING_ENABLED=false), `no_reference` (the model carries no reference
    profile), `not_enough_rows` (fewer than MONITORING_MIN_ROWS in the window), `ok` or `drift` (a PSI over
    the threshold: `drifting` names the columns). `current` and `reference` are each column's share of rows
    per bin: the reference's bins, then (categorical) other values, then nulls."""
    settings = request.app.state.settings
    identity = {
        "name": model.identity.name,
        "version": model.identity.version,
        "run_id": model.identity.run_id,
    }
    monitor: DriftMonitor | None = request.app.state.monitor
    if monitor is None:
        status = "no_reference" if settings.monitoring_enabled else "off"
        return {"status": status, "model": identity}
    scores = monitor.scores()
    return {
        "status": scores.status,
        "model": identity,
        "method": "psi",
        "threshold": scores.threshold,
        "drifting": scores.drifting,
        "window": {
            "rows": scores.rows,
            "seconds": round(scores.seconds, 1),
            "max_rows": monitor.window.max_rows,
            "max_seconds": monitor.window.seconds,
            "min_rows": monitor.window.min_rows,
        },
        "features": {name: asdict(score) for name, score in scores.features.items()},
        "prediction": None if scores.prediction is None else asdict(scores.prediction),
    }
