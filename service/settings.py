"""The model API's settings, read once from the environment (names are the ones infra sets)."""

from typing import Annotated, Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.cpu_quota import usable_cpus

# How much earlier than the shutdown grace ends the request timeout must fire, so that every request in
# flight at SIGTERM has had its answer (a prediction or our 504) before uvicorn would cancel it.
SHUTDOWN_MARGIN_SECONDS = 1.0


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
    """When set, every route but the probes and the docs needs it in `X-API-Key` or `Authorization: Bearer`;
    it is checked on the request line and headers, before any body is read."""

    max_body_bytes: Annotated[int, Field(gt=0)] = 1024 * 1024
    """Largest request body accepted; larger ones get 413 (checked on Content-Length and while reading)."""

    max_rows: Annotated[int, Field(gt=0)] = 1000
    """Most rows one prediction request may carry; more get 413 (split the batch)."""

    request_timeout_seconds: Annotated[float, Field(gt=0)] = 7.0
    """A request that takes longer (slow upload or slow prediction) gets 504. It must end at least
    SHUTDOWN_MARGIN_SECONDS before the shutdown grace does (checked below)."""

    stuck_call_seconds: Annotated[float, Field(gt=0)] = 60.0
    """A model call still running after this long is stuck (its request got its 504 long before): the
    worker exits and a fresh one takes its place (service.stuck_calls). More than REQUEST_TIMEOUT_SECONDS."""

    header_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    """A connection must send a complete request line and headers within this long, counted from when it
    opens or when its next request starts; else it is closed (uvicorn has no such timeout of its own)."""

    keep_alive_timeout_seconds: Annotated[int, Field(gt=0)] = 5
    """An idle keep-alive connection is closed after this long (uvicorn's `timeout_keep_alive`). Behind a
    load balancer that reuses connections (an AWS ALB idles them for 60 s), set it above the balancer's."""

    max_connections: Annotated[int, Field(gt=0)] = 100
    """Open connections per worker process; a request arriving on one more gets 503 with Retry-After.
    Above Cloud Run's default of 80 concurrent requests per instance, so only a flood reaches it."""

    model_load_budget_seconds: Annotated[float, Field(gt=0)] = 140.0
    """How long to keep retrying a model load that fails (tracking server or bucket unreachable), with
    backoff, before giving up and staying unready. Keep it inside the platform's startup probe window
    (the smallest is Container Apps' 150 s, infra/azure/container_app.py; Cloud Run's is 180 s) so a load
    that cannot succeed ends in a restart."""

    service_version: str = "dev"
    """This API's version (the image's tag or git sha), shown by /version."""

    image: str | None = None
    """The container image this runs from, shown by /version."""

    host: str = "0.0.0.0"  # noqa: S104  (a container must listen on all its interfaces)
    """Interface to listen on."""

    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    """Port to listen on; Cloud Run and Container Apps set PORT."""

    workers: int = Field(
        default_factory=usable_cpus, ge=1, validation_alias=AliasChoices("WORKERS", "WEB_CONCURRENCY")
    )
    """Server processes (forked after one model load); defaults to the CPUs this container may use: its
    affinity capped by its cgroup CPU quota (service.cpu_quota), not the host's core count."""

    shutdown_timeout_seconds: Annotated[int, Field(gt=0)] = 8
    """On SIGTERM, how long in-flight requests may finish before exit (Cloud Run kills at 10 s)."""

    monitoring_enabled: bool = True
    """Watch the inputs and predictions for drift against the model's reference profile (service.monitoring):
    /metrics, /monitoring and one JSON log line per window. Off, predictions skip it entirely."""

    monitoring_window_rows: Annotated[int, Field(ge=10)] = 1000
    """The drift window holds at most this many of the latest rows predicted..."""

    monitoring_window_seconds: Annotated[float, Field(gt=0)] = 600.0
    """...none older than this; it is also the interval of the drift log line (written when rows came in)."""

    monitoring_min_rows: Annotated[int, Field(ge=1)] = 200
    """Rows the window must hold before drift is scored: PSI over fewer rows is mostly sampling noise
    (about 0.05 from noise alone at 200 rows and 11 bins). At most MONITORING_WINDOW_ROWS."""

    monitoring_psi_threshold: Annotated[float, Field(gt=0)] = 0.25
    """PSI above which a column counts as drifting (0.1-0.25 is the usual "moderate shift" band)."""

    @model_validator(mode="after")
    def _drift_window_can_fill(self) -> Self:
        """A window that can never hold enough rows would never be scored."""
        if self.monitoring_min_rows > self.monitoring_window_rows:
            raise ValueError(
                f"MONITORING_MIN_ROWS ({self.monitoring_min_rows}) must be at most MONITORING_WINDOW_ROWS "
                f"({self.monitoring_window_rows}): lower the first or raise the second"
            )
        return self

    @model_validator(mode="after")
    def _only_abandoned_calls_count_as_stuck(self) -> Self:
        """A call within its request's timeout is slow, not stuck: recycling then would cut it short."""
        if self.stuck_call_seconds <= self.request_timeout_seconds:
            raise ValueError(
                f"STUCK_CALL_SECONDS ({self.stuck_call_seconds:g}) must be more than REQUEST_TIMEOUT_SECONDS "
                f"({self.request_timeout_seconds:g}): raise the first or lower the second"
            )
        return self

    @model_validator(mode="after")
    def _requests_end_before_the_shutdown_grace(self) -> Self:
        """A request still running when the grace ends would get uvicorn's plain-text 500 instead of ours."""
        latest = self.shutdown_timeout_seconds - SHUTDOWN_MARGIN_SECONDS
        if self.request_timeout_seconds > latest:
            raise ValueError(
                f"REQUEST_TIMEOUT_SECONDS ({self.request_timeout_seconds:g}) must be at most "
                f"SHUTDOWN_TIMEOUT_SECONDS - {SHUTDOWN_MARGIN_SECONDS:g} ({latest:g}), so that every "
                "request in flight at shutdown is answered before the grace ends: lower the first or "
                "raise the second"
            )
        return self
