"""What routes receive: the settings and the loaded model, kept on the app at startup."""

from fastapi import Request

from service.errors import ApiError
from service.served_model import ServedModel
from service.settings import Settings


def current_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


def current_model(request: Request) -> ServedModel:
    """The model loaded at startup; 503 (with the reason) when loading failed."""
    model: ServedModel | None = request.app.state.model
    if model is None:
        raise ApiError(503, f"The model is not loaded: {request.app.state.load_error}")
    return model
