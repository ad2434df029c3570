"""Keyless CI: GitHub Actions assumes roles through the account's GitHub OIDC provider; no access key exists.

The isolation model (README, "Isolation") on AWS. Each role trusts exactly one
OIDC subject, with `StringEquals` on `sub` and the STS audience (GitHub's subject formats:
https://docs.github.com/en/actions/reference/security/oidc#example-subject-claims):

- `<stack>-ci-deploy` (dev, staging, prod) trusts `repo:R:environment:E`. PowerUserAccess (no IAM), fenced
  (fence.py): IAM only on its stack's bounded workload roles; read/write E's state, encrypt/decrypt with E's
  key; nothing on resources tagged with another environment, no CloudWatch dashboard but its stack's (by name:
  dashboards take no tags).
- `<stack>-ci-preview` (dev, staging) trusts `repo:R:pull_request`; prod's trusts only
  `repo:R:ref:refs/heads/<githubBranch>` (deploy.yml's prod preview on a push, before the prod approval),
  never a pull request. ReadOnlyAccess minus data: objects only of E's state, decryption only with E's key, no
  secret values, parameters or log events; it never writes.
- `<stack>-ci-sandbox` (dev with `sandboxes: true`) trusts `repo:R:environment:sandbox`. Sandbox resources
  only (sandbox_identity.py); read/write the sandbox state, encrypt/decrypt with the sandbox key.
- `<stack>-ci-retrain` (dev, staging, prod) trusts `repo:R:environment:retrain-E` (retrain.yml). One inline
  statement: `secretsmanager:GetSecretValue` on the ARN of the tracking server's admin-password secret. No
  managed policy, no state, no key: the secret is encrypted with the account's AWS managed key
  `aws/secretsmanager` (secrets.py sets no `kms_key_id`), whose key policy lets Secrets Manager decrypt for
  any principal of the account that may read the secret, so no `kms:Decrypt` grant is needed
  (https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html#security-encryption-authz;
  the tasks' execution roles rely on the same in express.py).

Sandbox stacks make none (`ciIdentity` is `{}`). The roles, their policies, the boundaries and the state
grants are made by an admin's first `pulumi up`; CI cannot change them (fence.role_fence), so a change to them
in code is applied by an admin.

Session length (issue 9): credentials from AssumeRoleWithWebIdentity are not refreshed during a job
(aws-actions/configure-aws-credentials exports them as environment variables), and `pulumi up` that loses them
half-way leaves the stack locked with pending operations. A job must therefore request at least its own
`timeout-minutes`: the credentials are asked for after the job starts, so a duration of `timeout-minutes x 60`
outlives the job. The action asks for 3600 s unless told otherwise (`role-duration-seconds`, src/index.ts
DEFAULT_ROLE_DURATION) and STS refuses more than the role's MaxSessionDuration
(https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html). Deploy-type roles
allow 2 hours (the sandbox sweep runs up to 120 minutes; deploys and sandbox jobs 60), preview and retrain
roles 1 hour.
"""

from dataclasses import dataclass

import pulumi
from pulumi_aws import iam as aws_iam

from infra.aws import iam
from infra.aws.account import Account
from infra.aws.fence import (
    ENVIRONMENT_TAG,
    FenceScope,
    WorkloadBoundaries,
    dashboard_fence,
    environment_fence,
    role_fence,
    sandbox_scope,
)
from infra.aws.sandbox_identity import sandbox_deploy_output, sandbox_service_statements
from infra.aws.state_access import StateGrant, state_grant, state_guard_statements, state_statements
from infra.config import Environment, StackSettings
from infra.github import CiRole, trusted_subjects
from infra.naming import short_name

GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com"
STS_AUDIENCE = "sts.amazonaws.com"
SANDBOX_GITHUB_ENVIRONMENT = "sandbox"
# PowerUserAccess: every service but IAM, Organizations and Account, for the resources a deploy creates before
# they have names; fenced by the inline policies. ReadOnlyAccess: what `pulumi preview` reads.
DEPLOY_MANAGED_POLICY = "PowerUserAccess"
PREVIEW_MANAGED_POLICY = "ReadOnlyAccess"
# MaxSessionDuration (3600-43200 s, https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html):
# see the module docstring. A workflow's `role-duration-seconds` must lie between its job's
# timeout-minutes x 60 and these.
DEPLOY_SESSION_SECONDS = 7200
PREVIEW_SESSION_SECONDS = 3600
RETRAIN_SESSION_SECONDS = 3600  # retrain.yml reads the password once, at the start of a 30-minute job
RETRAIN_READS = ("secretsmanager:GetSecretValue",)
# What a preview never reads, whatever ReadOnlyAccess allows: secret values, parameters and log contents.
PREVIEW_DENIED_DATA = (
    "secretsmanager:GetSecretValue",
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "ssm:GetParameterHistory",
    "logs:GetLogEvents",
    "logs:FilterLogEvents",
    "logs:GetLogRecord",
    "logs:StartQuery",
    "logs:StartLiveTail",
)
CI_READS = (
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies",
    "iam:ListRoleTags",
)
BOUNDARY_READS = ("iam:GetPolicy", "iam:GetPolicyVersion", "iam:ListPolicyVersions", "iam:ListPolicyTags")


@dataclass(frozen=True, kw_only=True)
class CiIdentityArgs:
    settings: StackSettings
    account: Account  # with this stack's boundaries set (fence.fence_workloads)
    scope: FenceScope  # this stack's (fence.stack_scope)
    tracking_password_secret_arn: pulumi.Input[str]  # the MLflow admin password: all the retrain role reads


class CiIdentity(pulumi.ComponentResource):
    deploy_role_arn: pulumi.Output[str]
    preview_role_arn: pulumi.Output[str]
    retrain_role_arn: pulumi.Output[str]
    sandbox_role_arn: pulumi.Output[str] | None
    provider_arn: pulumi.Output[str]

    def __init__(self, name: str, args: CiIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-stack:aws:CiIdentity", name, None, opts)
        settings, account = args.settings, args.account
        if settings.is_sandbox:
            raise ValueError("sandbox stacks make no CI identity: the dev stack's sandbox role deploys them")
        if account.workload_boundary_arn is None or account.infrastructure_boundary_arn is None:
            raise ValueError("the CI identities fence roles by the stack's boundaries: make them first")
        own_boundaries = [account.workload_boundary_arn, account.infrastructure_boundary_arn]
        self._name, self._settings, self._account = name, settings, account
        if settings.aws_oidc_provider_arn:
            # An account has at most one provider per URL: reuse the one named in config.
            self.provider_arn = pulumi.Output.from_input(settings.aws_oidc_provider_arn)
        else:
            self.provider_arn = aws_iam.OpenIdConnectProvider(
                f"{name}-github-oidc",
                url=GITHUB_OIDC_URL,
                client_id_lists=[STS_AUDIENCE],
                opts=pulumi.ResourceOptions(parent=self),
            ).arn
        if settings.state is None:
            pulumi.log.warn(
                f"{settings.stack}: mlops-stack:stateBackend/stateSecretsProvider are not set, so the CI "
                "roles get no access to the state and CI cannot preview or deploy this stack: set both to "
                "what scripts/bootstrap.py printed for this environment",
                self,
            )
        state = state_grant(settings.state, account, self) if settings.state else None
        repository = settings.github_repository

        deploy = self._role(
            "deploy",
            f"repo:{repository}:environment:{settings.github_environment}",
            f"GitHub Actions deploys {settings.stack} from {repository}",
            DEPLOY_SESSION_SECONDS,
        )
        self._attach(deploy, "deploy", DEPLOY_MANAGED_POLICY)
        ci_path = account.arn("iam", f"role/mlops-stack/{settings.stack}/ci/*", regional=False)
        self._inline(
            deploy,
            "deploy-fence",
            [
                *role_fence(account, args.scope, own_boundaries, self.provider_arn),
                iam.allow("ReadCiIdentity", list(CI_READS), [ci_path]),
                iam.allow(
                    "ReadBoundaries",
                    list(BOUNDARY_READS),
                    [account.arn("iam", "policy/mlops-stack/*", regional=False)],
                ),
                iam.allow("ReadOidcProvider", ["iam:GetOpenIDConnectProvider"], [self.provider_arn]),
                *environment_fence(settings.environment),
                *dashboard_fence(account, args.scope),
            ],
        )
        if state is not None:
            self._inline(
                deploy, "deploy-state", [*state_statements(state, write=True), *state_guard_statements(state)]
            )

        # Pull requests may preview dev and staging; prod is previewed only from the deploy branch, before the
        # prod approval (deploy.yml), never by a pull request's code.
        preview_subject = (
            f"repo:{repository}:ref:refs/heads/{settings.github_branch}"
            if settings.environment is Environment.PROD
            else f"repo:{repository}:pull_request"
        )
        preview = self._role(
            "preview",
            preview_subject,
            f"GitHub Actions previews {settings.stack} (read-only)",
            PREVIEW_SESSION_SECONDS,
        )
        self._attach(preview, "preview", PREVIEW_MANAGED_POLICY)
        self._inline(
            preview, "preview-limits", [*preview_limits(state), *environment_fence(settings.environment)]
        )
        if state is not None:
            self._inline(preview, "preview-state", state_statements(state, write=False))

        retrain = self._role(
            "retrain",
            trusted_subjects(settings)[CiRole.RETRAIN],
            f"GitHub Actions retrains against {settings.stack}'s MLflow (reads its admin password only)",
            RETRAIN_SESSION_SECONDS,
        )
        self._inline(
            retrain,
            "retrain-tracking-password",
            [
                iam.allow(
                    "ReadTrackingAdminPassword", list(RETRAIN_READS), [args.tracking_password_secret_arn]
                )
            ],
        )
        self._tracking_password_secret_arn = args.tracking_password_secret_arn

        self.sandbox_role_arn = self._sandbox_role() if settings.hosts_sandboxes else None
        self.retrain_role_arn = retrain.arn
        self.deploy_role_arn = deploy.arn
        self.preview_role_arn = preview.arn
        self.register_outputs({"deployRoleArn": deploy.arn, "previewRoleArn": preview.arn})

    def identity(self) -> dict[str, pulumi.Input[str]]:
        """The stack's `ciIdentity` output."""
        return {
            "deployRoleArn": self.deploy_role_arn,
            "previewRoleArn": self.preview_role_arn,
            "retrainRoleArn": self.retrain_role_arn,
            "trackingPasswordSecret": self._tracking_password_secret_arn,
            "region": self._settings.region,
        }

    def sandbox_identity(self) -> dict[str, pulumi.Input[str]] | None:
        """The dev stack's `sandboxCiIdentity` output (None without `sandboxes: true`)."""
        if self.sandbox_role_arn is None:
            return None
        return sandbox_deploy_output(self.sandbox_role_arn, self._settings.region)

    def _sandbox_role(self) -> pulumi.Output[str]:
        settings, account, name = self._settings, self._account, self._name
        scope = sandbox_scope(settings, account)
        boundaries = WorkloadBoundaries(
            f"{name}-sandbox-boundaries", account, scope, opts=pulumi.ResourceOptions(parent=self)
        )
        boundary_arns = [boundaries.workload_arn, boundaries.infrastructure_arn]
        role = self._role(
            "sandbox",
            f"repo:{settings.github_repository}:environment:{SANDBOX_GITHUB_ENVIRONMENT}",
            f"GitHub Actions deploys sandbox stacks from {settings.github_repository}",
            DEPLOY_SESSION_SECONDS,
            # It is the sandbox environment's identity: its own tag says so (state bucket policies key on it).
            tags={ENVIRONMENT_TAG: Environment.SANDBOX.value},
        )
        self._inline(
            role,
            "sandbox-iam",
            [
                *role_fence(account, scope, boundary_arns, self.provider_arn),
                *environment_fence(Environment.SANDBOX),
            ],
        )
        # A managed policy (6,144 characters) rather than inline: the role's inline policies share 10,240
        # (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
        services = aws_iam.Policy(
            f"{name}-sandbox-services",
            name=f"{scope.boundary_prefix}-deploy-services",
            path=scope.boundary_path,
            description="What the sandboxes' deploy identity may do outside IAM and the state",
            policy=iam.document(*sandbox_service_statements(account, scope)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws_iam.RolePolicyAttachment(
            f"{name}-sandbox-services-attachment",
            role=role.name,
            policy_arn=services.arn,
            opts=pulumi.ResourceOptions(parent=self),
        )
        if settings.sandbox_state is not None:
            grant = state_grant(settings.sandbox_state, account, self)
            self._inline(
                role, "sandbox-state", [*state_statements(grant, write=True), *state_guard_statements(grant)]
            )
        else:
            pulumi.log.warn(
                f"{settings.stack}: sandboxes is true but mlops-stack:sandboxStateBackend/"
                "sandboxStateSecretsProvider are not set, so sandbox jobs cannot reach their state: set both "
                "to what scripts/bootstrap.py printed for the sandbox environment",
                self,
            )
        return role.arn

    def _role(
        self,
        kind: str,
        subject: str,
        description: str,
        session_seconds: int,
        tags: dict[str, str] | None = None,
    ) -> aws_iam.Role:
        settings = self._settings
        return aws_iam.Role(
            f"{self._name}-{kind}",
            name_prefix=short_name(settings.stack, kind, max_length=37) + "-",
            path=f"/mlops-stack/{settings.stack}/ci/",
            description=description,
            assume_role_policy=iam.github_oidc_trust(self.provider_arn, subject),
            max_session_duration=session_seconds,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _attach(self, role: aws_iam.Role, kind: str, managed_policy: str) -> None:
        aws_iam.RolePolicyAttachment(
            f"{self._name}-{kind}-managed",
            role=role.name,
            policy_arn=self._account.managed_policy(managed_policy),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _inline(self, role: aws_iam.Role, policy_name: str, statements: list[iam.Statement]) -> None:
        aws_iam.RolePolicy(
            f"{self._name}-{policy_name}",
            name=policy_name,
            role=role.id,
            policy=iam.document(*statements),
            opts=pulumi.ResourceOptions(parent=self),
        )


def preview_limits(state: StateGrant | None) -> list[iam.Statement]:
    """What ReadOnlyAccess would let a preview read that it must not: any object but its state's, any key's
    decryption but its state key's, secret values, parameters, log contents."""
    return [
        iam.deny_outside(
            "NoObjectsButState", ["s3:GetObject", "s3:GetObjectVersion"], [state.objects_arn] if state else []
        ),
        iam.deny_outside("NoDecryptButStateKey", ["kms:Decrypt"], [state.key_arn] if state else []),
        iam.deny("NoSecretsOrLogs", list(PREVIEW_DENIED_DATA), ["*"]),
    ]
