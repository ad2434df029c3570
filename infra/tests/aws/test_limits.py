"""AWS's documented limits (infra/aws/limits.py) hold for everything every AWS stack sends.

Every committed AWS example stack, and dev, prod and a sandbox whose id is as long as config accepts (30
characters), each with a model pinned so both services exist, run under mocks; every registered resource,
with its names as AWS will receive them, is checked against the table. A violation names the resource, the
rule and its doc; a rule that finds nothing to check in any of these stacks is dead data and fails too.
"""

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from infra.aws.limits import (
    BUCKET,
    EXPRESS_SERVICE,
    EXPRESS_TASK_SIZES,
    RDS_CLUSTER,
    RULES,
    physical_inputs,
)
from infra.config import SANDBOX_STACK, ConfigError
from infra.limits import applied_rules, violations
from infra.platform import load_stack_settings
from infra.tests.aws.conftest import MODEL_SOURCE, calls, config_for, outputs_for, with_model
from testing.pulumi_program import ProgramRun, example_stack_config, run_program

REPOSITORY_ROOT = Path(__file__).resolve().parents[3]
LONGEST_SANDBOX = "aws-sandbox-pr4821-retrain-champion-ab12cd"
EXAMPLES = sorted(path.name.split(".")[1] for path in (REPOSITORY_ROOT / "stacks").glob("Pulumi.aws-*.yaml"))
PIN = {"mlops-stack:modelVersion": "1", "mlops-stack:modelSource": MODEL_SOURCE}


def _stacks() -> Iterable[tuple[str, dict[str, str]]]:
    for stack in EXAMPLES:
        yield stack, example_stack_config(stack)
        yield stack, {**example_stack_config(stack), **PIN}
    yield "aws-dev", with_model("dev")
    yield "aws-prod", with_model("prod")
    yield "aws-sandbox-alice", with_model("sandbox")
    yield LONGEST_SANDBOX, with_model("sandbox")


def _physical(run: ProgramRun) -> list[tuple[str, str, dict[str, Any]]]:
    return [(r.type, r.name, physical_inputs(r.type, r.name, r.inputs)) for r in run.resources]


def test_the_longest_sandbox_is_the_longest_config_accepts() -> None:
    match = SANDBOX_STACK.fullmatch(LONGEST_SANDBOX)
    assert match is not None
    assert len(match["id"]) == 30
    assert SANDBOX_STACK.fullmatch(LONGEST_SANDBOX.replace("-sandbox-", "-sandbox-x")) is None


def test_every_stack_keeps_every_documented_limit_and_every_rule_checks_something() -> None:
    assert EXAMPLES == ["aws-dev", "aws-prod"]
    used: set[Any] = set()
    found = []
    for stack, config in _stacks():
        resources = _physical(run_program(config, stack, outputs_for=outputs_for, calls=calls))
        found += [f"{stack}: {violation}" for violation in violations(resources, RULES)]
        used |= applied_rules(resources, RULES)
    assert not found, "\n".join(found)
    unused = [f"{rule.resource_type} {rule.field}" for rule in RULES if rule not in used]
    assert not unused, f"rules that never found a value: {unused}"


def test_auto_names_of_a_long_sandbox_would_break_s3_and_rds_limits() -> None:
    """What the program sent before it named these itself: Pulumi's auto-name is the logical name, a dash and
    7 characters, too long for S3 (63) and RDS (63) once the sandbox id is 30 characters."""
    resources: list[tuple[str, str, dict[str, Any]]] = [
        (BUCKET, f"{LONGEST_SANDBOX}-artifacts-bucket", {}),
        (RDS_CLUSTER, f"{LONGEST_SANDBOX}-database-cluster", {}),
    ]
    physical = [(t, n, physical_inputs(t, n, i)) for t, n, i in resources]
    problems = violations(physical, RULES)
    assert [(v.resource_type, v.field) for v in problems] == [
        (BUCKET, "bucket"),
        (RDS_CLUSTER, "clusterIdentifier"),
    ]
    assert "bucketnamingrules" in problems[0].doc


def test_a_prefix_is_checked_with_the_26_characters_aws_appends() -> None:
    (problem,) = violations(
        [("aws:iam/role:Role", "r", physical_inputs("aws:iam/role:Role", "r", {"namePrefix": "a" * 39}))],
        RULES,
    )
    assert problem.problem == "is 65 characters; allowed 1-64"


@pytest.mark.parametrize(
    ("cpu", "memory"), [("2048", "16384"), ("4096", "30720"), ("256", "4096"), ("768", "2048")]
)
def test_express_refuses_fargate_sizes_above_its_own_limits(cpu: str, memory: str) -> None:
    service = [(EXPRESS_SERVICE, "svc", {"cpu": cpu, "memory": memory})]
    assert violations(service, RULES), f"{cpu}/{memory}"


def test_config_accepts_exactly_the_sizes_express_accepts() -> None:
    """The join between infra.config (refuses before any resource) and this table (what AWS refuses): every
    CPU/memory pair on a 512 MiB grid up to Fargate's largest, through the real config loader."""
    accepted_by_config = set()
    for cpu in (0.25, 0.5, 1, 2, 4, 8):
        for memory in range(512, 30721, 512):
            config = config_for("dev", apiCpu=f"{cpu:g}", apiMemoryMiB=str(memory))
            try:
                load_stack_settings(config.get, stack="aws-dev")
            except ConfigError:
                continue
            accepted_by_config.add((int(cpu * 1024), memory))
    accepted_by_express = {(cpu, memory) for cpu, sizes in EXPRESS_TASK_SIZES.items() for memory in sizes}
    assert accepted_by_config == accepted_by_express


def test_config_refuses_memory_express_refuses_before_any_resource() -> None:
    config = config_for("dev", apiCpu="2", apiMemoryMiB="16384", trackingCpu="4", trackingMemoryMiB="30720")
    with pytest.raises(ConfigError) as error:
        load_stack_settings(config.get, stack="aws-dev")
    assert "apiMemoryMiB: 16384 MiB does not fit 2 CPU" in str(error.value)
    assert "trackingMemoryMiB: 30720 MiB does not fit 4 CPU" in str(error.value)
    assert "Express Mode caps memory at 8192 MiB" in str(error.value)
