"""Settings that must agree with each other, and with the probes infra gives the API's container."""

import pytest
from pydantic import ValidationError

from infra.azure import container_app
from infra.gcp import api as gcp_api
from service.settings import Settings


def test_a_request_timeout_reaching_into_the_shutdown_grace_is_refused_naming_both() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(model_uri="models:/m/1", request_timeout_seconds=8, shutdown_timeout_seconds=8)
    message = str(refused.value)
    assert "REQUEST_TIMEOUT_SECONDS (8) must be at most SHUTDOWN_TIMEOUT_SECONDS - 1 (7)" in message


def test_the_defaults_answer_every_request_before_the_grace_ends() -> None:
    defaults = Settings(model_uri="models:/m/1")
    assert defaults.request_timeout_seconds + 1 <= defaults.shutdown_timeout_seconds
    assert defaults.shutdown_timeout_seconds < 10, "Cloud Run sends SIGKILL 10 s after SIGTERM"


@pytest.mark.parametrize(
    ("cloud", "probe_window_seconds"),
    [
        ("gcp", gcp_api.STARTUP_PROBE_PERIOD_SECONDS * gcp_api.STARTUP_PROBE_FAILURES),
        ("azure", container_app.STARTUP_PERIOD_SECONDS * container_app.STARTUP_FAILURES),
    ],
)
def test_the_load_budget_ends_inside_the_startup_probe_window(cloud: str, probe_window_seconds: int) -> None:
    """The API gives up loading before the platform gives up on it, so the probe restarts an instance
    whose load cannot succeed instead of the load outliving the probe (the join of two files)."""
    budget = Settings(model_uri="models:/m/1").model_load_budget_seconds
    assert budget < probe_window_seconds, f"{cloud}: budget {budget:g}s, probe window {probe_window_seconds}s"
