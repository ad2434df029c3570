"""The model API's settings, read once from the environment (names are the ones infra sets)."""

import os
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _cpu_count() -> int:
    """CPUs this process may run on (the container's quota, not the host's core count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Settings(BaseSettings):
    """Everything the model API can be told. MLflow reads MLFLOW_TRACKING_URI/USERNAME/PASSWORD itself."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    model_uri: Annotated[str, Field(min_length=1)]
    """Any MLflow model URI: models:/name/3, models:/name@alias, runs:/..., a local path, s3://, gs://, wasbs://."""

    model_name: str | None = None
    """Registered model name shown by /version when MODEL_URI is not a models:/ URI."""

    model_version: str | None = None
    """Registered model version shown by /version when MODEL_URI is not a models:/ URI."""

    api_key: SecretStr | None = None
    """When set, prediction and /version routes need it in `X-API-Key` or `Authorization: Bearer`."""

    max_body_bytes: Annotated[int, Field(gt=0)] = 1024 * 1024
    """Largest request body accepted; larger ones get 413 (checked on Content-Length and while reading)."""

    max_rows: Annotated[int, Field(gt=0)] = 1000
    """Most rows one prediction request may carry; more get 413 (split the batch)."""

    request_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    """A request that takes longer (slow upload or slow prediction) gets 504."""

    service_version: str = "dev"
    """This API's version (the image's tag or git sha), shown by /version."""

    image: str | None = None
    """The container image this runs from, shown by /version."""

    host: str = "0.0.0.0"  # noqa: S104  (a container must listen on all its interfaces)
    """Interface to listen on."""

    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    """Port to listen on; Cloud Run and Container Apps set PORT."""

    workers: int = Field(
        default_factory=_cpu_count, ge=1, validation_alias=AliasChoices("WORKERS", "WEB_CONCURRENCY")
    )
    """Server processes (each loads the model); defaults to the CPUs this container may use."""

    shutdown_timeout_seconds: Annotated[int, Field(gt=0)] = 8
    """On SIGTERM, how long in-flight requests may finish before exit (Cloud Run kills at 10 s)."""
