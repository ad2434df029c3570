"""Google's documented limits (infra/gcp/limits.py) over everything the GCP program sends.

Every committed GCP example stack and dev/prod/sandbox with the longest names config accepts (a 30-character
project id, a 30-character sandbox id, GitHub's longest repository name), each with a model pinned so both
services exist, run under mocks; every registered resource is checked against every rule of its type, and
every rule must have found something to check (a rule that never applies is dead data or a wrong type token).
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.config import SANDBOX_STACK
from infra.gcp.limits import RULES
from infra.github import environment_subject, retrain_environment
from infra.limits import Rule, applied_rules, violations
from infra.tests.gcp.conftest import config_for, model_source, run_stack
from testing.pulumi_program import ProgramRun, example_stack_config

STACKS_DIR = Path(__file__).resolve().parents[3] / "stacks"
EXAMPLES = sorted(path.stem.removeprefix("Pulumi.") for path in STACKS_DIR.glob("Pulumi.gcp-*.yaml"))
LONGEST_PROJECT = "acme-ml-platform-prod-eu-west1"  # project ids: 6-30 characters
LONGEST_SANDBOX_ID = "feature-branch-checkout-flow-2"  # SANDBOX_STACK's id: up to 30 characters
# Identity Federation maps at most 127 bytes of a token's subject, and `repo:<R>:environment:retrain-prod` is
# the longest the dev and prod stacks trust (config refuses longer: infra.config _check_gcp_subjects).
LONGEST_SUBJECT_SUFFIX = max(
    len(environment_subject("", environment))
    for environment in (retrain_environment("dev"), retrain_environment("prod"), "sandbox")
)
LONGEST_REPOSITORY = "o" * 39 + "/" + "r" * (127 - LONGEST_SUBJECT_SUFFIX - 40)


def resources_of(run: ProgramRun) -> list[tuple[str, str, dict]]:
    return [(resource.type, resource.name, resource.inputs) for resource in run.resources]


def example_run(stack: str) -> ProgramRun:
    config = example_stack_config(stack)
    config["mlops-stack:modelVersion"] = "1"
    config["mlops-stack:modelSource"] = model_source(stack, project=config["gcp:project"])
    return run_stack(config, stack)


def longest_run(environment: str) -> ProgramRun:
    stack = f"gcp-sandbox-{LONGEST_SANDBOX_ID}" if environment == "sandbox" else f"gcp-{environment}"
    config = config_for(environment, githubRepository=LONGEST_REPOSITORY, **{"gcp:project": LONGEST_PROJECT})
    config["mlops-stack:modelVersion"] = "1"
    config["mlops-stack:modelSource"] = model_source(stack, project=LONGEST_PROJECT)
    return run_stack(config, stack)


@pytest.fixture(scope="module")
def runs() -> dict[str, ProgramRun]:
    assert EXAMPLES, f"no GCP example stack in {STACKS_DIR}"
    assert SANDBOX_STACK.fullmatch(f"gcp-sandbox-{LONGEST_SANDBOX_ID}")
    assert len(LONGEST_SANDBOX_ID) == 30
    assert len(LONGEST_PROJECT) == 30
    found = {stack: example_run(stack) for stack in EXAMPLES}
    found.update({f"longest {env}": longest_run(env) for env in ("dev", "prod", "sandbox")})
    return found


def each_run(runs: dict[str, ProgramRun]) -> Iterator[tuple[str, ProgramRun]]:
    yield from sorted(runs.items())


def test_no_resource_breaks_a_documented_limit(runs: dict[str, ProgramRun]) -> None:
    found = [
        f"{label}: {violation}"
        for label, run in each_run(runs)
        for violation in violations(resources_of(run), RULES)
    ]
    assert not found, "\n".join(found)


def test_every_rule_checks_something(runs: dict[str, ProgramRun]) -> None:
    used: set[Rule] = set()
    for _, run in each_run(runs):
        used |= applied_rules(resources_of(run), RULES)
    unused = [f"{rule.resource_type} {rule.field}" for rule in RULES if rule not in used]
    assert not unused, f"rules that never found a value: {unused}"


def test_the_longest_names_are_hashed_to_their_limits(runs: dict[str, ProgramRun]) -> None:
    """A 30-character project and sandbox id would overflow these names; short_name keeps them within."""
    run = runs["longest sandbox"]
    accounts = [r.inputs["accountId"] for r in run.of_type("gcp:serviceaccount/account:Account")]
    assert max(map(len, accounts)) == 30
    bucket = run.one("gcp:storage/bucket:Bucket").inputs["name"]
    assert len(bucket) == 63
    assert bucket.startswith(LONGEST_PROJECT)
    services = [r.inputs["name"] for r in run.of_type("gcp:cloudrunv2/service:Service")]
    assert max(map(len, services)) == 40  # cloud_run.MAX_SERVICE_NAME
    # Cloud Run gives the deterministic URL only while `<service>-<project number>` fits a 63-character DNS
    # label: it does with today's 12-digit project numbers and with a 13th digit.
    assert all(len(f"{service}-{'1' * 13}") <= 63 for service in services)
    # Sandboxes make no pool (no CI identity): the dev stack's, with the longest project, is the longest.
    dev = runs["longest dev"]
    pool = dev.one("gcp:iam/workloadIdentityPool:WorkloadIdentityPool").inputs["workloadIdentityPoolId"]
    assert len(pool) <= 32


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        # The tracking server's startup probe before this table: 30 x 10 s, past Cloud Run's 240 s.
        (
            {"template": {"containers": [{"startupProbe": {"periodSeconds": 10, "failureThreshold": 30}}]}},
            "startup probe allows 300 s",
        ),
        # Sizes the old config accepted and Cloud Run refuses.
        (
            {"template": {"containers": [{"resources": {"limits": {"cpu": "4", "memory": "1024Mi"}}}]}},
            "has 4 CPU with 1024 MiB; Cloud Run takes 2048-16384 MiB",
        ),
        (
            {"template": {"containers": [{"resources": {"limits": {"cpu": "8", "memory": "2048Mi"}}}]}},
            "has 8 CPU with 2048 MiB; Cloud Run takes 4096-32768 MiB",
        ),
        (
            {
                "template": {
                    "containers": [
                        {"ports": {"name": "h2c"}, "livenessProbe": {"httpGet": {"path": "/health"}}}
                    ]
                }
            },
            "has an HTTP livenessProbe on an h2c port",
        ),
        ({"name": "gcp-sandbox-feature-branch-checkout-flow-2-tracking"}, "is 51 characters; allowed 1-49"),
        ({"labels": {"stack": "Gcp-Dev"}}, "label stack='Gcp-Dev'"),
    ],
)
def test_the_table_catches_what_cloud_run_refuses(resource: dict, expected: str) -> None:
    found = violations([("gcp:cloudrunv2/service:Service", "svc", resource)], RULES)
    assert any(expected in str(violation) for violation in found), [str(v) for v in found]
    assert all(violation.doc.startswith("https://") for violation in found)
