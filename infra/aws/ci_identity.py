"""Keyless CI: GitHub Actions assumes roles through the account's GitHub OIDC provider; no access key exists.

- deploy role: only `repo:<repo>:environment:<githubEnvironment>` (the GitHub environment's protection rules
  decide who may deploy), audience `sts.amazonaws.com`.
- preview role: only `repo:<repo>:pull_request`, read-only, and explicitly denied this stack's data
  (artifacts, secrets, the artifact key), since `pulumi preview` needs to describe resources, not read them.

Both roles live under `/mlops-stack/<stack>/ci/`. The deploy role may manage IAM roles only under the
stack's workload path, so it cannot widen its own trust or permissions: changing the CI roles takes an admin.
"""

from dataclasses import dataclass

import pulumi
from pulumi_aws import iam as aws_iam

from infra.aws import iam
from infra.aws.account import Account
from infra.aws.cluster import workload_role_path
from infra.config import StackSettings
from infra.naming import short_name

GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com"
STS_AUDIENCE = "sts.amazonaws.com"
# What a deploy needs outside IAM spans every service the stack uses (EC2, ECS, ECR, RDS, S3, KMS, Secrets
# Manager, Logs) and resources that do not exist yet, so it cannot be narrowed to named ARNs. PowerUserAccess
# excludes IAM, which the inline policy grants only on this stack's workload roles.
DEPLOY_MANAGED_POLICY = "PowerUserAccess"
PREVIEW_MANAGED_POLICY = "ReadOnlyAccess"
# Service-linked roles Express Mode, load balancing, auto scaling and RDS create on first use.
SERVICE_LINKED_ROLE_SERVICES = (
    "ecs.amazonaws.com",
    "elasticloadbalancing.amazonaws.com",
    "ecs.application-autoscaling.amazonaws.com",
    "rds.amazonaws.com",
)
WORKLOAD_ROLE_ACTIONS = (
    "iam:CreateRole",
    "iam:DeleteRole",
    "iam:GetRole",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
    "iam:UpdateAssumeRolePolicy",
    "iam:PutRolePolicy",
    "iam:GetRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
)


@dataclass(frozen=True)
class CiIdentityArgs:
    settings: StackSettings
    account: Account
    artifact_objects_arn: pulumi.Input[str]
    artifact_key_arn: pulumi.Input[str]


class CiIdentity(pulumi.ComponentResource):
    deploy_role_arn: pulumi.Output[str]
    preview_role_arn: pulumi.Output[str]
    provider_arn: pulumi.Output[str]

    def __init__(self, name: str, args: CiIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-stack:aws:CiIdentity", name, None, opts)
        settings, account = args.settings, args.account
        child = pulumi.ResourceOptions(parent=self)
        if settings.aws_oidc_provider_arn:
            # An account has at most one provider per URL: reuse the one named in config.
            provider_arn: pulumi.Output[str] = pulumi.Output.from_input(settings.aws_oidc_provider_arn)
        else:
            provider_arn = aws_iam.OpenIdConnectProvider(
                f"{name}-github-oidc",
                url=GITHUB_OIDC_URL,
                client_id_lists=[STS_AUDIENCE],
                opts=child,
            ).arn
        repository = settings.github_repository
        path = f"/mlops-stack/{settings.stack}/ci/"

        deploy = aws_iam.Role(
            f"{name}-deploy",
            name_prefix=short_name(settings.stack, "deploy", max_length=37) + "-",
            path=path,
            description=f"GitHub Actions deploys {settings.stack} from {repository}",
            assume_role_policy=iam.github_oidc_trust(
                provider_arn, f"repo:{repository}:environment:{settings.github_environment}"
            ),
            max_session_duration=3600,
            opts=child,
        )
        aws_iam.RolePolicyAttachment(
            f"{name}-deploy-managed",
            role=deploy.name,
            policy_arn=account.managed_policy(DEPLOY_MANAGED_POLICY),
            opts=child,
        )
        workload_roles = account.arn("iam", f"role{workload_role_path(settings)}*", regional=False)
        ci_roles = account.arn("iam", f"role{path}*", regional=False)
        aws_iam.RolePolicy(
            f"{name}-deploy-iam",
            role=deploy.id,
            policy=iam.document(
                iam.allow("ManageWorkloadRoles", list(WORKLOAD_ROLE_ACTIONS), [workload_roles]),
                iam.allow(
                    "PassWorkloadRolesToEcs",
                    ["iam:PassRole"],
                    [workload_roles],
                    condition={
                        "StringEquals": {
                            "iam:PassedToService": ["ecs-tasks.amazonaws.com", "ecs.amazonaws.com"]
                        }
                    },
                ),
                iam.allow(
                    "ReadCiIdentity",
                    [
                        "iam:GetRole",
                        "iam:GetRolePolicy",
                        "iam:ListRolePolicies",
                        "iam:ListAttachedRolePolicies",
                    ],
                    [ci_roles],
                ),
                iam.allow("ReadOidcProvider", ["iam:GetOpenIDConnectProvider"], [provider_arn]),
                iam.allow(
                    "CreateServiceLinkedRoles",
                    ["iam:CreateServiceLinkedRole"],
                    [account.arn("iam", "role/aws-service-role/*", regional=False)],
                    condition={"StringEquals": {"iam:AWSServiceName": list(SERVICE_LINKED_ROLE_SERVICES)}},
                ),
            ),
            opts=child,
        )

        preview = aws_iam.Role(
            f"{name}-preview",
            name_prefix=short_name(settings.stack, "preview", max_length=37) + "-",
            path=path,
            description=f"GitHub Actions previews {settings.stack} on pull requests (read-only)",
            assume_role_policy=iam.github_oidc_trust(provider_arn, f"repo:{repository}:pull_request"),
            max_session_duration=3600,
            opts=child,
        )
        aws_iam.RolePolicyAttachment(
            f"{name}-preview-managed",
            role=preview.name,
            policy_arn=account.managed_policy(PREVIEW_MANAGED_POLICY),
            opts=child,
        )
        aws_iam.RolePolicy(
            f"{name}-preview-no-data",
            role=preview.id,
            policy=iam.document(
                iam.deny(
                    "NoArtifactReads", ["s3:GetObject", "s3:GetObjectVersion"], [args.artifact_objects_arn]
                ),
                iam.deny(
                    "NoSecretValues",
                    ["secretsmanager:GetSecretValue"],
                    [account.arn("secretsmanager", f"secret:mlops-stack/{settings.stack}/*")],
                ),
                iam.deny("NoArtifactKey", ["kms:Decrypt"], [args.artifact_key_arn]),
            ),
            opts=child,
        )

        self.provider_arn = provider_arn
        self.deploy_role_arn = deploy.arn
        self.preview_role_arn = preview.arn
        self.register_outputs({"deployRoleArn": deploy.arn, "previewRoleArn": preview.arn})
