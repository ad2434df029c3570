"""GitHub Actions as an OIDC identity provider: the issuer, and which token subjects each CI identity trusts.

One table for the three clouds, so a GCP workload identity binding, an AWS role trust and an Azure federated
credential all say the same thing. GitHub sets the token's `sub` claim and a workflow cannot change it
(https://docs.github.com/en/actions/reference/security/oidc#example-subject-claims):

- a job that runs in a GitHub environment E: `repo:OWNER/REPO:environment:E`, whatever the event;
- a pull_request job without an environment: `repo:OWNER/REPO:pull_request`;
- any other job without an environment (push, schedule, dispatch): `repo:OWNER/REPO:ref:refs/heads/B`.

The isolation model (README, "Set up your team"): each environment's deploy identity trusts only jobs in its
GitHub environment (whose protection rules gate it); preview identities of dev and staging trust pull
requests; prod's preview identity trusts only jobs on the deploy branch (the deploy workflow previews prod
there before the prod approval), never a pull request, so PR code never runs with prod credentials; the
sandboxes' deploy identity, made by the dev stack, trusts only jobs in the GitHub environment `sandbox`;
each environment's retrain identity trusts only jobs in the GitHub environment `retrain-<environment>` (the
retrain workflow, .github/workflows/retrain.yml) and can read the one MLflow admin password and nothing else.
Sandbox stacks make no CI identity.
"""

from enum import StrEnum
from typing import Protocol

ISSUER = "https://token.actions.githubusercontent.com"
SANDBOX_ENVIRONMENT = "sandbox"  # the GitHub environment sandbox jobs run in
RETRAIN_ENVIRONMENT_PREFIX = "retrain-"  # + dev/staging/prod: the GitHub environment a retrain job runs in


class CiRole(StrEnum):
    """The CI identities a stack can make; logical names are `<stack>-ci-<role>`."""

    DEPLOY = "deploy"
    PREVIEW = "preview"
    SANDBOX = "sandbox"
    # Reads the stack's MLflow admin password (the cloud's secret store), nothing else: the retrain workflow
    # trains against the stack's MLflow with it and opens a pull request that pins the winner.
    RETRAIN = "retrain"


def environment_subject(repository: str, environment: str) -> str:
    return f"repo:{repository}:environment:{environment}"


def retrain_environment(environment: str) -> str:
    """The GitHub environment the retrain workflow runs in for a stack of `environment` (dev, staging, prod).

    Its own environment, not the deploy one: its protection rules (deployment branches, reviewers) are set
    for retraining, and a deploy identity never trusts a retrain job nor the other way round."""
    return f"{RETRAIN_ENVIRONMENT_PREFIX}{environment}"


def pull_request_subject(repository: str) -> str:
    return f"repo:{repository}:pull_request"


def branch_subject(repository: str, branch: str) -> str:
    return f"repo:{repository}:ref:refs/heads/{branch}"


class TrustSettings(Protocol):
    """What of a stack's settings decides its CI trust (`infra.config.StackSettings` has all of it)."""

    @property
    def github_repository(self) -> str: ...
    @property
    def github_environment(self) -> str: ...
    @property
    def github_branch(self) -> str: ...
    @property
    def environment(self) -> str: ...
    @property
    def hosts_sandboxes(self) -> bool: ...
    @property
    def is_sandbox(self) -> bool: ...


def trusted_subjects(settings: TrustSettings) -> dict[CiRole, str]:
    """The one OIDC subject each CI identity of this stack trusts (empty for a sandbox: it makes none)."""
    if settings.is_sandbox:
        return {}
    repository = settings.github_repository
    preview = (
        branch_subject(repository, settings.github_branch)
        if settings.environment == "prod"
        else pull_request_subject(repository)
    )
    subjects = {
        CiRole.DEPLOY: environment_subject(repository, settings.github_environment),
        CiRole.PREVIEW: preview,
        # Every non-sandbox stack: each has its own MLflow, and a version is pinned in the stack whose MLflow
        # trained it (prod's pins come from retraining against prod's MLflow, README "Retraining").
        CiRole.RETRAIN: environment_subject(repository, retrain_environment(settings.environment)),
    }
    if settings.hosts_sandboxes:
        subjects[CiRole.SANDBOX] = environment_subject(repository, SANDBOX_ENVIRONMENT)
    return subjects
