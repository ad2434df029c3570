"""The committed example GCP stacks are valid configs and build the whole platform under mocks."""

import pytest
import yaml

from infra.tests.gcp.conftest import run_stack
from infra.tests.paths import REPOSITORY_ROOT


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_example_stack_builds_without_a_model(environment: str) -> None:
    stack = f"gcp-{environment}"
    config = yaml.safe_load((REPOSITORY_ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
    run = run_stack({key: str(value) for key, value in config.items()}, stack)
    assert run.outputs["environment"] == environment
    assert run.outputs["apiUrl"] == ""  # a new stack's first `up` needs no model
    assert run.outputs["trackingUri"].startswith(f"https://{stack}-tracking-")
