"""The committed example stacks are valid and build the platform they describe."""

import pytest

from infra.tests.aws.conftest import express_service, run_aws
from testing.pulumi_program import example_stack_config


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_example_stack_builds(environment: str) -> None:
    config = example_stack_config(f"aws-{environment}")
    run = run_aws(environment, config)
    assert run.outputs["trackingUri"].startswith("https://")
    tracking = express_service(run, "tracking").inputs
    if environment == "prod":
        assert run.one("aws:rds/instance:Instance").inputs["instanceClass"] == "db.t4g.small"
        assert (tracking["cpu"], tracking["memory"]) == ("1024", "2048")
    else:
        assert run.of_type("aws:rds/cluster:Cluster")
