"""Keyless CI: the OIDC provider, the exact trust and permissions of every CI role, the permissions boundary
that fences the roles they may create, and their access to each environment's Pulumi state."""

from typing import Any

import pytest

from infra.aws.boundary import BOUNDED_ROLE_ACTIONS, SANDBOX_BOUNDARY_NAME
from infra.tests.aws.conftest import (
    ACCOUNT_ID,
    REGION,
    REPOSITORY,
    config_for,
    policy,
    role_policy,
    run_aws,
    statements,
)
from testing.pulumi_program import ProgramRun

OIDC = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/policy:Policy"
CREATED_PROVIDER = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com"
# The account's provider, made outside this stack (here: by another stack's first `up`).
EXISTING_PROVIDER = "arn:aws:iam::210987654321:oidc-provider/token.actions.githubusercontent.com"
STATE = {
    "stateBackend": "s3://acme-ml-pulumi-state-dev?region=eu-west-1&awssdk=v2",
    "stateSecretsProvider": "awskms://alias/mlops-stack-pulumi-secrets-dev?region=eu-west-1",
}
SANDBOX_HOST = {
    "sandboxes": "true",
    "sandboxStateBackend": "s3://acme-ml-pulumi-state-sandbox?region=eu-west-1&awssdk=v2",
    "sandboxStateSecretsProvider": "awskms://alias/mlops-stack-pulumi-secrets-sandbox?region=eu-west-1",
}


def trust(run: ProgramRun, role_suffix: str) -> dict[str, Any]:
    (statement,) = statements(run.one(ROLE, role_suffix), "assumeRolePolicy").values()
    return statement


def subject_of(run: ProgramRun, role_suffix: str) -> str:
    return str(
        trust(run, role_suffix)["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
    )


@pytest.mark.parametrize(
    ("environment", "deploy", "preview"),
    [("dev", "environment:dev", "pull_request"), ("prod", "environment:prod", "ref:refs/heads/main")],
)
def test_roles_trust_exactly_one_subject_and_the_sts_audience(
    environment: str, deploy: str, preview: str
) -> None:
    run = run_aws(environment)
    for suffix, subject in (("-ci-deploy", deploy), ("-ci-preview", preview)):
        statement = trust(run, suffix)
        assert statement["Effect"] == "Allow"
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Principal"] == {"Federated": CREATED_PROVIDER}
        # StringEquals only: no StringLike anywhere, so no wildcard subject can slip in.
        assert statement["Condition"] == {
            "StringEquals": {
                "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                "token.actions.githubusercontent.com:sub": f"repo:{REPOSITORY}:{subject}",
            }
        }
        assert run.one(ROLE, suffix).inputs["maxSessionDuration"] == 3600


def test_deploy_role_trusts_the_configured_github_environment_and_prod_preview_the_configured_branch() -> (
    None
):
    run = run_aws("prod", config_for("prod", githubEnvironment="production", githubBranch="release"))
    assert subject_of(run, "-ci-deploy") == f"repo:{REPOSITORY}:environment:production"
    assert subject_of(run, "-ci-preview") == f"repo:{REPOSITORY}:ref:refs/heads/release"


def test_the_provider_is_created_for_github_with_the_sts_audience() -> None:
    provider = run_aws("dev").one(OIDC).inputs
    assert provider["url"] == "https://token.actions.githubusercontent.com"
    assert provider["clientIdLists"] == ["sts.amazonaws.com"]


def test_an_existing_provider_is_reused_not_created() -> None:
    run = run_aws("dev", config_for("dev", awsOidcProviderArn=EXISTING_PROVIDER))
    assert run.of_type(OIDC) == []
    assert trust(run, "-ci-deploy")["Principal"] == {"Federated": EXISTING_PROVIDER}


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_ci_identity_output_gives_both_role_arns_and_the_region(environment: str) -> None:
    run = run_aws(environment)
    stack = f"aws-{environment}"
    assert run.outputs["ciIdentity"] == {
        "deployRoleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-stack/{stack}/ci/{stack}-deploy-0001",
        "previewRoleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-stack/{stack}/ci/{stack}-preview-0001",
        "region": REGION,
    }
    assert "sandboxCiIdentity" not in run.outputs


def test_deploy_role_writes_workload_roles_only_with_the_stacks_boundary_which_never_comes_off() -> None:
    run = run_aws("dev")
    granted = role_policy(run, run.one(ROLE, "-ci-deploy"))
    workloads = f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-stack/aws-dev/workloads/*"
    boundary = f"arn:aws:iam::{ACCOUNT_ID}:policy/mlops-stack/aws-dev/aws-dev-workload-boundary"
    bounded = granted["ManageBoundedWorkloadRoles"]
    assert set(bounded["Action"]) == set(BOUNDED_ROLE_ACTIONS) >= {"iam:CreateRole", "iam:AttachRolePolicy"}
    assert bounded["Resource"] == [workloads]
    assert bounded["Condition"] == {"StringEquals": {"iam:PermissionsBoundary": boundary}}
    assert not {"iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy"} & set(
        granted["ManageWorkloadRoles"]["Action"]
    )
    assert granted["PassWorkloadRolesToEcs"]["Resource"] == [workloads]
    assert granted["PassWorkloadRolesToEcs"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": ["ecs-tasks.amazonaws.com", "ecs.amazonaws.com"]}
    }
    assert granted["BoundaryStays"] == {
        "Sid": "BoundaryStays",
        "Effect": "Deny",
        "Action": ["iam:DeleteRolePermissionsBoundary"],
        "Resource": ["*"],
    }
    # Its own roles and the boundary are read-only to it: widening CI takes an admin.
    ci_roles = f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-stack/aws-dev/ci/*"
    assert granted["ReadCiIdentity"]["Resource"] == [ci_roles]
    assert granted["ReadBoundary"]["Resource"] == [boundary]
    for statement in granted.values():
        if statement["Effect"] == "Allow":
            assert statement["Resource"] != ["*"], statement["Sid"]


def test_every_workload_role_carries_the_boundary_and_the_boundary_caps_at_power_user(
    environment: str,
) -> None:
    run = run_aws(environment)
    stack = f"aws-{environment}" if environment != "sandbox" else "aws-sandbox-alice"
    if environment == "sandbox":
        boundary_arn = f"arn:aws:iam::{ACCOUNT_ID}:policy/mlops-stack/sandbox/{SANDBOX_BOUNDARY_NAME}"
        assert not run.of_type(POLICY)  # the dev stack with sandboxes: true made it
    else:
        boundary = run.one(POLICY, "-workload-boundary")
        boundary_arn = f"arn:aws:iam::{ACCOUNT_ID}:policy/mlops-stack/{stack}/{stack}-workload-boundary"
        document = statements(boundary)
        assert document["AtMostPowerUser"]["NotAction"] == ["iam:*", "organizations:*", "account:*"]
        assert document["NoOtherEnvironments"]["Condition"] == {
            "StringNotEquals": {"aws:ResourceTag/environment": environment},
            "Null": {"aws:ResourceTag/environment": "false"},
        }
    workload_roles = [r for r in run.of_type(ROLE) if "/workloads/" in r.inputs["path"]]
    assert len(workload_roles) >= 3  # the ECS infrastructure role and each service's task + execution roles
    assert {r.inputs.get("permissionsBoundary") for r in workload_roles} == {boundary_arn}


def test_preview_role_is_read_only_and_reads_no_data_but_its_state() -> None:
    run = run_aws("dev", config_for("dev", **STATE))
    preview = run.one(ROLE, "-ci-preview")
    attachments = {
        a.inputs["policyArn"]
        for a in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == f"{preview.inputs['namePrefix']}0001"
    }
    assert attachments == {"arn:aws:iam::aws:policy/ReadOnlyAccess"}
    granted = role_policy(run, preview)
    assert granted["NoObjectReads"]["NotResource"] == ["arn:aws:s3:::acme-ml-pulumi-state-dev/*"]
    assert granted["NoSecretValues"]["Resource"] == ["*"]
    assert granted["NoArtifactKey"]["Resource"] == [
        f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:{run.one('aws:kms/key:Key').name}"
    ]
    assert granted["ReadState"]["Action"] == ["s3:GetObject"]
    assert granted["StateKey"]["Action"] == ["kms:Decrypt"]
    assert not any("s3:PutObject" in s["Action"] for s in granted.values() if s["Effect"] == "Allow")


def test_deploy_and_preview_reach_only_their_environments_state_and_key() -> None:
    run = run_aws("dev", config_for("dev", **STATE))
    deploy = role_policy(run, run.one(ROLE, "-ci-deploy"))
    assert deploy["ListState"]["Resource"] == ["arn:aws:s3:::acme-ml-pulumi-state-dev"]
    assert deploy["WriteState"] == {
        "Sid": "WriteState",
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
        "Resource": ["arn:aws:s3:::acme-ml-pulumi-state-dev/*"],
    }
    assert deploy["StateKey"]["Resource"] == [f"arn:aws:kms:eu-west-1:{ACCOUNT_ID}:key/*"]
    assert deploy["StateKey"]["Condition"] == {
        "ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/mlops-stack-pulumi-secrets-dev"}
    }
    assert deploy["NoOtherEnvironments"]["Condition"]["StringNotEquals"] == {
        "aws:ResourceTag/environment": "dev"
    }


def test_a_state_prefix_narrows_listing_and_objects() -> None:
    prefixed = {**STATE, "stateBackend": "s3://acme-ml-pulumi-state/dev?region=eu-west-1"}
    run = run_aws("dev", config_for("dev", **prefixed))
    deploy = role_policy(run, run.one(ROLE, "-ci-deploy"))
    assert deploy["ListState"]["Condition"] == {"StringLike": {"s3:prefix": ["dev/*"]}}
    assert deploy["WriteState"]["Resource"] == ["arn:aws:s3:::acme-ml-pulumi-state/dev/*"]


def test_the_dev_stack_makes_the_sandboxes_role_fenced_to_sandbox_stacks() -> None:
    run = run_aws("dev", config_for("dev", **SANDBOX_HOST))
    assert subject_of(run, "-ci-sandbox") == f"repo:{REPOSITORY}:environment:sandbox"
    granted = role_policy(run, run.one(ROLE, "-ci-sandbox"))
    sandbox_boundary = f"arn:aws:iam::{ACCOUNT_ID}:policy/mlops-stack/sandbox/{SANDBOX_BOUNDARY_NAME}"
    assert granted["ManageBoundedWorkloadRoles"]["Resource"] == [
        f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-stack/aws-sandbox-*"
    ]
    assert granted["ManageBoundedWorkloadRoles"]["Condition"] == {
        "StringEquals": {"iam:PermissionsBoundary": sandbox_boundary}
    }
    assert granted["NoOtherEnvironments"]["Condition"]["StringNotEquals"] == {
        "aws:ResourceTag/environment": "sandbox"
    }
    assert granted["WriteState"]["Resource"] == ["arn:aws:s3:::acme-ml-pulumi-state-sandbox/*"]
    boundary = run.one(POLICY, "-ci-sandbox-boundary").inputs
    assert (boundary["name"], boundary["path"]) == (SANDBOX_BOUNDARY_NAME, "/mlops-stack/sandbox/")
    assert policy(run.one(POLICY, "-ci-sandbox-boundary"))["Statement"][2]["Condition"][
        "StringNotEquals"
    ] == {"aws:ResourceTag/environment": "sandbox"}
    assert run.outputs["sandboxCiIdentity"] == {
        "deployRoleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-stack/aws-dev/ci/aws-dev-sandbox-0001",
        "region": REGION,
    }


def test_a_sandbox_stack_makes_no_ci_role_and_no_oidc_provider() -> None:
    run = run_aws("sandbox")
    assert not [r for r in run.of_type(ROLE) if "/ci/" in r.inputs["path"]]
    assert not run.of_type(OIDC)
    assert run.outputs["ciIdentity"] == {}
