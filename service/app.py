"""The app factory: settings in, a FastAPI app out; the model is loaded once, in the lifespan."""

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from service.errors import install_error_handlers
from service.metrics import MODEL_LOAD_SECONDS
from service.middleware import RequestGuard, RequestMetrics
from service.model_loading import load_served_model
from service.routes import health, invocations, metrics, predict, version
from service.served_model import ServedModel
from service.settings import Settings

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, loader: Callable[[], ServedModel] | None = None) -> FastAPI:
    """Build the API. Without `settings` they are read from the environment (MODEL_URI is required).

    `loader` returns the model (by default it loads MODEL_URI); the pre-forking server passes one that hands
    over the model its parent process already loaded.

    If the model cannot be loaded the process keeps running unready: /healthz answers, /readyz and the
    prediction routes answer 503 with the reason, and the error is logged. The platform's readiness or
    startup probe on /readyz then decides (Cloud Run, ECS and Container Apps replace the instance); an
    exit would lose the reason that /readyz shows.
    """
    # MODEL_URI comes from the environment when no settings are given.
    settings = settings or Settings()  # type: ignore[call-arg]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            model = await run_in_threadpool(loader or (lambda: load_served_model(settings)))
        except Exception as error:
            app.state.load_error = f"{type(error).__name__}: {error}"
            logger.exception("could not load model %s; staying unready", settings.model_uri)
        else:
            app.state.model = model
            MODEL_LOAD_SECONDS.set(model.load_seconds)
            if model.columns:
                app.include_router(predict.predict_router(model, settings.max_rows))
                app.openapi_schema = None
        # Route paths are all static, so a raw path that is one of them is a bounded metrics label.
        app.state.route_paths = frozenset(app.openapi()["paths"]) | {
            app.docs_url,
            app.redoc_url,
            app.openapi_url,
        }
        yield

    app = FastAPI(
        title="Model API",
        summary="Predictions from one MLflow model: MLflow's scoring protocol and a typed route.",
        version=settings.service_version,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.model = None
    app.state.load_error = "the model is still loading"
    app.state.route_paths = frozenset()
    install_error_handlers(app)
    for module in (health, metrics, version, invocations):
        app.include_router(module.router)
    app.add_middleware(
        RequestGuard, max_body_bytes=settings.max_body_bytes, timeout_seconds=settings.request_timeout_seconds
    )
    app.add_middleware(RequestMetrics, known_paths=lambda: app.state.route_paths)
    return app
