"""The committed example stacks are valid Azure configs."""

import pytest

from infra.config import Cloud, Environment
from infra.platform import load_stack_settings
from testing.pulumi_program import example_stack_config


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_example_stack_loads(environment: str) -> None:
    stack = f"azure-{environment}"
    config = example_stack_config(stack)
    settings = load_stack_settings(
        read=lambda key: None if config.get(key) is None else str(config[key]), stack=stack
    )
    assert settings.cloud is Cloud.AZURE
    assert settings.environment is Environment(environment)
    assert settings.model is None  # a new stack's first `up` needs no model
