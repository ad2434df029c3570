"""The committed example GCP stacks are valid configs and build the whole platform under mocks."""

import pytest

from infra.tests.gcp.conftest import run_stack
from testing.pulumi_program import example_stack_config


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_example_stack_builds_without_a_model(environment: str) -> None:
    stack = f"gcp-{environment}"
    run = run_stack(example_stack_config(stack), stack)
    assert run.outputs["environment"] == environment
    assert run.outputs["apiUrl"] == ""  # a new stack's first `up` needs no model
    assert run.outputs["trackingUri"].startswith(f"https://{stack}-tracking-")
