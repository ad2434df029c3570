"""Every Azure example stack, and stacks with the longest names config accepts, against Azure's documented
limits (infra/azure/limits.py): a violation names the resource, the rule and the doc."""

from collections.abc import Mapping
from typing import Any

import pytest
from pulumi.runtime import rpc

from infra.azure.limits import CONSUMPTION_SIZES, RULES
from infra.config import SANDBOX_STACK, ConfigError
from infra.limits import applied_rules, violations
from infra.platform import load_stack_settings
from infra.tests.azure.conftest import (
    LOCATION,
    MODEL_SOURCE,
    SANDBOXES_GROUP,
    AzureRun,
    run_azure,
)
from testing.pulumi_program import example_stack_config, stack_config

LONGEST_ID = "a" * 29 + "z"  # a sandbox id may have 30 characters (infra.config.SANDBOX_STACK)
LONGEST_REPOSITORY = "a" * 39 + "/" + "r" * 100
MODEL = {"modelVersion": "1", "modelSource": MODEL_SOURCE}
# State locations as bootstrap makes them, with the longest names Azure takes (container 63, key 127).
STATE = {
    "stateBackend": f"azblob://{'c' * 63}?storage_account={'s' * 24}",
    "stateSecretsProvider": f"azurekeyvault://{'v' * 24}.vault.azure.net/keys/{'k' * 127}",
}
SANDBOX_STATE = {
    "sandboxStateBackend": f"azblob://{'d' * 63}?storage_account={'s' * 24}",
    "sandboxStateSecretsProvider": f"azurekeyvault://{'v' * 24}.vault.azure.net/keys/{'j' * 127}",
}


def longest(environment: str) -> tuple[dict[str, str], str]:
    stack = f"azure-sandbox-{LONGEST_ID}" if environment == "sandbox" else f"azure-{environment}"
    overrides: dict[str, str] = {**MODEL, **STATE}
    if environment == "dev":
        overrides |= {"sandboxes": "true", **SANDBOX_STATE}
    if environment == "sandbox":  # its own state is the sandboxes' state
        overrides = {
            **MODEL,
            "stateBackend": SANDBOX_STATE["sandboxStateBackend"],
            "stateSecretsProvider": SANDBOX_STATE["sandboxStateSecretsProvider"],
            "azureResourceGroup": SANDBOXES_GROUP,
        }
    location = {"azure-native:location": LOCATION}
    return stack_config("azure", environment, location, LONGEST_REPOSITORY, **overrides), stack


RUNS = {
    **{f"example {s}": (example_stack_config(s), s) for s in ("azure-dev", "azure-prod")},
    **{
        f"example {s} with a model": (
            {**example_stack_config(s), **{f"mlops-stack:{k}": v for k, v in MODEL.items()}},
            s,
        )
        for s in ("azure-dev", "azure-prod")
    },
    **{f"longest {env}": longest(env) for env in ("dev", "staging", "prod", "sandbox")},
    "largest sizes": (
        stack_config(
            "azure",
            "prod",
            {"azure-native:location": LOCATION},
            "acme-ml/mlops-stack",
            trackingCpu="4",
            trackingMemoryMiB="8192",
            apiCpu="2.25",
            apiMemoryMiB="4608",
            apiMaxInstances="100",
            **MODEL,
        ),
        "azure-prod",
    ),
}


@pytest.fixture(scope="module")
def runs() -> dict[str, AzureRun]:
    return {label: run_azure(config, stack) for label, (config, stack) in RUNS.items()}


def reveal(value: Any) -> Any:
    """Inputs as the provider receives them: secrets unwrapped (the engine decrypts them before the call)."""
    if isinstance(value, Mapping):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return reveal(value["value"])
        return {key: reveal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [reveal(item) for item in value]
    return value


def resources(result: AzureRun) -> list[tuple[str, str, dict[str, Any]]]:
    return [(r.type, r.name, reveal(r.inputs)) for r in result.run.resources]


def test_the_longest_sandbox_is_the_longest_name_config_accepts() -> None:
    config, stack = RUNS["longest sandbox"]
    assert SANDBOX_STACK.fullmatch(stack)
    assert not SANDBOX_STACK.fullmatch(f"azure-sandbox-{LONGEST_ID}a")
    assert config["mlops-stack:stateBackend"].startswith("azblob://ddd")  # the sandbox state
    assert config["mlops-stack:azureResourceGroup"] == SANDBOXES_GROUP


@pytest.mark.parametrize("label", list(RUNS))
def test_every_resource_keeps_azures_documented_limits(runs: dict[str, AzureRun], label: str) -> None:
    found = violations(resources(runs[label]), RULES)
    assert found == [], "\n".join(map(str, found))


def test_every_rule_checks_something_the_program_sends(runs: dict[str, AzureRun]) -> None:
    used = set()
    for result in runs.values():
        used |= applied_rules(resources(result), RULES)
    unused = [f"{rule.resource_type} {rule.field}" for rule in RULES if rule not in used]
    assert unused == []


def test_every_azure_resource_the_program_names_has_a_name_rule(runs: dict[str, AzureRun]) -> None:
    """A type we give a physical name without a rule for it would pass unchecked. Role assignments are
    named by the provider (a GUID) and the diagnostic setting's name is not in Azure's name rules."""
    named = {
        r.type
        for result in runs.values()
        for r in result.run.resources
        if r.type.startswith("azure-native:")
        and r.type
        not in ("azure-native:authorization:RoleAssignment", "azure-native:monitor:DiagnosticSetting")
    }
    assert named - {rule.resource_type for rule in RULES} == set()


def test_config_takes_every_consumption_size_and_refuses_any_other_pairing() -> None:
    def settings(cpu: float, memory_mib: int) -> object:
        config = {**example_stack_config("azure-dev"), "mlops-stack:apiCpu": f"{cpu:g}"}
        return load_stack_settings(
            read={**config, "mlops-stack:apiMemoryMiB": str(memory_mib)}.get, stack="azure-dev"
        )

    for cpu, gib in CONSUMPTION_SIZES.items():
        settings(cpu, int(gib * 1024))
    with pytest.raises(ConfigError, match="apiMemoryMiB: 1024 MiB does not fit 1 CPU"):
        settings(1, 1024)
    with pytest.raises(ConfigError, match=r"apiCpu: 0\.3 CPUs is not a size"):
        settings(0.3, 614)


def test_a_violation_names_the_resource_the_rule_and_the_doc(runs: dict[str, AzureRun]) -> None:
    """What the program sent before this table existed: a 30-failure startup probe, 14 days of logs, and an
    autonamed environment (logical name + 8 random characters, pulumi-azure-native's autonaming) for the
    longest sandbox."""
    result = runs["longest sandbox"]
    app = next(r for r in result.run.resources if r.type == "azure-native:app:ContainerApp")
    container = app.inputs["template"]["containers"][0]
    probes = [{**p, "failureThreshold": 30} if p["type"] == "Startup" else p for p in container["probes"]]
    broken_app = {
        **app.inputs,
        "template": {**app.inputs["template"], "containers": [{**container, "probes": probes}]},
    }
    workspace = next(
        r for r in result.run.resources if r.type == "azure-native:operationalinsights:Workspace"
    )
    environment = next(r for r in result.run.resources if r.type == "azure-native:app:ManagedEnvironment")
    found = violations(
        [
            (app.type, app.name, broken_app),
            (workspace.type, workspace.name, {**workspace.inputs, "retentionInDays": 14}),
            (environment.type, environment.name, {"environmentName": f"{environment.name}614742c2"}),
        ],
        RULES,
    )
    messages = [str(violation) for violation in found]
    probes_doc = "https://learn.microsoft.com/rest/api/containerapps/container-apps/create-or-update"
    assert messages == [
        f"{app.name} (azure-native:app:ContainerApp).template.containers[].probes Startup probe "
        f"failureThreshold 30; allowed 1-10 - see {probes_doc}#containerappprobe",
        f"{workspace.name} (azure-native:operationalinsights:Workspace).retentionInDays is 14; allowed "
        "30-730 (days a PerGB2018 workspace keeps logs) - see "
        "https://learn.microsoft.com/azure/azure-monitor/logs/data-retention-configure",
        f"{environment.name} (azure-native:app:ManagedEnvironment).environmentName is 69 characters; allowed "
        "2-60 - see https://azure.github.io/PSRule.Rules.Azure/en/rules/Azure.ContainerApp.EnvNaming/",
    ]
