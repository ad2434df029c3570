"""Keyless CI: the OIDC provider, and the exact trust and permissions of the deploy and preview roles."""

import pytest

from infra.tests.aws.conftest import (
    ACCOUNT_ID,
    REGION,
    REPOSITORY,
    bucket_name,
    config_for,
    role_policy,
    run_aws,
    statements,
)

OIDC = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
ROLE = "aws:iam/role:Role"
CREATED_PROVIDER = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com"
# The account's provider, made outside this stack (here: by another stack's first `up`).
EXISTING_PROVIDER = "arn:aws:iam::210987654321:oidc-provider/token.actions.githubusercontent.com"


def _trust(role_inputs_statements: dict[str, dict[str, object]]) -> dict[str, object]:
    (statement,) = role_inputs_statements.values()
    return statement


@pytest.mark.parametrize(
    ("role_suffix", "subject"),
    [("-ci-deploy", "environment:{env}"), ("-ci-preview", "pull_request")],
)
def test_roles_trust_exactly_one_subject_and_the_sts_audience(
    environment: str, role_suffix: str, subject: str
) -> None:
    run = run_aws(environment)
    trust = _trust(statements(run.one(ROLE, role_suffix), "assumeRolePolicy"))
    assert trust["Effect"] == "Allow"
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert trust["Principal"] == {"Federated": CREATED_PROVIDER}
    # StringEquals only: no StringLike anywhere, so no wildcard subject can slip in.
    assert trust["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": f"repo:{REPOSITORY}:{subject.format(env=environment)}",
        }
    }


def test_deploy_role_trusts_the_configured_github_environment() -> None:
    run = run_aws("prod", config_for("prod", githubEnvironment="production"))
    trust = _trust(statements(run.one(ROLE, "-ci-deploy"), "assumeRolePolicy"))
    assert trust["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] == (  # type: ignore[index]
        f"repo:{REPOSITORY}:environment:production"
    )


def test_the_provider_is_created_for_github_with_the_sts_audience() -> None:
    provider = run_aws("dev").one(OIDC).inputs
    assert provider["url"] == "https://token.actions.githubusercontent.com"
    assert provider["clientIdLists"] == ["sts.amazonaws.com"]


def test_an_existing_provider_is_reused_not_created() -> None:
    run = run_aws("dev", config_for("dev", awsOidcProviderArn=EXISTING_PROVIDER))
    assert run.of_type(OIDC) == []
    trust = _trust(statements(run.one(ROLE, "-ci-deploy"), "assumeRolePolicy"))
    assert trust["Principal"] == {"Federated": EXISTING_PROVIDER}


def test_ci_identity_output_gives_both_role_arns_and_the_region(environment: str) -> None:
    run = run_aws(environment)
    stack = run.outputs["registry"].rsplit("/", 1)[1]
    identity = run.outputs["ciIdentity"]
    assert identity == {
        "deployRoleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-stack/{stack}/ci/{stack}-deploy-0001",
        "previewRoleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-stack/{stack}/ci/{stack}-preview-0001",
        "region": REGION,
    }


def test_deploy_role_manages_iam_only_under_the_stacks_workload_path() -> None:
    run = run_aws("dev")
    granted = role_policy(run, run.one(ROLE, "-ci-deploy"))
    workloads = f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-stack/aws-dev/workloads/*"
    assert granted["ManageWorkloadRoles"]["Resource"] == [workloads]
    assert granted["PassWorkloadRolesToEcs"] == {
        "Sid": "PassWorkloadRolesToEcs",
        "Effect": "Allow",
        "Action": ["iam:PassRole"],
        "Resource": [workloads],
        "Condition": {
            "StringEquals": {"iam:PassedToService": ["ecs-tasks.amazonaws.com", "ecs.amazonaws.com"]}
        },
    }
    # Its own roles are read-only to it: widening CI's trust or permissions takes an admin.
    ci_roles = f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-stack/aws-dev/ci/*"
    assert granted["ReadCiIdentity"]["Resource"] == [ci_roles]
    assert all(action.startswith(("iam:Get", "iam:List")) for action in granted["ReadCiIdentity"]["Action"])
    assert granted["ReadOidcProvider"]["Resource"] == [CREATED_PROVIDER]
    assert granted["CreateServiceLinkedRoles"]["Condition"]["StringEquals"]["iam:AWSServiceName"]
    for statement in granted.values():
        assert "*" not in statement["Resource"]


def test_preview_role_is_read_only_and_denied_this_stacks_data() -> None:
    run = run_aws("dev")
    preview = run.one(ROLE, "-ci-preview")
    attachments = {
        a.inputs["policyArn"]
        for a in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == f"{preview.inputs['namePrefix']}0001"
    }
    assert attachments == {"arn:aws:iam::aws:policy/ReadOnlyAccess"}
    denied = role_policy(run, preview)
    assert {s["Effect"] for s in denied.values()} == {"Deny"}
    bucket = f"arn:aws:s3:::{bucket_name(run)}"
    assert denied["NoArtifactReads"]["Resource"] == [f"{bucket}/mlflow/*"]
    assert denied["NoSecretValues"]["Resource"] == [
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:mlops-stack/aws-dev/*"
    ]
    assert denied["NoArtifactKey"]["Resource"] == [
        f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:{run.one('aws:kms/key:Key').name}"
    ]
