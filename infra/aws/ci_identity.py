"""Keyless CI: GitHub Actions assumes roles through the account's GitHub OIDC provider; no access key exists.

Which token subject each role trusts is the cross-cloud table in `infra.github` (deploy: the stack's GitHub
environment; preview: pull requests, or for prod only the deploy branch; sandbox: the `sandbox` environment,
a role the dev stack makes with `sandboxes: true`), audience `sts.amazonaws.com`, StringEquals only. Sandbox
stacks make no CI role.

- deploy: PowerUserAccess (everything but IAM, Organizations, Account) plus IAM on the stack's workload roles
  only, and only with the stack's permissions boundary on them (`infra.aws.boundary`), so it cannot mint a
  role stronger than itself; its own role and the boundary are read-only to it (changing CI takes an admin).
  Denied every resource tagged with another environment. Reads and writes its environment's Pulumi state,
  encrypts/decrypts with its key.
- preview: ReadOnlyAccess, denied every object outside its environment's state, every secret value and this
  stack's artifact key (`pulumi preview` describes resources, it never reads their data); reads (never
  writes) its environment's state and decrypts with its key.
- sandbox: like deploy, for stacks `aws-sandbox-*`: workload roles under `/mlops-stack/aws-sandbox-*` with the
  sandboxes' boundary, denied every resource tagged with a non-sandbox environment, the sandbox state and key.
What tags cannot fence (resources without tags, services without `aws:ResourceTag` support) is why the
README recommends an AWS account per environment (`aws:allowedAccountIds` in each stack file makes a stack
refuse the wrong account); dev and sandboxes may share one.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_aws import iam as aws_iam

from infra.aws import iam
from infra.aws.account import Account
from infra.aws.boundary import (
    BOUNDED_ROLE_ACTIONS,
    OTHER_ROLE_ACTIONS,
    SANDBOX_ENVIRONMENT,
    create_boundary,
    other_environments_denied,
)
from infra.aws.cluster import workload_role_path
from infra.config import StackSettings, StateLocation
from infra.github import ISSUER, CiRole, trusted_subjects
from infra.naming import short_name

STS_AUDIENCE = "sts.amazonaws.com"
# What a deploy needs outside IAM spans every service the stack uses (EC2, ECS, ECR, RDS, S3, KMS, Secrets
# Manager, Logs) and resources that do not exist yet, so it cannot be narrowed to named ARNs. PowerUserAccess
# excludes IAM, which the inline policy grants only on the workload roles, fenced by the boundary.
DEPLOY_MANAGED_POLICY = "PowerUserAccess"
PREVIEW_MANAGED_POLICY = "ReadOnlyAccess"
# One hour: the GitHub OIDC token exchange is capped at the role's maximum, and a deploy job may run 60
# minutes (its timeout); configure-aws-credentials asks for this duration (role-duration-seconds).
SESSION_SECONDS = 3600
# Service-linked roles Express Mode, load balancing, auto scaling and RDS create on first use.
SERVICE_LINKED_ROLE_SERVICES = (
    "ecs.amazonaws.com",
    "elasticloadbalancing.amazonaws.com",
    "ecs.application-autoscaling.amazonaws.com",
    "rds.amazonaws.com",
)
STATE_WRITE_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")
STATE_READ_ACTIONS = ("s3:GetObject",)


@dataclass(frozen=True)
class CiIdentityArgs:
    settings: StackSettings
    account: Account
    artifact_key_arn: pulumi.Input[str]
    workload_boundary_arn: pulumi.Input[str]  # the boundary this stack's workload roles carry


class CiIdentity(pulumi.ComponentResource):
    """The stack's CI roles (none for a sandbox); `outputs` is the stack's `ciIdentity`."""

    outputs: dict[str, pulumi.Input[str]]
    sandbox_outputs: dict[str, pulumi.Input[str]] | None  # `sandboxCiIdentity` (dev with sandboxes only)

    def __init__(self, name: str, args: CiIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-stack:aws:CiIdentity", name, None, opts)
        settings, account = args.settings, args.account
        self.outputs, self.sandbox_outputs = {}, None
        subjects = trusted_subjects(settings)
        if not subjects:
            self.register_outputs({})
            return
        child = pulumi.ResourceOptions(parent=self)
        if settings.aws_oidc_provider_arn:
            # An account has at most one provider per URL: reuse the one named in config.
            provider_arn: pulumi.Output[str] = pulumi.Output.from_input(settings.aws_oidc_provider_arn)
        else:
            provider_arn = aws_iam.OpenIdConnectProvider(
                f"{name}-github-oidc", url=ISSUER, client_id_lists=[STS_AUDIENCE], opts=child
            ).arn
        path = f"/mlops-stack/{settings.stack}/ci/"
        environment = settings.environment.value

        deploy = self._role(f"{name}-deploy", settings, subjects[CiRole.DEPLOY], provider_arn, path)
        self._attach(f"{name}-deploy-managed", deploy, account.managed_policy(DEPLOY_MANAGED_POLICY))
        aws_iam.RolePolicy(
            f"{name}-deploy-iam",
            role=deploy.id,
            policy=iam.document(
                *workload_role_statements(
                    account.arn("iam", f"role{workload_role_path(settings)}*", regional=False),
                    args.workload_boundary_arn,
                ),
                iam.allow(
                    "ReadCiIdentity",
                    [
                        "iam:GetRole",
                        "iam:GetRolePolicy",
                        "iam:ListRolePolicies",
                        "iam:ListAttachedRolePolicies",
                    ],
                    [account.arn("iam", f"role{path}*", regional=False)],
                ),
                iam.allow(
                    "ReadBoundary", ["iam:GetPolicy", "iam:GetPolicyVersion"], [args.workload_boundary_arn]
                ),
                iam.allow("ReadOidcProvider", ["iam:GetOpenIDConnectProvider"], [provider_arn]),
                service_linked_roles_statement(account),
                other_environments_denied(environment),
                *state_statements(settings.state, account, write=True),
            ),
            opts=child,
        )

        preview = self._role(f"{name}-preview", settings, subjects[CiRole.PREVIEW], provider_arn, path)
        self._attach(f"{name}-preview-managed", preview, account.managed_policy(PREVIEW_MANAGED_POLICY))
        aws_iam.RolePolicy(
            f"{name}-preview-no-data",
            role=preview.id,
            policy=iam.document(
                {
                    # Every object but its own environment's state: artifacts of any stack, other state.
                    "Sid": "NoObjectReads",
                    "Effect": "Deny",
                    "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                    "NotResource": state_object_arns(settings.state)
                    or ["arn:aws:s3:::no-state-configured/*"],
                },
                iam.deny("NoSecretValues", ["secretsmanager:GetSecretValue"], ["*"]),
                iam.deny("NoArtifactKey", ["kms:Decrypt"], [args.artifact_key_arn]),
                other_environments_denied(environment),
                *state_statements(settings.state, account, write=False),
            ),
            opts=child,
        )
        if settings.state is None:
            pulumi.log.warn(
                "mlops-stack:stateBackend is not set: the CI roles get no access to this stack's state, "
                "so workflows cannot preview or deploy it (scripts/bootstrap.py sets it)",
                resource=self,
            )
        self.outputs = {"deployRoleArn": deploy.arn, "previewRoleArn": preview.arn, "region": settings.region}

        if CiRole.SANDBOX in subjects:
            sandbox_boundary = create_boundary(
                f"{name}-sandbox-boundary", settings, sandbox=True, parent=self
            )
            sandbox = self._role(f"{name}-sandbox", settings, subjects[CiRole.SANDBOX], provider_arn, path)
            self._attach(f"{name}-sandbox-managed", sandbox, account.managed_policy(DEPLOY_MANAGED_POLICY))
            aws_iam.RolePolicy(
                f"{name}-sandbox-iam",
                role=sandbox.id,
                policy=iam.document(
                    *workload_role_statements(
                        account.arn("iam", "role/mlops-stack/aws-sandbox-*", regional=False),
                        sandbox_boundary.arn,
                    ),
                    service_linked_roles_statement(account),
                    other_environments_denied(SANDBOX_ENVIRONMENT),
                    *state_statements(settings.sandbox_state, account, write=True),
                ),
                opts=child,
            )
            self.sandbox_outputs = {"deployRoleArn": sandbox.arn, "region": settings.region}
        self.register_outputs({"ciIdentity": self.outputs})

    def _role(
        self, name: str, settings: StackSettings, subject: str, provider_arn: pulumi.Input[str], path: str
    ) -> aws_iam.Role:
        purpose = name.rsplit("-", 1)[1]
        return aws_iam.Role(
            name,
            name_prefix=short_name(settings.stack, purpose, max_length=37) + "-",
            path=path,
            description=f"GitHub Actions ({purpose}) for {settings.stack}, from {settings.github_repository}",
            assume_role_policy=iam.github_oidc_trust(provider_arn, subject),
            max_session_duration=SESSION_SECONDS,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _attach(self, name: str, role: aws_iam.Role, policy_arn: pulumi.Input[str]) -> None:
        aws_iam.RolePolicyAttachment(
            name, role=role.name, policy_arn=policy_arn, opts=pulumi.ResourceOptions(parent=self)
        )


def workload_role_statements(roles: pulumi.Input[str], boundary: pulumi.Input[str]) -> list[iam.Statement]:
    """IAM on workload roles: writes only with the boundary on them; the boundary never comes off."""
    return [
        iam.allow(
            "ManageBoundedWorkloadRoles",
            list(BOUNDED_ROLE_ACTIONS),
            [roles],
            condition={"StringEquals": {"iam:PermissionsBoundary": boundary}},
        ),
        iam.allow("ManageWorkloadRoles", list(OTHER_ROLE_ACTIONS), [roles]),
        iam.allow(
            "PassWorkloadRolesToEcs",
            ["iam:PassRole"],
            [roles],
            condition={
                "StringEquals": {"iam:PassedToService": ["ecs-tasks.amazonaws.com", "ecs.amazonaws.com"]}
            },
        ),
        iam.deny("BoundaryStays", ["iam:DeleteRolePermissionsBoundary"], ["*"]),
    ]


def service_linked_roles_statement(account: Account) -> iam.Statement:
    return iam.allow(
        "CreateServiceLinkedRoles",
        ["iam:CreateServiceLinkedRole"],
        [account.arn("iam", "role/aws-service-role/*", regional=False)],
        condition={"StringEquals": {"iam:AWSServiceName": list(SERVICE_LINKED_ROLE_SERVICES)}},
    )


def state_object_arns(state: StateLocation | None) -> list[str]:
    if state is None:
        return []
    prefix = f"{state.prefix}/" if state.prefix else ""
    return [f"arn:aws:s3:::{state.bucket}/{prefix}*"]


def state_statements(
    state: StateLocation | None, account: Account, *, write: bool
) -> Sequence[iam.Statement]:
    """Read (and write) one environment's state objects; decrypt (and encrypt) with its key.

    The key is named by its alias in the secrets provider URL; `kms:ResourceAliases` matches the key behind
    it for cryptographic operations, so no lookup is needed
    (https://docs.aws.amazon.com/kms/latest/developerguide/alias-authorization.html).
    """
    if state is None:
        return []
    listing: dict[str, object] = {}
    if state.prefix:
        listing = {"StringLike": {"s3:prefix": [f"{state.prefix}/*"]}}
    key_region = state.key_query.get("region", account.region)
    return [
        iam.allow(
            "ListState", ["s3:ListBucket"], [f"arn:aws:s3:::{state.bucket}"], condition=listing or None
        ),
        iam.allow(
            "WriteState" if write else "ReadState",
            list(STATE_WRITE_ACTIONS if write else STATE_READ_ACTIONS),
            state_object_arns(state),
        ),
        iam.allow(
            "StateKey",
            ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"] if write else ["kms:Decrypt"],
            [pulumi.Output.concat("arn:", account.partition, f":kms:{key_region}:", account.id, ":key/*")],
            condition={"ForAnyValue:StringEquals": {"kms:ResourceAliases": state.key}},
        ),
    ]
