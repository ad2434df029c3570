"""Every Azure example stack, and stacks with the longest names config accepts, against Azure's documented
limits (infra/azure/limits.py): a violation names the resource, the rule and the doc."""

import pytest

from infra.azure.limits import RULES
from infra.limits import applied_rules, violations
from infra.tests.azure.conftest import MODEL_SOURCE, SANDBOXES_GROUP, run_azure
from testing.pulumi_program import ProgramRun, example_stack_config, stack_config

LONGEST_ID = "a" * 29 + "z"  # a sandbox id may have 30 characters (infra.config.SANDBOX_STACK)
MODEL = {"modelVersion": "12", "modelSource": MODEL_SOURCE}


def longest(environment: str) -> tuple[dict[str, str], str]:
    stack = f"azure-sandbox-{LONGEST_ID}" if environment == "sandbox" else f"azure-{environment}"
    overrides = dict(MODEL)
    if environment == "sandbox":
        overrides["azureResourceGroup"] = SANDBOXES_GROUP
    if environment == "dev":
        overrides["sandboxes"] = "true"
    config = stack_config(
        "azure",
        environment,
        {"azure-native:location": "australiasoutheast"},
        "a" * 39 + "/" + "r" * 100,
        **overrides,
    )
    return config, stack


RUNS = {
    **{f"example {s}": (example_stack_config(s), s) for s in ("azure-dev", "azure-prod")},
    **{f"longest {env}": longest(env) for env in ("dev", "prod", "sandbox")},
    "largest sizes": (
        stack_config(
            "azure",
            "prod",
            {"azure-native:location": "westeurope"},
            "acme-ml/mlops-stack",
            trackingCpu="4",
            trackingMemoryMiB="8192",
            apiCpu="0.25",
            apiMemoryMiB="512",
            **MODEL,
        ),
        "azure-prod",
    ),
}


@pytest.fixture(scope="module")
def runs() -> dict[str, ProgramRun]:
    return {label: run_azure(config, stack).run for label, (config, stack) in RUNS.items()}


def resources(run: ProgramRun) -> list[tuple[str, str, dict]]:
    return [(r.type, r.name, r.inputs) for r in run.resources]


@pytest.mark.parametrize("label", list(RUNS))
def test_every_resource_keeps_azures_documented_limits(runs: dict[str, ProgramRun], label: str) -> None:
    found = violations(resources(runs[label]), RULES)
    assert found == [], "\n".join(map(str, found))


def test_every_rule_checks_something_the_program_sends(runs: dict[str, ProgramRun]) -> None:
    used = set()
    for run in runs.values():
        used |= applied_rules(resources(run), RULES)
    assert set(RULES) - used == set()
