"""Every GCP example stack, and stacks with the longest names config accepts, against Google's documented
limits (infra/gcp/limits.py): a violation names the resource, the rule and the doc."""

import pytest

from infra.gcp.limits import RULES
from infra.limits import applied_rules, violations
from infra.tests.gcp.conftest import MODEL_SOURCE, run_stack
from testing.pulumi_program import ProgramRun, example_stack_config, stack_config

LONGEST_ID = "a" * 29 + "z"  # a sandbox id may have 30 characters (infra.config.SANDBOX_STACK)
LONGEST_PROJECT = "p" * 29 + "0"  # GCP project ids have 6-30 characters
MODEL = {"modelVersion": "12", "modelSource": MODEL_SOURCE}


def longest(environment: str) -> tuple[dict[str, str], str]:
    stack = f"gcp-sandbox-{LONGEST_ID}" if environment == "sandbox" else f"gcp-{environment}"
    location = {"gcp:project": LONGEST_PROJECT, "gcp:region": "northamerica-northeast1"}
    overrides = {**MODEL, "sandboxes": "true"} if environment == "dev" else MODEL
    # The longest repository GCP accepts: Workload Identity Federation maps at most 127 bytes of the token's
    # subject, and `repo:<R>:environment:sandbox` is the longest the stack trusts (config checks this).
    repository = "a" * 39 + "/" + "r" * (127 - len("repo::environment:sandbox") - 40)
    return stack_config("gcp", environment, location, repository, **overrides), stack


RUNS = {
    **{f"example {s}": (example_stack_config(s), s) for s in ("gcp-dev", "gcp-prod")},
    **{
        f"example {s} with a model": (
            {**example_stack_config(s), **{f"mlops-stack:{k}": v for k, v in MODEL.items()}},
            s,
        )
        for s in ("gcp-dev", "gcp-prod")
    },
    **{f"longest {env}": longest(env) for env in ("dev", "prod", "sandbox")},
    "largest sizes": (
        stack_config(
            "gcp",
            "prod",
            {"gcp:project": "acme-ml", "gcp:region": "europe-west1"},
            "acme-ml/mlops-stack",
            trackingCpu="8",
            trackingMemoryMiB="32768",
            apiCpu="4",
            apiMemoryMiB="2048",
            **MODEL,
        ),
        "gcp-prod",
    ),
}


@pytest.fixture(scope="module")
def runs() -> dict[str, ProgramRun]:
    return {label: run_stack(config, stack) for label, (config, stack) in RUNS.items()}


def resources(run: ProgramRun) -> list[tuple[str, str, dict]]:
    return [(r.type, r.name, r.inputs) for r in run.resources]


@pytest.mark.parametrize("label", list(RUNS))
def test_every_resource_keeps_googles_documented_limits(runs: dict[str, ProgramRun], label: str) -> None:
    found = violations(resources(runs[label]), RULES)
    assert found == [], "\n".join(map(str, found))


def test_every_rule_checks_something_the_program_sends(runs: dict[str, ProgramRun]) -> None:
    used = set()
    for run in runs.values():
        used |= applied_rules(resources(run), RULES)
    assert set(RULES) - used == set()


def test_a_violation_names_the_resource_the_rule_and_the_doc(runs: dict[str, ProgramRun]) -> None:
    service = next(r for r in runs["longest dev"].resources if r.type == "gcp:cloudrunv2/service:Service")
    container = service.inputs["template"]["containers"][0]
    too_long = {**container, "startupProbe": {"periodSeconds": 10, "failureThreshold": 30}}
    broken = {**service.inputs, "template": {**service.inputs["template"], "containers": [too_long]}}
    [violation] = violations([(service.type, service.name, broken)], RULES)
    assert str(violation).startswith(f"{service.name} (gcp:cloudrunv2/service:Service)")
    assert "startup probe allows 300 s" in str(violation)
    assert violation.doc == "https://cloud.google.com/run/docs/configuring/healthchecks#startup-probes"
