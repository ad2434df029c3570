"""Which model and which build answer here."""

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from service.auth import api_key_schemes
from service.dependencies import current_model, current_settings
from service.served_model import ServedModel
from service.settings import Settings

router = APIRouter(tags=["model"], dependencies=[Depends(api_key_schemes)])


class VersionInfo(BaseModel):
    """The served model's identity and this service's build."""

    model_name: str | None
    model_version: str | None
    model_uri: str
    run_id: str | None
    service_version: str
    image: str | None


@router.get("/version", summary="Model name, version and run, and this service's version")
def version(
    model: Annotated[ServedModel, Depends(current_model)],
    settings: Annotated[Settings, Depends(current_settings)],
) -> VersionInfo:
    """What is being served, so a deploy can be checked against the registry (behind the API key)."""
    identity = model.identity
    return VersionInfo(
        model_name=identity.name,
        model_version=identity.version,
        model_uri=identity.uri,
        run_id=identity.run_id,
        service_version=settings.service_version,
        image=settings.image,
    )
