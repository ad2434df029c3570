"""What routes receive: the settings, the loaded model and its data plane, kept on the app."""

from fastapi import Request

from service.data_plane import DataPlane
from service.errors import ApiError
from service.served_model import ServedModel
from service.settings import Settings

# A load is retried every 1-10 s (service.model_loading), so a client retrying after this long is not early.
NOT_READY_RETRY_AFTER_SECONDS = 5


async def current_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


def not_ready_reason(request: Request) -> str:
    """Why the model is not loaded yet, without internals (see service.readiness)."""
    budget = request.app.state.settings.model_load_budget_seconds
    reason: str = request.app.state.progress.current().reason(budget)
    return reason


def _not_ready(request: Request) -> ApiError:
    return ApiError(
        503,
        f"Not ready: {not_ready_reason(request)}",
        headers={"Retry-After": str(NOT_READY_RETRY_AFTER_SECONDS)},
    )


async def current_model(request: Request) -> ServedModel:
    """The loaded model; 503 with the reason while there is none."""
    model: ServedModel | None = request.app.state.model
    if model is None:
        raise _not_ready(request)
    return model


async def current_plane(request: Request) -> DataPlane:
    """The loaded model's data plane; 503 with the reason while there is none."""
    plane: DataPlane | None = request.app.state.plane
    if plane is None:
        raise _not_ready(request)
    return plane
