"""The join between the workflows and the stacks' CI identities: for every workflow job that logs in to a
cloud, the OIDC subject GitHub will put in its token must be trusted by exactly the identity the job picks,
and refused by every other identity of every stack (a prod identity refuses PR and `dev` subjects).

Subjects are GitHub's documented formats
(https://docs.github.com/en/actions/reference/security/oidc#example-subject-claims): a job with an
environment gets `repo:R:environment:E` whatever the event; a pull_request job without one gets
`repo:R:pull_request`; any other job without one gets `repo:R:ref:refs/heads/<branch>` (schedule and
workflow_dispatch run on the default branch, `main`). Trust is read from what each cloud's program would send
(GCP workload identity bindings, AWS role trust policies, Azure federated credentials) for every stack file
that exists, the dev stack hosting the sandboxes' identity.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.tests.paths import REPOSITORY_ROOT
from testing.pulumi_program import EXAMPLE_REPOSITORY, ProgramRun, example_stack_config

WORKFLOWS = REPOSITORY_ROOT / ".github" / "workflows"
LOGIN_ACTION = "./.github/actions/cloud-login"
PICK_IDENTITY = REPOSITORY_ROOT / ".github" / "actions" / "cloud-login" / "pick_identity.py"
DEFAULT_BRANCH = "main"
ENVIRONMENTS = ("dev", "staging", "prod")
CLOUDS = ("gcp", "aws", "azure")
# Matrix values that a job computes at run time: the test checks the computing script names exactly these.
MATRIX_SOURCES = {("preview.yml", "preview"): ("stacks", r"for environment in ([a-z ]+); do")}


def _load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    if True in document:  # YAML 1.1 reads the key `on` as True
        document["on"] = document.pop(True)
    return dict(document)


@dataclass(frozen=True)
class Login:
    """One way a job logs in: under which event, in which GitHub environment, with which identity."""

    where: str  # workflow:job
    event: str
    branch: str
    job_environment: str | None  # the GitHub environment the job runs in (sets the OIDC subject)
    identity: str  # the CI_IDENTITIES key the job picks
    role: str  # deploy or preview
    guarded_by: str  # the job's `if` (and its caller's), to tell "skipped by design"
    session_seconds: int  # the AWS session the login asks for
    job_timeout_minutes: int

    def subject(self, repository: str) -> str:
        if self.job_environment is not None:
            return f"repo:{repository}:environment:{self.job_environment}"
        if self.event == "pull_request":
            return f"repo:{repository}:pull_request"
        return f"repo:{repository}:ref:refs/heads/{self.branch}"


def _input(match: re.Match[str], inputs: dict[str, str]) -> str:
    """`inputs.X`, or `inputs.X || 'default'` (a schedule has no inputs: the default applies)."""
    value = inputs.get(match[1]) or match[2]
    assert value is not None, f"no value for inputs.{match[1]}"
    return value


def _resolve(value: Any, inputs: dict[str, str], matrix_value: str | None) -> str | None:
    if value is None:
        return None
    text = str(value)
    text = re.sub(r"\$\{\{\s*inputs\.(\w+)(?:\s*\|\|\s*'([^']*)')?\s*\}\}", lambda m: _input(m, inputs), text)
    if matrix_value is not None:
        text = re.sub(r"\$\{\{\s*matrix\.environment\s*\}\}", matrix_value, text)
    assert "${{" not in text, f"cannot resolve {value!r}"
    return text


def _events(workflow: dict[str, Any], condition: str) -> list[str]:
    """The workflow's events, narrowed to those the job's `if` names (`github.event_name == '...'`)."""
    named = re.findall(r"github\.event_name == '(\w+)'", condition)
    events = list(workflow["on"])
    return [event for event in events if not named or event in named]


def _matrix_values(path: Path, job_name: str, jobs: dict[str, Any]) -> list[str | None]:
    source = MATRIX_SOURCES.get((path.name, job_name))
    if source is None:
        return [None]
    producer, pattern = source
    script = " ".join(step.get("run", "") for step in jobs[producer]["steps"])
    match = re.search(pattern, script)
    assert match, f"{path.name}:{producer} no longer computes the matrix as the test expects"
    values: list[str | None] = [*match[1].split()]
    return values


def _dispatch_inputs(workflow: dict[str, Any], event: str) -> list[dict[str, str]]:
    """Each set of inputs a run of `event` can have: every option of a dispatch's choice inputs (each picks
    another stack), none for other events."""
    trigger = workflow["on"].get(event) if event == "workflow_dispatch" else None
    choices = {
        name: [str(option) for option in spec["options"]]
        for name, spec in ((trigger or {}).get("inputs") or {}).items()
        if spec.get("type") == "choice"
    }
    runs: list[dict[str, str]] = [{}]
    for name, options in choices.items():
        runs = [{**run, name: option} for run in runs for option in options]
    return runs


def logins() -> Iterator[Login]:
    for path in sorted(WORKFLOWS.glob("*.yml")):
        if path.name.startswith("_"):
            continue  # reusable workflows are followed from their callers
        workflow = _load(path)
        jobs = workflow["jobs"]
        for name, job in jobs.items():
            inner: list[tuple[str, dict[str, Any], dict[str, str]]] = [(name, job, {})]
            if "uses" in job:
                called = _load(REPOSITORY_ROOT / job["uses"].removeprefix("./"))
                inputs = {key: str(value) for key, value in job.get("with", {}).items()}
                inner = [(f"{name}/{n}", j, inputs) for n, j in called["jobs"].items()]
            for inner_name, inner_job, inputs in inner:
                for step in inner_job.get("steps", []):
                    if step.get("uses") != LOGIN_ACTION:
                        continue
                    guard = f"{job.get('if', '')} {inner_job.get('if', '')}"
                    for matrix_value in _matrix_values(path, name, jobs):
                        for event in _events(workflow, guard):
                            trigger = workflow["on"].get(event)
                            branches = trigger.get("branches") if isinstance(trigger, dict) else None
                            branch = (branches or [DEFAULT_BRANCH])[0]
                            for run_inputs in _dispatch_inputs(workflow, event) if not inputs else [inputs]:
                                yield Login(
                                    where=f"{path.name}:{inner_name}",
                                    event=event,
                                    branch=branch,
                                    job_environment=_resolve(
                                        inner_job.get("environment"), run_inputs, matrix_value
                                    ),
                                    identity=str(
                                        _resolve(step["with"]["environment"], run_inputs, matrix_value)
                                    ),
                                    role=str(step["with"]["role"]),
                                    guarded_by=guard,
                                    session_seconds=int(step["with"]["session-seconds"]),
                                    job_timeout_minutes=int(inner_job["timeout-minutes"]),
                                )


# --- what each cloud's program trusts -----------------------------------------------------------------


def _gcp_trust(run: ProgramRun, stack: str) -> dict[str, str]:
    found = {}
    for binding in run.of_type("gcp:serviceaccount/iAMMember:IAMMember"):
        match = re.fullmatch(rf"{stack}-ci-(\w+)-federation", binding.name)
        if match and binding.inputs["role"] == "roles/iam.workloadIdentityUser":
            found[match[1]] = binding.inputs["member"].split("/subject/", 1)[1]
    provider = run.one("gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider").inputs
    assert f"assertion.repository == '{EXAMPLE_REPOSITORY}'" in provider["attributeCondition"]
    return found


def _aws_trust(run: ProgramRun, stack: str) -> dict[str, str]:
    found = {}
    for role in run.of_type("aws:iam/role:Role"):
        match = re.fullmatch(rf"{stack}-ci-(\w+)", role.name)
        if match:
            (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
            assert set(statement["Condition"]) == {"StringEquals"}  # no wildcard subject
            found[match[1]] = statement["Condition"]["StringEquals"][
                "token.actions.githubusercontent.com:sub"
            ]
    return found


def _azure_trust(run: ProgramRun, stack: str) -> dict[str, str]:
    found = {}
    for credential in run.of_type("azure-native:managedidentity:FederatedIdentityCredential"):
        match = re.fullmatch(rf"{stack}-ci-(\w+)-github", credential.name)
        if match:
            found[match[1]] = credential.inputs["subject"]
    return found


def _run(cloud: str, config: dict[str, str], stack: str) -> ProgramRun:
    if cloud == "gcp":
        from infra.tests.gcp.conftest import run_stack

        return run_stack(config, stack)
    if cloud == "aws":
        from infra.tests.aws.conftest import calls, outputs_for
        from testing.pulumi_program import run_program

        return run_program(config, stack, outputs_for=outputs_for, calls=calls)
    from infra.tests.azure.conftest import run_azure

    return run_azure(config, stack).run


TRUST: dict[str, Callable[[ProgramRun, str], dict[str, str]]] = {
    "gcp": _gcp_trust,
    "aws": _aws_trust,
    "azure": _azure_trust,
}


@cache
def stack_runs(cloud: str) -> dict[str, ProgramRun]:
    """Each existing stack file's program under mocks, by environment (dev hosts the sandboxes' identity)."""
    runs = {}
    for environment in ENVIRONMENTS:
        stack = f"{cloud}-{environment}"
        if not (REPOSITORY_ROOT / "stacks" / f"Pulumi.{stack}.yaml").exists():
            continue
        config = example_stack_config(stack)
        if environment == "dev":
            config["mlops-stack:sandboxes"] = "true"
        runs[environment] = _run(cloud, config, stack)
    return runs


def _identity_key(environment: str, role: str) -> tuple[str, str]:
    """The CI_IDENTITIES key and role a stack's CI identity is picked by (the sandboxes' lives in dev)."""
    return ("sandbox", "deploy") if role == "sandbox" else (environment, role)


@cache
def trusted_identities(cloud: str) -> dict[tuple[str, str], str]:
    """(CI_IDENTITIES key, role) -> the one subject that identity trusts, over every existing stack file."""
    found: dict[tuple[str, str], str] = {}
    for environment, run in stack_runs(cloud).items():
        for role, subject in TRUST[cloud](run, f"{cloud}-{environment}").items():
            key = _identity_key(environment, role)
            assert key not in found, key
            found[key] = subject
    return found


def aws_session_limits() -> dict[tuple[str, str], int]:
    """(CI_IDENTITIES key, role) -> the MaxSessionDuration the AWS program gives that CI role."""
    limits = {}
    for environment, run in stack_runs("aws").items():
        for role in run.of_type("aws:iam/role:Role"):
            match = re.fullmatch(rf"aws-{environment}-ci-(\w+)", role.name)
            if match:
                limits[_identity_key(environment, match[1])] = int(role.inputs["maxSessionDuration"])
    return limits


def stack_exists(cloud: str, environment: str) -> bool:
    return (
        environment == "sandbox"
        or (REPOSITORY_ROOT / "stacks" / f"Pulumi.{cloud}-{environment}.yaml").exists()
    )


ALL_LOGINS = list(logins())


def test_the_workflows_log_in_where_the_model_says() -> None:
    """A change that adds, drops or moves a login must be looked at here on purpose."""
    seen = {
        (login.where, login.event, login.job_environment, login.identity, login.role) for login in ALL_LOGINS
    }
    assert seen == {
        ("deploy.yml:dev/up", "push", "dev", "dev", "deploy"),
        ("deploy.yml:staging/up", "push", "staging", "staging", "deploy"),
        ("deploy.yml:prod-preview", "push", None, "prod", "preview"),
        ("deploy.yml:prod/up", "push", "prod", "prod", "deploy"),
        ("preview.yml:preview", "pull_request", None, "dev", "preview"),
        ("preview.yml:preview", "pull_request", None, "staging", "preview"),
        ("sandbox.yml:up", "pull_request", "sandbox", "sandbox", "deploy"),
        ("sandbox.yml:destroy", "pull_request", "sandbox", "sandbox", "deploy"),
        ("sandbox.yml:sweep", "schedule", "sandbox", "sandbox", "deploy"),
        ("sandbox.yml:sweep", "workflow_dispatch", "sandbox", "sandbox", "deploy"),
        # The schedule retrains dev; a dispatch any stack, each in its own retrain-<environment>.
        ("retrain.yml:retrain", "schedule", "retrain-dev", "dev", "retrain"),
        ("retrain.yml:retrain", "workflow_dispatch", "retrain-dev", "dev", "retrain"),
        ("retrain.yml:retrain", "workflow_dispatch", "retrain-staging", "staging", "retrain"),
        ("retrain.yml:retrain", "workflow_dispatch", "retrain-prod", "prod", "retrain"),
    }


@pytest.mark.parametrize("cloud", CLOUDS)
@pytest.mark.parametrize("login", ALL_LOGINS, ids=lambda login: f"{login.where}[{login.event}]")
def test_each_login_is_trusted_by_the_identity_it_picks_and_refused_by_every_other(
    cloud: str, login: Login
) -> None:
    trusted = trusted_identities(cloud)
    environment = login.identity
    if not stack_exists(cloud, environment):
        # Skipped by design: the job (or its caller) runs only when the stack file exists, or (a retrain
        # dispatched for a stack without a file) fails at its first step, saying so, before any login.
        assert (
            "needs.plan.outputs.staging == 'true'" in login.guarded_by
            or login.where.startswith("preview.yml")
            or (login.where == "retrain.yml:retrain" and login.event == "workflow_dispatch")
        ), f"{login.where} logs in to {cloud}-{environment}, whose stack file does not exist, without a guard"
        return
    subject = login.subject(EXAMPLE_REPOSITORY)
    picked = (environment, login.role)
    assert trusted.get(picked) == subject, f"{login.where}: {cloud} {picked} trusts {trusted.get(picked)!r}"
    others = {key: value for key, value in trusted.items() if key != picked and value == subject}
    assert others == {}, f"{login.where}'s token ({subject}) would also be accepted by {others}"


@pytest.mark.parametrize(
    "login",
    [login for login in ALL_LOGINS if stack_exists("aws", login.identity)],
    ids=lambda login: f"{login.where}[{login.event}]",
)
def test_each_aws_session_outlasts_its_job_and_fits_the_roles_maximum(login: Login) -> None:
    """Credentials are not refreshed during a job, and an `up` that loses them mid-way leaves the stack
    locked; STS refuses a login asking for more than the role's MaxSessionDuration (DurationSeconds in
    https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html). Jobs of stacks
    without a file do not run (the trust test holds their guard)."""
    maximum = aws_session_limits()[(login.identity, login.role)]
    assert login.job_timeout_minutes * 60 <= login.session_seconds <= maximum, (
        f"{login.where}: a {login.job_timeout_minutes}-minute job asks for {login.session_seconds} s;"
        f" the {login.identity} {login.role} role allows {maximum} s"
    )


@pytest.mark.parametrize("cloud", CLOUDS)
def test_prod_identities_refuse_pull_requests_and_other_environments(cloud: str) -> None:
    trusted = trusted_identities(cloud)
    for role in ("deploy", "preview", "retrain"):
        assert trusted[("prod", role)] not in (
            f"repo:{EXAMPLE_REPOSITORY}:pull_request",
            f"repo:{EXAMPLE_REPOSITORY}:environment:dev",
            f"repo:{EXAMPLE_REPOSITORY}:environment:sandbox",
        )
    shared: dict[str, set[tuple[str, str]]] = {}
    for key, subject in trusted.items():
        shared.setdefault(subject, set()).add(key)
    # One subject, one identity; only dev's and staging's previews both take pull requests.
    for subject, keys in shared.items():
        assert len(keys) == 1 or keys <= {("dev", "preview"), ("staging", "preview")}, (subject, keys)


def test_the_preview_matrix_skips_a_missing_stack_file() -> None:
    script = " ".join(
        step.get("run", "") for step in _load(WORKFLOWS / "preview.yml")["jobs"]["stacks"]["steps"]
    )
    assert '[ -f "$stack_file" ] || continue' in script


# --- the login action picks exactly what the job asked for, or fails --------------------------------------

IDENTITIES = {
    "dev": {
        "workloadIdentityProvider": "projects/1/locations/global/workloadIdentityPools/p/providers/github",
        "deployServiceAccount": "gcp-dev-ci-deploy@p.iam.gserviceaccount.com",
        "previewServiceAccount": "gcp-dev-ci-preview@p.iam.gserviceaccount.com",
        "retrainServiceAccount": "gcp-dev-ci-retrain@p.iam.gserviceaccount.com",
        "trackingPasswordSecret": "gcp-dev-mlflow-admin-password",
        "project": "p",
    },
    "prod": {
        "workloadIdentityProvider": "projects/1/locations/global/workloadIdentityPools/q/providers/github",
        "deployServiceAccount": "",
        "previewServiceAccount": "gcp-prod-ci-preview@q.iam.gserviceaccount.com",
    },
}


def pick(tmp_path: Path, environment: str, role: str, cloud: str = "gcp") -> tuple[int, str, str]:
    output = tmp_path / "github_output"
    output.write_text("")
    env = {
        **os.environ,
        "CLOUD": cloud,
        "IDENTITIES": json.dumps(IDENTITIES),
        "ENVIRONMENT": environment,
        "ROLE": role,
        "GITHUB_OUTPUT": str(output),
    }
    result = subprocess.run(
        [sys.executable, str(PICK_IDENTITY)], env=env, capture_output=True, text=True, check=False, timeout=30
    )
    return result.returncode, result.stdout, output.read_text()


def test_the_login_action_picks_the_requested_roles_principal(tmp_path: Path) -> None:
    code, _, written = pick(tmp_path, "dev", "deploy")
    assert code == 0
    assert "principal=gcp-dev-ci-deploy@p.iam.gserviceaccount.com" in written.splitlines()


def test_a_deploy_job_without_a_deploy_identity_fails_instead_of_using_the_preview_one(
    tmp_path: Path,
) -> None:
    code, printed, written = pick(tmp_path, "prod", "deploy")
    assert code == 1
    assert written == ""
    assert "::error::vars.CI_IDENTITIES['prod'] has no deployServiceAccount" in printed
    code, printed, _ = pick(tmp_path, "staging", "preview")
    assert code == 1
    assert "has no entry for environment 'staging'" in printed


def test_a_retrain_job_logs_in_as_the_retrain_identity_and_never_as_another(tmp_path: Path) -> None:
    code, _, written = pick(tmp_path, "dev", "retrain")
    assert code == 0
    assert "principal=gcp-dev-ci-retrain@p.iam.gserviceaccount.com" in written.splitlines()
    code, printed, written = pick(tmp_path, "prod", "retrain")  # prod's entry has no retrain identity
    assert code == 1
    assert written == ""
    assert "::error::vars.CI_IDENTITIES['prod'] has no retrainServiceAccount" in printed
    code, printed, _ = pick(tmp_path, "dev", "admin")
    assert code == 1
    assert "role must be one of deploy, preview, retrain" in printed


@pytest.mark.parametrize("cloud", CLOUDS)
def test_the_login_action_picks_the_retrain_field_each_cloud_outputs(cloud: str) -> None:
    """Join: the field pick_identity reads for a retrain job is one the cloud's `ciIdentity` output has, and
    so is the secret reference the retrain workflow reads the password with."""
    sys.path.insert(0, str(PICK_IDENTITY.parent))
    try:
        from pick_identity import PRINCIPAL
    finally:
        sys.path.pop(0)
    workflow = (WORKFLOWS / "retrain.yml").read_text()
    for environment, run in stack_runs(cloud).items():
        identity = run.outputs["ciIdentity"]
        assert identity.get(PRINCIPAL[cloud]["retrain"]), (cloud, environment)
        assert identity.get("trackingPasswordSecret"), (cloud, environment)
    assert ".trackingPasswordSecret }}" in workflow
