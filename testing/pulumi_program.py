"""Pulumi program runs for tests: the runner itself is mlops_stack.program_under_mocks (the cost estimator
shares it); here are the example configs tests build runs from."""

from collections.abc import Mapping
from pathlib import Path

from mlops_stack.program_under_mocks import (
    CallResults,
    ComputedOutputs,
    ProgramRun,
    RecordingMocks,
    RecordingMonitor,
    Registered,
    run_program,
    set_mock_runtime,
)

__all__ = [
    "CallResults",
    "ComputedOutputs",
    "ProgramRun",
    "RecordingMocks",
    "RecordingMonitor",
    "Registered",
    "run_program",
    "set_mock_runtime",
]


SANDBOX_EXPIRY = "2026-12-01T18:00:00Z"


def stack_config(
    cloud: str, environment: str, location: Mapping[str, str], repository: str, **overrides: str | None
) -> dict[str, str]:
    """A valid config for a `cloud` stack in `environment` (sandboxes get an expiry).

    `location` holds the provider keys (e.g. `{"aws:region": ...}`); `overrides` use bare project keys
    (`modelVersion`) or full `ns:key` names, and None removes a key.
    """
    config = {
        "mlops-stack:cloud": cloud,
        "mlops-stack:environment": environment,
        "mlops-stack:githubRepository": repository,
        **location,
    }
    if environment == "sandbox":
        config["mlops-stack:sandboxExpiresAt"] = SANDBOX_EXPIRY
    for key, value in overrides.items():
        full = key if ":" in key else f"mlops-stack:{key}"
        if value is None:
            config.pop(full, None)
        else:
            config[full] = value
    return config


EXAMPLE_REPOSITORY = "acme-ml/mlops-stack"


def example_stack_config(stack: str) -> dict[str, str]:
    """A committed example stack's config as Pulumi hands it to the program (every value a string), with the
    placeholder repository replaced as the README tells users to (config refuses the placeholder)."""
    import yaml

    from infra.config import PLACEHOLDER_REPOSITORIES

    path = Path(__file__).resolve().parents[1] / "stacks" / f"Pulumi.{stack}.yaml"
    config = {
        key: str(value).lower() if isinstance(value, bool) else str(value)
        for key, value in yaml.safe_load(path.read_text())["config"].items()
    }
    if config.get("mlops-stack:githubRepository") in PLACEHOLDER_REPOSITORIES:
        config["mlops-stack:githubRepository"] = EXAMPLE_REPOSITORY
    return config
