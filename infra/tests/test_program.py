"""The program's entry point: bad config stops it before any resource is registered."""

import runpy

import pulumi
import pytest

from infra.tests.paths import REPOSITORY_ROOT
from testing.pulumi_program import ProgramRun, RecordingMocks, set_mock_runtime


def test_bad_config_fails_with_every_problem_before_any_resource():
    run = ProgramRun()
    set_mock_runtime(RecordingMocks(run, lambda _: {}, lambda _: {}), project="mlops-stack", stack="gcp-dev")
    pulumi.runtime.set_all_config({"mlops-stack:cloud": "gcp", "mlops-stack:environment": "qa"})
    try:
        with pytest.raises(pulumi.RunError) as raised:
            runpy.run_path(str(REPOSITORY_ROOT / "infra" / "__main__.py"), run_name="__main__")
    finally:
        pulumi.runtime.set_all_config({})
    message = str(raised.value)
    assert "stack 'gcp-dev' has" in message
    assert "mlops-stack:environment: 'qa' is not one of dev, staging, prod, sandbox" in message
    assert "gcp:project: is not set" in message
    assert "mlops-stack:githubRepository: is not set" in message
    assert run.resources == []
