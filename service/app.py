"""The app factory: settings in, a FastAPI app out; it is live at once and ready once its model is loaded."""

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from service.data_plane import DataPlane
from service.errors import install_error_handlers
from service.metrics import MODEL_LOAD_SECONDS
from service.middleware import RequestGuard, RequestMetrics
from service.model_loading import load_with_retries
from service.monitoring import monitored
from service.readiness import LoadProgress
from service.routes import health, invocations, metrics, monitoring, predict, version
from service.scoring_lane import ScoringLane
from service.served_model import ServedModel
from service.settings import Settings
from service.stuck_calls import CallWatch, exit_when_stuck

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    *,
    model: ServedModel | None = None,
    progress: LoadProgress | None = None,
) -> FastAPI:
    """Build the API. Without `settings` they are read from the environment (MODEL_URI is required).

    Where the model comes from:
    - `model`: already loaded (a worker forked by service.prefork after its parent loaded it); ready at once.
    - `progress` without `model`: another process is loading it and reports here; this app stays unready
      and is replaced once the model is loaded (service.prefork's first generation of workers).
    - neither: the app loads it in the background, retrying within MODEL_LOAD_BUDGET_SECONDS.

    Until the model is loaded the port is open: /healthz answers 200, /readyz 503 with the reason in words
    that name no internals, and the prediction routes 503 with Retry-After. A load that never succeeds
    leaves the process live and unready: the platform's startup or readiness probe on /readyz replaces
    the instance, and the cause stays in the log.
    """
    # MODEL_URI comes from the environment when no settings are given.
    settings = settings or Settings()  # type: ignore[call-arg]
    loads_here = model is None and progress is None
    load_progress = progress or LoadProgress()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _index_routes(app)
        if model is not None:
            _install(app, model)
        stop = threading.Event()
        loading = asyncio.create_task(_load_in_background(app, stop)) if loads_here else None
        watchdog = asyncio.create_task(exit_when_stuck(app.state.calls, settings.stuck_call_seconds))
        yield
        watchdog.cancel()
        stop.set()
        if loading is not None:
            loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loading

    async def _load_in_background(app: FastAPI, stop: threading.Event) -> None:
        loaded = await anyio.to_thread.run_sync(
            load_with_retries, settings, load_progress, stop, abandon_on_cancel=True
        )
        if loaded is not None:
            _install(app, loaded)  # on the event loop: routes change between requests, never during one

    app = FastAPI(
        title="Model API",
        summary="Predictions from one MLflow model: MLflow's scoring protocol and a typed route.",
        version=settings.service_version,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.model = None
    app.state.plane = None
    app.state.monitor = None
    app.state.progress = load_progress
    app.state.calls = CallWatch()
    app.state.route_paths = frozenset()
    install_error_handlers(app)
    for module in (health, metrics, version, invocations, monitoring):
        app.include_router(module.router)
    app.add_middleware(ScoringLane, state=app.state)  # inside the two below: guarded and measured
    app.add_middleware(
        RequestGuard,
        api_key=settings.api_key,
        max_body_bytes=settings.max_body_bytes,
        timeout_seconds=settings.request_timeout_seconds,
    )
    app.add_middleware(RequestMetrics, known_paths=lambda: app.state.route_paths)
    return app


def _install(app: FastAPI, model: ServedModel) -> None:
    """Serve `model`: its data plane, and /predict when its signature names its columns or comes from
    type hints (then /predict's rows are its inputs)."""
    settings: Settings = app.state.settings
    app.state.model = model
    served, app.state.monitor = monitored(model, settings)
    app.state.plane = DataPlane(served, settings.max_rows, app.state.calls)
    MODEL_LOAD_SECONDS.set(model.load_seconds)
    has_rows = bool(model.columns) or model.takes_inputs_as_sent
    if has_rows and "/predict" not in app.state.route_paths:  # a lifespan may run more than once
        app.include_router(predict.predict_router(model, settings.max_rows))
        app.openapi_schema = None
        _index_routes(app)
    logger.info("ready: serving %s", model.identity.uri)


def _index_routes(app: FastAPI) -> None:
    """Route paths are all static, so a raw path that is one of them is a bounded metrics label."""
    app.state.route_paths = frozenset(app.openapi()["paths"]) | {
        app.docs_url,
        app.redoc_url,
        app.openapi_url,
    }
