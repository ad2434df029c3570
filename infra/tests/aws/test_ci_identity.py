"""Keyless CI on AWS, held to the isolation model: who each role trusts, and what each may do, evaluated
against the requests a real `up` makes (infra/tests/aws/iam_requests.py) with AWS's documented evaluation
logic (testing/iam_policy.py) and AWS's managed policies as moto ships them (PowerUserAccess, ReadOnlyAccess,
AmazonECSInfrastructureRoleforExpressGatewayServices).

Stacks: aws-dev (with sandboxes), aws-prod, and a sandbox with the longest id config accepts, all in one
account, which is the case the fence has to hold in (one account per environment is the recommendation).
"""

import json
import re
from typing import Any

import pulumi
import pytest

from infra.aws.account import Account
from infra.aws.ci_identity import (
    DEPLOY_SESSION_SECONDS,
    PREVIEW_SESSION_SECONDS,
    RETRAIN_SESSION_SECONDS,
)
from infra.aws.fence import (
    DASHBOARD_ACTIONS,
    ENVIRONMENT_TAG,
    EXPRESS_INFRASTRUCTURE_STATEMENTS,
    sandbox_scope,
)
from infra.aws.limits import DASHBOARD_NAME
from infra.config import SANDBOX_STACK as SANDBOX_NAME
from infra.config import ConfigError
from infra.dashboards import dashboard_name
from infra.naming import labels
from infra.platform import load_stack_settings
from infra.tests.aws.conftest import ACCOUNT_ID, REGION, REPOSITORY, config_for, with_model
from infra.tests.aws.iam_requests import (
    KEY_IDS,
    POLICY,
    ROLE,
    bucket_policies,
    calls_with_aliases,
    creation_requests,
    default_tags,
    key_arn,
    outputs_with_iam,
    policies_by_arn,
    principal,
    run_stack,
)
from mlops_stack.state_backends.aws import other_environments_statement
from testing.iam_policy import (
    Decision,
    Principal,
    Request,
    ResourcePolicy,
    conditions_hold,
    decide,
    decide_all,
    resource_matches,
)
from testing.pulumi_program import ProgramRun, Registered, run_program

OIDC = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
CREATED_PROVIDER = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com"
# The longest sandbox id config accepts (30 characters: infra.config.SANDBOX_STACK).
SANDBOX_ID = "pr4711-feature-branch-name-x9z"
SANDBOX_STACK = f"aws-sandbox-{SANDBOX_ID}"
STATE_BUCKETS = {env: f"acme-mlops-state-{env}" for env in ("dev", "prod", "sandbox")}
STS = "sts.amazonaws.com"


def state_config(env: str, keys: str = "state") -> dict[str, str]:
    """What scripts/bootstrap.py prints for an environment (its bucket, its key alias), under the config keys
    `<keys>Backend` and `<keys>SecretsProvider`."""
    return {
        f"{keys}Backend": f"s3://{STATE_BUCKETS[env]}?region={REGION}&awssdk=v2",
        f"{keys}SecretsProvider": f"awskms://alias/mlops-stack-{env}?region={REGION}",
    }


def dev_config(**overrides: str) -> dict[str, str]:
    return config_for(
        "dev", sandboxes="true", **state_config("dev"), **state_config("sandbox", "sandboxState"), **overrides
    )


def dev() -> ProgramRun:
    return run_stack("aws-dev", dev_config())


def prod() -> ProgramRun:
    return run_stack("aws-prod", config_for("prod", **state_config("prod")))


def sandbox() -> ProgramRun:
    return run_stack(SANDBOX_STACK, with_model("sandbox"))


def policies() -> dict[str, dict[str, Any]]:
    return policies_by_arn(dev(), prod())


def ci_principal(run: ProgramRun, kind: str) -> Principal:
    return principal(run, run.one(ROLE, f"-ci-{kind}"), policies())


def trust_statement(role: Registered) -> dict[str, Any]:
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    return dict(statement)


# --- who each identity trusts -------------------------------------------------------------------------------

ALL_SUBJECTS = [
    f"repo:{REPOSITORY}:environment:dev",
    f"repo:{REPOSITORY}:environment:staging",
    f"repo:{REPOSITORY}:environment:prod",
    f"repo:{REPOSITORY}:environment:sandbox",
    f"repo:{REPOSITORY}:environment:retrain-dev",
    f"repo:{REPOSITORY}:environment:retrain-prod",
    f"repo:{REPOSITORY}:pull_request",
    f"repo:{REPOSITORY}:ref:refs/heads/main",
    f"repo:{REPOSITORY}:ref:refs/heads/feature",
    "repo:someone-else/mlops-stack:environment:prod",
]


@pytest.mark.parametrize(
    ("run", "kind", "subject"),
    [
        (dev, "deploy", "environment:dev"),
        (dev, "preview", "pull_request"),
        (dev, "sandbox", "environment:sandbox"),
        (prod, "deploy", "environment:prod"),
        (prod, "preview", "ref:refs/heads/main"),
        (dev, "retrain", "environment:retrain-dev"),
        (prod, "retrain", "environment:retrain-prod"),
    ],
)
def test_each_identity_trusts_exactly_its_subject(run: Any, kind: str, subject: str) -> None:
    trust = trust_statement(run().one(ROLE, f"-ci-{kind}"))
    assert trust["Effect"] == "Allow"
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert trust["Principal"] == {"Federated": CREATED_PROVIDER}
    expected = f"repo:{REPOSITORY}:{subject}"
    # StringEquals only: no StringLike anywhere, so no wildcard subject can slip in.
    assert trust["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": expected,
        }
    }
    accepted = [
        s
        for s in ALL_SUBJECTS
        if conditions_hold(
            trust["Condition"],
            {"token.actions.githubusercontent.com:sub": s, "token.actions.githubusercontent.com:aud": STS},
        )
    ]
    assert accepted == [expected]


def test_prods_preview_trusts_the_configured_branch_and_the_deploy_role_the_configured_environment() -> None:
    run = run_stack("aws-prod", config_for("prod", githubBranch="release", githubEnvironment="production"))
    subjects = {
        kind: trust_statement(run.one(ROLE, f"-ci-{kind}"))["Condition"]["StringEquals"][
            "token.actions.githubusercontent.com:sub"
        ]
        for kind in ("deploy", "preview")
    }
    assert subjects == {
        "deploy": f"repo:{REPOSITORY}:environment:production",
        "preview": f"repo:{REPOSITORY}:ref:refs/heads/release",
    }


def test_the_provider_is_created_for_github_or_the_configured_one_is_reused() -> None:
    provider = dev().one(OIDC).inputs
    assert provider["url"] == "https://token.actions.githubusercontent.com"
    assert provider["clientIdLists"] == ["sts.amazonaws.com"]
    existing = "arn:aws:iam::210987654321:oidc-provider/token.actions.githubusercontent.com"
    run = run_stack("aws-prod", config_for("prod", awsOidcProviderArn=existing))
    assert run.of_type(OIDC) == []
    assert trust_statement(run.one(ROLE, "-ci-deploy"))["Principal"] == {"Federated": existing}


def test_ci_identity_outputs() -> None:
    path = f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-stack/aws-dev/ci"
    assert dev().outputs["ciIdentity"] == {
        "deployRoleArn": f"{path}/aws-dev-deploy-0001",
        "previewRoleArn": f"{path}/aws-dev-preview-0001",
        "retrainRoleArn": f"{path}/aws-dev-retrain-0001",
        "trackingPasswordSecret": admin_password_secret_arn(dev()),
        "region": REGION,
    }
    assert dev().outputs["sandboxCiIdentity"] == {
        "deployRoleArn": f"{path}/aws-dev-sandbox-0001",
        "region": REGION,
    }
    assert "sandboxCiIdentity" not in prod().outputs
    without = run_stack("aws-dev", config_for("dev"))
    assert "sandboxCiIdentity" not in without.outputs
    assert [r.name for r in without.of_type(ROLE) if "/ci/" in r.inputs["path"]] == [
        "aws-dev-ci-deploy",
        "aws-dev-ci-preview",
        "aws-dev-ci-retrain",
    ]


def admin_password_secret_arn(run: ProgramRun) -> str:
    """The ARN of the secret the tracking server's task reads MLFLOW_ADMIN_PASSWORD from (its container's
    secret reference), not the name the output claims."""
    (service,) = [
        s
        for s in run.of_type("aws:ecs/expressGatewayService:ExpressGatewayService")
        if "-tracking-" in s.name
    ]
    (reference,) = [
        s for s in service.inputs["primaryContainer"]["secrets"] if s["name"] == "MLFLOW_ADMIN_PASSWORD"
    ]
    return str(reference["valueFrom"])


@pytest.mark.parametrize("run", [dev, prod])
def test_the_retrain_role_reads_the_admin_password_and_nothing_else(run: Any) -> None:
    """One inline policy, one statement: GetSecretValue on the secret MLflow's admin password is in. No
    managed policy, no boundary to lean on, no state, no key."""
    program = run()
    role = program.one(ROLE, "-ci-retrain")
    secret = admin_password_secret_arn(program)
    assert [a for a in program.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
            if a.inputs["role"] == f"{role.inputs['namePrefix']}0001"] == []  # fmt: skip
    (policy,) = [
        p for p in program.of_type("aws:iam/rolePolicy:RolePolicy") if p.inputs["role"] == f"{role.name}-id"
    ]
    assert json.loads(policy.inputs["policy"]) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadTrackingAdminPassword",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": [secret],
            }
        ],
    }
    session = ci_principal(program, "retrain")
    assert decide(session, Request("secretsmanager:GetSecretValue", secret)) is Decision.ALLOW
    stack = program.outputs["registry"].rsplit("/", 1)[1]
    env = stack.removeprefix("aws-")
    other_secret = (
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:mlops-stack/{stack}/mlflow-db-password-x"
    )
    for request in (
        Request("secretsmanager:GetSecretValue", other_secret),
        Request("secretsmanager:PutSecretValue", secret),
        Request("s3:GetObject", state_object(env, stack)),
        Request("kms:Decrypt", key_arn(f"alias/mlops-stack-{env}"), key_context(env)),
        Request("s3:GetObject", f"arn:aws:s3:::{program.outputs['artifactRoot'].removeprefix('s3://')}/1/x"),
        Request("sts:AssumeRole", CI_ROLE),
    ):
        assert decide(session, request, [bucket_policy(env)]) is not Decision.ALLOW, request


def test_sandbox_stacks_make_no_ci_identity_nor_boundary_and_use_the_dev_stacks_sandbox_boundaries() -> None:
    run = sandbox()
    assert run.outputs["ciIdentity"] == {}
    assert "sandboxCiIdentity" not in run.outputs
    assert run.of_type(OIDC) == []
    assert run.of_type(POLICY) == []
    assert [r.name for r in run.of_type(ROLE) if "/ci/" in r.inputs["path"]] == []
    made_by_dev = {
        f"arn:aws:iam::{ACCOUNT_ID}:policy{p.inputs['path']}{p.inputs['name']}"
        for p in dev().of_type(POLICY)
        if p.name.startswith("aws-dev-ci-sandbox-boundaries")
    }
    assert {r.inputs["permissionsBoundary"] for r in run.of_type(ROLE)} == made_by_dev


def test_sessions_outlast_the_jobs_that_use_them() -> None:
    """Deploy-type roles: 2 h (the sweep job runs up to 120 minutes); previews 1 h. IAM takes 1-12 h."""
    run = dev()
    sessions = {
        kind: run.one(ROLE, f"-ci-{kind}").inputs["maxSessionDuration"]
        for kind in ("deploy", "preview", "sandbox", "retrain")
    }
    assert sessions == {
        "deploy": DEPLOY_SESSION_SECONDS,
        "preview": PREVIEW_SESSION_SECONDS,
        "sandbox": DEPLOY_SESSION_SECONDS,
        "retrain": RETRAIN_SESSION_SECONDS,
    }
    assert all(3600 <= seconds <= 43200 for seconds in sessions.values())


def test_without_state_keys_ci_gets_no_state_access_and_the_program_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *_, **__: warnings.append(message))
    run = run_program(config_for("dev"), "aws-dev", outputs_for=outputs_with_iam, calls=calls_with_aliases)
    names = {p.inputs["name"] for p in run.of_type("aws:iam/rolePolicy:RolePolicy") if "name" in p.inputs}
    assert names == {"deploy-fence", "preview-limits", "retrain-tracking-password"}
    assert any("stateBackend" in w and "CI cannot preview or deploy" in w for w in warnings)


# --- every role the stack makes carries its boundaries ------------------------------------------------------


@pytest.mark.parametrize("run", [dev, prod, sandbox])
def test_every_workload_role_carries_its_stacks_boundary(run: Any) -> None:
    program = run()
    stack_boundaries = {
        p.inputs["name"]: f"arn:aws:iam::{ACCOUNT_ID}:policy{p.inputs['path']}{p.inputs['name']}"
        for p in [*dev().of_type(POLICY), *prod().of_type(POLICY)]
    }
    for role in program.of_type(ROLE):
        if "/ci/" in role.inputs["path"]:
            assert "permissionsBoundary" not in role.inputs, role.name
            continue
        kind = "infrastructure" if role.name.endswith("-ecs-infrastructure") else "workload"
        stack = program.outputs["registry"].rsplit("/", 1)[1]
        owner = "mlops-stack-sandbox" if stack.startswith("aws-sandbox-") else stack
        assert role.inputs["permissionsBoundary"] == stack_boundaries[f"{owner}-{kind}-boundary"], role.name
        assert role.inputs["path"] == f"/mlops-stack/{stack}/workloads/"


def test_policy_names_are_unique_in_a_shared_account() -> None:
    """IAM policy names are unique per account whatever the path: dev's, prod's and the sandboxes' differ."""
    names = [p.inputs["name"] for p in [*dev().of_type(POLICY), *prod().of_type(POLICY)]]
    assert len(names) == len(set(names)) == 7


def _sample(pattern: str) -> str:
    """A concrete value a wildcard pattern matches (`*` -> `x`, `?` -> `y`)."""
    return pattern.replace("*", "x").replace("?", "y")


def _sample_context(condition: dict[str, dict[str, Any]] | None, environment: str) -> dict[str, Any]:
    """A request context that satisfies a statement's (positive) conditions, with the role's environment."""
    context: dict[str, Any] = {f"aws:ResourceTag/{ENVIRONMENT_TAG}": environment}
    for operator, keys in (condition or {}).items():
        for key, values in keys.items():
            first = values[0] if isinstance(values, list) else values
            context[key] = ["x"] if operator.startswith("ForAnyValue") else _sample(str(first))
    return context


@pytest.mark.parametrize("run", [dev, prod, sandbox])
def test_the_workload_boundary_allows_every_grant_the_workload_roles_are_given(run: Any) -> None:
    """Join: what express.py and storage.py grant the task and execution roles, and the boundary over them."""
    program = run()
    environment = default_tags(program)[ENVIRONMENT_TAG]
    known = policies_by_arn(dev(), prod())
    checked = 0
    for role in program.of_type(ROLE):
        if "/ci/" in role.inputs["path"]:
            continue
        session = principal(program, role, known)
        for document in session.policies:
            for statement in document["Statement"]:
                if statement["Effect"] != "Allow":
                    continue
                actions = (
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                )
                resources = (
                    statement["Resource"]
                    if isinstance(statement["Resource"], list)
                    else [statement["Resource"]]
                )
                for action in actions:
                    for resource in resources:
                        request = Request(
                            action.replace("*", "Describe"),  # e.g. ecr:Describe* grants ecr:DescribeImages
                            _sample(resource),
                            _sample_context(statement.get("Condition"), environment),
                        )
                        assert decide(session, request) is Decision.ALLOW, (role.name, action, resource)
                        checked += 1
    assert checked > 50


def test_the_infrastructure_boundary_is_awss_express_policy_as_moto_ships_it() -> None:
    """The boundary copies AWS's managed policy (v6); moto's copy follows AWS, so a new version shows here."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    managed = json.loads(aws_managed_policies_data)["AmazonECSInfrastructureRoleforExpressGatewayServices"]
    assert managed["UpdateDate"].startswith("2026-02-12")

    def normal(statements: Any) -> list[tuple[str, ...]]:
        rows = []
        for s in statements:
            actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
            for action in actions:
                for resource in resources:
                    rows.append(
                        (
                            action,
                            resource.replace("arn:aws:", "arn:*:"),
                            json.dumps(s.get("Condition"), sort_keys=True),
                        )
                    )
        return sorted(rows)

    assert normal(EXPRESS_INFRASTRUCTURE_STATEMENTS) == normal(managed["Document"]["Statement"])


# --- what each identity may create ------------------------------------------------------------------------

# The CI identities, their grants and the boundaries: made by the admin's first `up`, never by CI.
ADMIN_ONLY = ("-ci", "-boundaries")


def _is_admin_only(run: ProgramRun, resource: Registered) -> bool:
    stack = run.outputs["registry"].rsplit("/", 1)[1]
    return resource.name.startswith(tuple(f"{stack}{suffix}" for suffix in ADMIN_ONLY))


@pytest.mark.parametrize("run", [dev, prod])
def test_a_deploy_identity_can_create_its_stack_but_not_the_ci_identities_or_boundaries(run: Any) -> None:
    program = run()
    deploy = ci_principal(program, "deploy")
    creatable: list[tuple[str, str, Decision]] = []
    refused: list[tuple[str, str, Decision]] = []
    for resource in program.resources:
        for call in creation_requests(program, resource):
            outcome = decide_all(deploy, call, bucket_policies(program))
            (refused if _is_admin_only(program, resource) else creatable).append(
                (resource.name, call[0].action, outcome)
            )
    assert [c for c in creatable if c[2] is not Decision.ALLOW] == []
    assert refused
    assert [r for r in refused if r[2] is Decision.ALLOW] == []


def test_the_sandbox_identity_can_create_every_resource_of_the_longest_named_sandbox() -> None:
    program = sandbox()
    session = ci_principal(dev(), "sandbox")
    outcomes = [
        (resource.name, call[0].action, decide_all(session, call, bucket_policies(program)))
        for resource in program.resources
        for call in creation_requests(program, resource)
    ]
    assert len(outcomes) > 60
    assert [o for o in outcomes if o[2] is not Decision.ALLOW] == []


@pytest.mark.parametrize("run", [dev, prod])
def test_the_sandbox_identity_can_create_nothing_of_another_environment(run: Any) -> None:
    program = run()
    session = ci_principal(dev(), "sandbox")
    allowed = [
        (resource.name, call[0].action)
        for resource in program.resources
        for call in creation_requests(program, resource)
        if decide_all(session, call, bucket_policies(program)) is Decision.ALLOW
    ]
    assert allowed == []


def test_the_dev_deploy_identity_can_create_nothing_of_prod_in_a_shared_account() -> None:
    program = prod()
    deploy = ci_principal(dev(), "deploy")
    allowed = [
        (resource.name, call[0].action)
        for resource in program.resources
        for call in creation_requests(program, resource)
        if decide_all(deploy, call, bucket_policies(program)) is Decision.ALLOW
    ]
    assert allowed == []


# --- a deploy identity cannot make itself admin ---------------------------------------------------------

WORKLOAD_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-stack/aws-dev/workloads/aws-dev-x-0001"
CI_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-stack/aws-dev/ci/aws-dev-deploy-0001"
DEV_BOUNDARY = f"arn:aws:iam::{ACCOUNT_ID}:policy/mlops-stack/aws-dev/aws-dev-workload-boundary"
DEV_INFRA_BOUNDARY = f"arn:aws:iam::{ACCOUNT_ID}:policy/mlops-stack/aws-dev/aws-dev-infrastructure-boundary"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
DEV_TAGS = {f"aws:RequestTag/{k}": v for k, v in {"environment": "dev", "stack": "aws-dev"}.items()}


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (
            Request("iam:CreateRole", WORKLOAD_ROLE, {**DEV_TAGS, "iam:PermissionsBoundary": DEV_BOUNDARY}),
            Decision.ALLOW,
        ),
        (Request("iam:CreateRole", WORKLOAD_ROLE, DEV_TAGS), Decision.EXPLICIT_DENY),
        (
            Request(
                "iam:CreateRole",
                WORKLOAD_ROLE,
                {**DEV_TAGS, "iam:PermissionsBoundary": "arn:aws:iam::aws:policy/AdministratorAccess"},
            ),
            Decision.EXPLICIT_DENY,
        ),
        (
            Request("iam:CreateRole", CI_ROLE, {**DEV_TAGS, "iam:PermissionsBoundary": DEV_BOUNDARY}),
            Decision.EXPLICIT_DENY,
        ),
        (
            Request("iam:PutRolePolicy", WORKLOAD_ROLE, {"iam:PermissionsBoundary": DEV_BOUNDARY}),
            Decision.ALLOW,
        ),
        # A role without a boundary (made by someone else) cannot be given policies.
        (Request("iam:PutRolePolicy", WORKLOAD_ROLE), Decision.IMPLICIT_DENY),
        (
            Request(
                "iam:DeleteRolePermissionsBoundary", WORKLOAD_ROLE, {"iam:PermissionsBoundary": DEV_BOUNDARY}
            ),
            Decision.EXPLICIT_DENY,
        ),
        (
            Request("iam:PutRolePermissionsBoundary", WORKLOAD_ROLE, {"iam:PermissionsBoundary": ADMIN}),
            Decision.EXPLICIT_DENY,
        ),
        (
            Request(
                "iam:AttachRolePolicy",
                WORKLOAD_ROLE,
                {"iam:PermissionsBoundary": DEV_INFRA_BOUNDARY, "iam:PolicyARN": ADMIN},
            ),
            Decision.IMPLICIT_DENY,
        ),
        (Request("iam:CreatePolicyVersion", DEV_BOUNDARY), Decision.EXPLICIT_DENY),
        (Request("iam:SetDefaultPolicyVersion", DEV_BOUNDARY), Decision.EXPLICIT_DENY),
        (Request("iam:CreatePolicy", f"arn:aws:iam::{ACCOUNT_ID}:policy/anything"), Decision.IMPLICIT_DENY),
        (Request("iam:UpdateAssumeRolePolicy", CI_ROLE), Decision.EXPLICIT_DENY),
        (Request("iam:PutRolePolicy", CI_ROLE), Decision.EXPLICIT_DENY),
        (
            Request("iam:PassRole", CI_ROLE, {"iam:PassedToService": "ecs-tasks.amazonaws.com"}),
            Decision.EXPLICIT_DENY,
        ),
        (
            Request("iam:PassRole", WORKLOAD_ROLE, {"iam:PassedToService": "ecs-tasks.amazonaws.com"}),
            Decision.ALLOW,
        ),
        (
            Request("iam:PassRole", WORKLOAD_ROLE, {"iam:PassedToService": "lambda.amazonaws.com"}),
            Decision.IMPLICIT_DENY,
        ),
        (Request("sts:AssumeRole", WORKLOAD_ROLE), Decision.EXPLICIT_DENY),
        (Request("iam:UpdateOpenIDConnectProviderThumbprint", CREATED_PROVIDER), Decision.EXPLICIT_DENY),
        (Request("iam:GetRole", CI_ROLE), Decision.ALLOW),
    ],
)
def test_the_deploy_identitys_iam_is_fenced(request_: Request, expected: Decision) -> None:
    assert decide(ci_principal(dev(), "deploy"), request_) is expected


def test_a_role_the_deploy_identity_makes_as_admin_is_still_held_by_its_boundary() -> None:
    """The worst a deploy identity can write into a workload role: AdministratorAccess."""
    known = policies()
    admin = known[ADMIN]
    dev_objects = f"arn:aws:s3:::{STATE_BUCKETS['dev']}/.pulumi/stacks/mlops-stack/aws-dev.json"
    artifacts = dev().outputs["artifactRoot"].removeprefix("s3://")
    dev_tag = {"aws:ResourceTag/environment": "dev"}
    workload = Principal([admin], boundary=known[DEV_BOUNDARY], tags={"environment": "dev"})
    infrastructure = Principal([admin], boundary=known[DEV_INFRA_BOUNDARY], tags={"environment": "dev"})
    for session in (workload, infrastructure):
        for request in (
            Request("iam:CreateRole", WORKLOAD_ROLE, {"iam:PermissionsBoundary": DEV_BOUNDARY}),
            Request("iam:PutRolePolicy", CI_ROLE),
            Request("s3:GetObject", dev_objects),
            Request("kms:Decrypt", key_arn("alias/mlops-stack-dev"), dev_tag),
            Request(
                "secretsmanager:GetSecretValue",
                f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:mlops-stack/aws-prod/db-x",
            ),
            Request("ec2:RunInstances", f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:instance/*"),
        ):
            assert decide(session, request) is not Decision.ALLOW, request
    assert decide(workload, Request("s3:GetObject", f"arn:aws:s3:::{artifacts}/1/x")) is Decision.ALLOW
    ecs_lb = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT_ID}:loadbalancer/app/ecs-express/0a1b"
    express = {"aws:ResourceTag/AmazonECSManaged": "true"}
    assert (
        decide(
            infrastructure, Request("elasticloadbalancing:DeleteLoadBalancer", ecs_lb, {**express, **dev_tag})
        )
        is Decision.ALLOW
    )
    prod_tag = {"aws:ResourceTag/environment": "prod"}
    assert (
        decide(
            infrastructure,
            Request("elasticloadbalancing:DeleteLoadBalancer", ecs_lb, {**express, **prod_tag}),
        )
        is Decision.EXPLICIT_DENY
    )
    assert (
        decide(workload, Request("elasticloadbalancing:DeleteLoadBalancer", ecs_lb, {**express, **dev_tag}))
        is Decision.IMPLICIT_DENY
    )


# --- state: each identity its own environment's, and never another's ----------------------------------------


def state_object(env: str, stack: str) -> str:
    return f"arn:aws:s3:::{STATE_BUCKETS[env]}/.pulumi/stacks/mlops-stack/{stack}.json"


def bucket_policy(env: str) -> ResourcePolicy:
    """The statement scripts/bootstrap.py puts on each environment's state bucket (the join with it)."""
    return ResourcePolicy(
        {"Version": "2012-10-17", "Statement": [other_environments_statement(STATE_BUCKETS[env], env)]}
    )


def key_context(env: str) -> dict[str, str]:
    """A state key as bootstrap leaves it: tagged with its environment."""
    return {"aws:ResourceTag/environment": env}


@pytest.mark.parametrize(
    ("run", "kind", "env", "stack"),
    [
        (dev, "deploy", "dev", "aws-dev"),
        (prod, "deploy", "prod", "aws-prod"),
        (dev, "sandbox", "sandbox", SANDBOX_STACK),
    ],
)
def test_deploy_identities_read_and_write_their_state_and_use_their_key(
    run: Any, kind: str, env: str, stack: str
) -> None:
    session = ci_principal(run(), kind)
    own = [bucket_policy(env)]
    key = key_arn(f"alias/mlops-stack-{env}")
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
        assert decide(session, Request(action, state_object(env, stack)), own) is Decision.ALLOW, action
    assert (
        decide(session, Request("s3:ListBucket", f"arn:aws:s3:::{STATE_BUCKETS[env]}"), own) is Decision.ALLOW
    )
    for action in ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"):
        assert decide(session, Request(action, key, key_context(env))) is Decision.ALLOW, action
    # Used, never administered: no history deletion, no bucket policy, no key deletion.
    assert (
        decide(session, Request("s3:DeleteObjectVersion", state_object(env, stack)), own)
        is Decision.EXPLICIT_DENY
    )
    assert (
        decide(session, Request("s3:PutBucketPolicy", f"arn:aws:s3:::{STATE_BUCKETS[env]}"), own)
        is Decision.EXPLICIT_DENY
    )
    assert (
        decide(session, Request("kms:ScheduleKeyDeletion", key, key_context(env))) is Decision.EXPLICIT_DENY
    )


@pytest.mark.parametrize(("run", "env", "stack"), [(dev, "dev", "aws-dev"), (prod, "prod", "aws-prod")])
def test_preview_identities_read_their_state_and_nothing_else(run: Any, env: str, stack: str) -> None:
    session = ci_principal(run(), "preview")
    own = [bucket_policy(env)]
    key = key_arn(f"alias/mlops-stack-{env}")
    assert decide(session, Request("s3:GetObject", state_object(env, stack)), own) is Decision.ALLOW
    assert (
        decide(session, Request("s3:ListBucket", f"arn:aws:s3:::{STATE_BUCKETS[env]}"), own) is Decision.ALLOW
    )
    assert decide(session, Request("kms:Decrypt", key, key_context(env))) is Decision.ALLOW
    for action in ("s3:PutObject", "s3:DeleteObject"):
        assert decide(session, Request(action, state_object(env, stack)), own) is not Decision.ALLOW
    assert decide(session, Request("kms:Encrypt", key, key_context(env))) is not Decision.ALLOW
    artifacts = run().outputs["artifactRoot"].removeprefix("s3://")
    secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:mlops-stack/{stack}/db-password-x"
    for request in (
        Request("s3:GetObject", f"arn:aws:s3:::{artifacts}/1/models/m/model.skops"),
        Request("secretsmanager:GetSecretValue", secret, key_context(env)),
        Request(
            "logs:GetLogEvents", f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:/mlops-stack/{stack}/tracking"
        ),
        Request("ssm:GetParameter", f"arn:aws:ssm:{REGION}:{ACCOUNT_ID}:parameter/anything"),
        Request("kms:Decrypt", f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/untagged-key"),
    ):
        assert decide(session, request) is Decision.EXPLICIT_DENY, request
    # What `pulumi preview` reads: configuration, and the key behind its state alias.
    assert decide(session, Request("ec2:DescribeVpcs", "*")) is Decision.ALLOW
    assert decide(session, Request("kms:DescribeKey", key, key_context(env))) is Decision.ALLOW


@pytest.mark.parametrize(
    ("run", "kind", "own_env"),
    [
        (dev, "deploy", "dev"),
        (dev, "preview", "dev"),
        (dev, "sandbox", "sandbox"),
        (prod, "deploy", "prod"),
        (prod, "preview", "prod"),
    ],
)
def test_no_identity_reads_or_changes_another_environments_state_or_key(
    run: Any, kind: str, own_env: str
) -> None:
    """In one account: each other environment's bucket policy (bootstrap) and key tag (fence) keep it out."""
    session = ci_principal(run(), kind)
    for env in set(STATE_BUCKETS) - {own_env}:
        other = [bucket_policy(env)]
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:PutBucketPolicy"):
            target = state_object(env, "x") if "Object" in action else f"arn:aws:s3:::{STATE_BUCKETS[env]}"
            assert decide(session, Request(action, target), other) is not Decision.ALLOW, (env, action)
        for action in ("kms:Decrypt", "kms:Encrypt", "kms:ScheduleKeyDeletion"):
            request = Request(action, key_arn(f"alias/mlops-stack-{env}"), key_context(env))
            assert decide(session, request) is not Decision.ALLOW, (env, action)


def test_without_the_bucket_policy_powerusers_could_read_another_environments_state() -> None:
    """Why bootstrap's bucket policy matters: S3 does not evaluate bucket tags in identity policies."""
    deploy = ci_principal(dev(), "deploy")
    assert decide(deploy, Request("s3:GetObject", state_object("prod", "aws-prod"))) is Decision.ALLOW
    assert (
        decide(deploy, Request("s3:GetObject", state_object("prod", "aws-prod")), [bucket_policy("prod")])
        is Decision.EXPLICIT_DENY
    )


def test_the_state_key_is_granted_by_arn_from_the_alias_lookup() -> None:
    """kms:RequestAlias cannot work for Decrypt (gocloud sends no KeyId): the grant names the key itself."""
    statements = {
        s["Sid"]: s
        for p in dev().of_type("aws:iam/rolePolicy:RolePolicy")
        if p.inputs.get("name") == "preview-state"
        for s in json.loads(p.inputs["policy"])["Statement"]
    }
    assert statements["StateKey"] == {
        "Sid": "StateKey",
        "Effect": "Allow",
        "Action": ["kms:Decrypt"],
        "Resource": [f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{KEY_IDS['alias/mlops-stack-dev']}"],
    }
    assert ("aws:kms/getAlias:getAlias", {"name": "alias/mlops-stack-dev", "region": REGION}) in [
        (token, {k: v for k, v in args.items() if v}) for token, args in dev().calls
    ]


def test_a_state_prefix_limits_the_state_grants_to_it() -> None:
    """The state grants alone (ReadOnlyAccess lets previews list any bucket's keys, never read them)."""
    config = config_for("prod", stateBackend=f"s3://{STATE_BUCKETS['prod']}/teams/ml?region={REGION}",
                        stateSecretsProvider=f"awskms://alias/mlops-stack-prod?region={REGION}")  # fmt: skip
    program = run_stack("aws-prod", config)
    preview = ci_principal(program, "preview")
    (grants,) = [
        json.loads(p.inputs["policy"])
        for p in program.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.inputs.get("name") == "preview-state"
    ]
    state_only = Principal([grants])
    bucket = f"arn:aws:s3:::{STATE_BUCKETS['prod']}"
    inside = f"{bucket}/teams/ml/.pulumi/stacks/mlops-stack/aws-prod.json"
    for session in (preview, state_only):
        assert decide(session, Request("s3:GetObject", inside)) is Decision.ALLOW
        assert decide(session, Request("s3:GetObject", f"{bucket}/other/x")) is not Decision.ALLOW
    listing = {"s3:prefix": "teams/ml/.pulumi/"}
    assert decide(state_only, Request("s3:ListBucket", bucket, listing)) is Decision.ALLOW
    assert decide(state_only, Request("s3:ListBucket", bucket, {"s3:prefix": "other/"})) is not Decision.ALLOW


# --- other environments' resources in a shared account ----------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (
            Request(
                "rds:DeleteDBCluster",
                f"arn:aws:rds:{REGION}:{ACCOUNT_ID}:cluster:aws-prod-mlflow",
                {"aws:ResourceTag/environment": "prod"},
            ),
            Decision.EXPLICIT_DENY,
        ),
        (
            Request(
                "ecs:UpdateExpressGatewayService",
                f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:service/aws-prod/x",
                {"aws:ResourceTag/environment": "prod"},
            ),
            Decision.EXPLICIT_DENY,
        ),
        (
            Request(
                "ec2:CreateVpc",
                f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:vpc/*",
                {"aws:RequestTag/environment": "prod"},
            ),
            Decision.EXPLICIT_DENY,
        ),
        (
            Request(
                "ecs:UpdateExpressGatewayService",
                f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:service/aws-dev/x",
                {"aws:ResourceTag/environment": "dev"},
            ),
            Decision.ALLOW,
        ),
        # What the tag deny cannot cover: a resource without the tag.
        (
            Request("ecs:UpdateService", f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:service/someone/x"),
            Decision.ALLOW,
        ),
        # Metadata reads stay allowed (the dev stack reads the sandbox identity and key it made).
        (
            Request(
                "kms:DescribeKey",
                key_arn("alias/mlops-stack-sandbox"),
                {"aws:ResourceTag/environment": "sandbox"},
            ),
            Decision.ALLOW,
        ),
    ],
)
def test_the_dev_deploy_identity_keeps_off_resources_tagged_with_another_environment(
    request_: Request, expected: Decision
) -> None:
    assert decide(ci_principal(dev(), "deploy"), request_) is expected


# --- CloudWatch dashboards: no tags, so fenced by name (fence.py, 4.) --------------------------------------

# A stack whose name begins with another's: the case a bare name prefix would let aws-prod's identity reach.
LONG_PROD = "aws-prod-eu-west-1-ml-platform-team-alpha"
# "The maximum length is 255, and valid characters are A-Z, a-z, 0-9, "-", and "_""
# (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutDashboard.html).
DASHBOARD_NAME_LIMIT = 255


def long_prod() -> ProgramRun:
    return run_stack(LONG_PROD, config_for("prod", **state_config("prod")))


def dashboard_arn(name: str) -> str:
    """As the Service Authorization Reference writes it: no region (dashboards are global to the account)."""
    return f"arn:aws:cloudwatch::{ACCOUNT_ID}:dashboard/{name}"


def dashboard_of(run: ProgramRun) -> str:
    (dashboard,) = run.of_type("aws:cloudwatch/dashboard:Dashboard")
    return dashboard_arn(dashboard.inputs["dashboardName"])


@pytest.mark.parametrize("run", [dev, prod, long_prod])
def test_a_deploy_identity_may_change_its_stacks_dashboard_and_no_other(run: Any) -> None:
    """Join: the name the program gives its dashboard and the name the fence allows; every other stack's
    dashboard (one whose stack name begins with this one's included), a sandbox's and anyone's are denied."""
    program = run()
    own = dashboard_of(program)
    session = ci_principal(program, "deploy")
    others = {dashboard_of(r) for r in (dev(), prod(), long_prod())} - {own}
    others |= {dashboard_arn(dashboard_name(SANDBOX_STACK)), dashboard_arn("team-billing-overview")}
    assert len(others) == 4
    for action in DASHBOARD_ACTIONS:
        assert decide(session, Request(action, own)) is Decision.ALLOW, action
        for other in others:
            assert decide(session, Request(action, other)) is Decision.EXPLICIT_DENY, (action, other)


def test_no_sandbox_makes_a_dashboard_and_its_identity_may_touch_none() -> None:
    """Sandboxes get no dashboard (nor alerts); their identity is not granted any."""
    assert sandbox().of_type("aws:cloudwatch/dashboard:Dashboard") == []
    session = ci_principal(dev(), "sandbox")
    for target in (dashboard_of(dev()), dashboard_arn(dashboard_name(SANDBOX_STACK))):
        assert decide(session, Request("cloudwatch:PutDashboard", target)) is not Decision.ALLOW


def test_dashboard_names_of_the_longest_stacks_fit_cloudwatch_and_their_own_scope_only() -> None:
    """The longest sandbox config accepts and a long stack name: within CloudWatch's name rules; the sandbox
    scope's pattern (were sandboxes to get dashboards) matches sandboxes' names and no other stack's."""
    assert SANDBOX_NAME.fullmatch(SANDBOX_STACK)
    for stack in (SANDBOX_STACK, LONG_PROD, "aws-dev", "aws-prod"):
        name = dashboard_name(stack)
        assert len(name) <= DASHBOARD_NAME_LIMIT, name
        assert DASHBOARD_NAME.fullmatch(name), name
    settings = load_stack_settings(lambda key: with_model("sandbox").get(key), stack=SANDBOX_STACK)
    account = Account(
        id=pulumi.Output.from_input(ACCOUNT_ID), partition=pulumi.Output.from_input("aws"), region=REGION
    )
    pattern = dashboard_arn(dashboard_name(sandbox_scope(settings, account).stack_pattern))
    assert resource_matches(pattern, dashboard_arn(dashboard_name(SANDBOX_STACK)))
    for stack in ("aws-dev", "aws-prod", LONG_PROD):
        assert not resource_matches(pattern, dashboard_arn(dashboard_name(stack))), stack


def test_the_environment_tag_is_the_one_every_resource_and_bootstrap_carry() -> None:
    from mlops_stack.state_backends.aws import ENVIRONMENT_TAG as BOOTSTRAP_TAG

    settings = load_stack_settings(lambda key: dev_config().get(key), stack="aws-dev")
    assert ENVIRONMENT_TAG in labels(settings)
    assert labels(settings)[ENVIRONMENT_TAG] == "dev"
    assert BOOTSTRAP_TAG == ENVIRONMENT_TAG
    assert ci_principal(dev(), "sandbox").tags[ENVIRONMENT_TAG] == "sandbox"


# --- policy sizes against IAM's quotas --------------------------------------------------------------------

# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html: a managed policy holds at most
# 6,144 characters, a role's inline policies together 10,240; IAM does not count white space.
MANAGED_POLICY_CHARACTERS = 6144
ROLE_INLINE_CHARACTERS = 10240


def _size(document: str) -> int:
    return len(json.dumps(json.loads(document), separators=(",", ":")))


@pytest.mark.parametrize("run", [dev, prod])
def test_policies_fit_iams_quotas(run: Any) -> None:
    program = run()
    for policy in program.of_type(POLICY):
        assert _size(policy.inputs["policy"]) <= MANAGED_POLICY_CHARACTERS, policy.name
    for role in program.of_type(ROLE):
        inline = [
            p
            for p in program.of_type("aws:iam/rolePolicy:RolePolicy")
            if p.inputs["role"] == f"{role.name}-id"
        ]
        assert sum(_size(p.inputs["policy"]) for p in inline) <= ROLE_INLINE_CHARACTERS, role.name


# --- aws:allowedAccountIds ------------------------------------------------------------------------------


def test_allowed_account_ids_pin_the_provider_to_the_stacks_account() -> None:
    run = run_stack("aws-prod", config_for("prod", **{"aws:allowedAccountIds": json.dumps([ACCOUNT_ID])}))
    (provider,) = [r for r in run.resources if r.type == "pulumi:providers:aws"]
    assert json.loads(provider.inputs["allowedAccountIds"]) == [ACCOUNT_ID]
    (unpinned,) = [r for r in prod().resources if r.type == "pulumi:providers:aws"]
    assert "allowedAccountIds" not in unpinned.inputs


@pytest.mark.parametrize("value", ["123456789012", "[123456789012]", '["12345"]', "[]"])
def test_allowed_account_ids_must_be_quoted_12_digit_ids(value: str) -> None:
    config = config_for("prod", **{"aws:allowedAccountIds": value})
    with pytest.raises(ConfigError, match=re.escape("aws:allowedAccountIds: ")):
        load_stack_settings(lambda key: config.get(key), stack="aws-prod")


@pytest.mark.parametrize(
    ("provider", "key"),
    [
        # The forms of Pulumi's awskms secrets provider URL that config accepts
        # (https://www.pulumi.com/docs/iac/concepts/secrets/#aws-key-management-service-kms).
        (f"awskms://alias/mlops-stack-prod?region={REGION}", key_arn("alias/mlops-stack-prod")),
        (
            "awskms://0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b?region=us-east-1",
            f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
        ),
    ],
)
def test_the_state_key_is_found_from_each_secrets_provider_form(provider: str, key: str) -> None:
    config = config_for(
        "prod", stateBackend=f"s3://{STATE_BUCKETS['prod']}?region={REGION}", stateSecretsProvider=provider
    )
    program = run_stack("aws-prod", config)
    (grants,) = [
        json.loads(p.inputs["policy"])
        for p in program.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.inputs.get("name") == "deploy-state"
    ]
    key_statement = next(s for s in grants["Statement"] if s["Sid"] == "StateKey")
    assert key_statement["Resource"] == [key]
