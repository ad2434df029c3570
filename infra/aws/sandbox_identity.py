"""What the sandboxes' deploy identity may do: create, update and destroy sandbox resources, and nothing else.

The dev stack with `sandboxes: true` makes this role (infra/aws/ci_identity.py); sandbox stacks make no CI
identity. It has no PowerUserAccess: every grant below is scoped to sandbox resources, per service, by the
means the service offers (the Service Authorization Reference lists, per action, which resource ARNs and
condition keys it evaluates: https://docs.aws.amazon.com/service-authorization/latest/reference/):

- ECR: repository names `<stack>/<image>`, so `repository/aws-sandbox-*/*`.
- CloudWatch Logs: log group names `/mlops-stack/<stack>/…`; DescribeLogGroups (no resource) on "*".
- Secrets Manager: secret names `mlops-stack/<stack>/…`.
- S3: bucket names start with the stack name: `arn:aws:s3:::aws-sandbox-*`.
- RDS: identifiers and subnet group names start with the stack name; CreateDBCluster/CreateDBInstance also
  authorize the default parameter and option groups (`cluster-pg:default.*`, `pg:default.*`, `og:default:*`).
- ECS: the cluster is named after the stack, so `cluster/`, `service/`, `task/`, `task-definition/`…
  `aws-sandbox-*`; Describe*/List* on "*".
- IAM: roles under `/mlops-stack/aws-sandbox-*/workloads/` only, always with a sandbox boundary
  (infra/aws/fence.py), passed to ECS only; nothing on CI roles, boundaries or the OIDC provider.
- KMS: key ids are random, so CreateKey only with the request tag `environment=sandbox` and every other key
  action only on keys tagged so.
- EC2 (VPC, subnets, routes, gateways, endpoints, security groups and their rules): ids are random, so
  creation only with the request tag `environment=sandbox` (tag-on-create), every other action only on
  resources tagged so; Describe* on "*".

Over all of it, the environment deny (fence.environment_fence) refuses any action on a resource tagged with
another environment and any tag of another environment. What this cannot stop: Describe/List calls on "*"
(configuration, not data, of the whole account), a sandbox claiming an *untagged* KMS key or EC2 resource
by tagging it `environment=sandbox`, and sandbox stacks exhausting account quotas (VPCs per region, Elastic
IPs, ...). Those are why sandboxes belong in the dev account, and dev in its own account.
"""

import pulumi

from infra.aws import iam
from infra.aws.account import Account
from infra.aws.fence import ENVIRONMENT_TAG, FenceScope, tag_is

# EC2 resource types the network module creates, and the actions that create (tag-on-create) or manage them.
EC2_CREATE_ACTIONS = (
    "ec2:CreateVpc",
    "ec2:CreateSubnet",
    "ec2:CreateInternetGateway",
    "ec2:CreateRouteTable",
    "ec2:CreateSecurityGroup",
    "ec2:CreateVpcEndpoint",
    "ec2:AuthorizeSecurityGroupEgress",
    "ec2:AuthorizeSecurityGroupIngress",
)
EC2_MANAGE_ACTIONS = (
    *EC2_CREATE_ACTIONS,
    "ec2:CreateRoute",
    "ec2:DeleteRoute",
    "ec2:ReplaceRoute",
    "ec2:AssociateRouteTable",
    "ec2:DisassociateRouteTable",
    "ec2:AttachInternetGateway",
    "ec2:DetachInternetGateway",
    "ec2:ModifyVpcAttribute",
    "ec2:ModifySubnetAttribute",
    "ec2:ModifyVpcEndpoint",
    "ec2:ModifySecurityGroupRules",
    "ec2:UpdateSecurityGroupRuleDescriptionsEgress",
    "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
    "ec2:RevokeSecurityGroupEgress",
    "ec2:RevokeSecurityGroupIngress",
    "ec2:DeleteVpc",
    "ec2:DeleteSubnet",
    "ec2:DeleteInternetGateway",
    "ec2:DeleteRouteTable",
    "ec2:DeleteSecurityGroup",
    "ec2:DeleteVpcEndpoints",
    "ec2:CreateTags",
    "ec2:DeleteTags",
)
EC2_CREATED_TYPES = (
    "vpc",
    "subnet",
    "internet-gateway",
    "route-table",
    "security-group",
    "security-group-rule",
    "vpc-endpoint",
)


def sandbox_service_statements(account: Account, scope: FenceScope) -> list[iam.Statement]:
    """Every non-IAM grant of the sandbox deploy identity (IAM: fence.role_fence; state: state_access)."""
    pattern = scope.stack_pattern
    sandbox_tagged = tag_is(ENVIRONMENT_TAG, scope.environment.value)
    tagging_sandbox = tag_is(ENVIRONMENT_TAG, scope.environment.value, request=True)
    ec2_types = [account.arn("ec2", f"{kind}/*") for kind in EC2_CREATED_TYPES]
    rds = [
        account.arn("rds", f"{kind}:{pattern}") for kind in ("cluster", "db", "subgrp", "cluster-snapshot")
    ]
    rds_defaults = [
        account.arn("rds", name) for name in ("cluster-pg:default.*", "pg:default.*", "og:default:*")
    ]
    buckets = list(scope.artifact_buckets)
    return [
        iam.allow(
            "Reads",
            [
                "ec2:Describe*",
                "ecs:Describe*",
                "ecs:List*",
                "rds:Describe*",
                "elasticloadbalancing:Describe*",
            ],
            ["*"],
        ),
        # No resource-level permissions for these: AWS accepts only "*".
        iam.allow(
            "AccountWideCalls",
            ["ecr:GetAuthorizationToken", "logs:DescribeLogGroups", "kms:ListAliases", "kms:ListKeys"],
            ["*"],
        ),
        iam.allow("SandboxRepositories", ["ecr:*"], [account.arn("ecr", f"repository/{pattern}/*")]),
        iam.allow("SandboxLogs", ["logs:*"], [account.arn("logs", f"log-group:/mlops-stack/{pattern}/*")]),
        iam.allow(
            "SandboxSecrets",
            ["secretsmanager:*"],
            [account.arn("secretsmanager", f"secret:mlops-stack/{pattern}/*")],
        ),
        iam.allow("SandboxBuckets", ["s3:*"], [*buckets, *(pulumi.Output.concat(b, "/*") for b in buckets)]),
        iam.allow("SandboxDatabases", ["rds:*"], rds),
        iam.allow(
            "DefaultDatabaseGroups",
            ["rds:CreateDBCluster", "rds:CreateDBInstance", "rds:ModifyDBCluster", "rds:ModifyDBInstance"],
            rds_defaults,
        ),
        iam.allow(
            "SandboxEcs",
            ["ecs:*"],
            # cluster/, service/, task/, task-definition/… whose name (cluster: the stack) starts so.
            [account.arn("ecs", f"*/{pattern}")],
        ),
        iam.allow(
            "CreateSandboxKeys", ["kms:CreateKey", "kms:TagResource"], ["*"], condition=tagging_sandbox
        ),
        iam.allow("SandboxKeys", ["kms:*"], [account.arn("kms", "key/*")], condition=sandbox_tagged),
        iam.allow("CreateSandboxNetwork", list(EC2_CREATE_ACTIONS), ec2_types, condition=tagging_sandbox),
        iam.allow("SandboxNetwork", list(EC2_MANAGE_ACTIONS), ec2_types, condition=sandbox_tagged),
        # Tag-on-create: creating a tagged EC2 resource also authorizes ec2:CreateTags for that create action
        # (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html).
        iam.allow(
            "TagNetworkOnCreate",
            ["ec2:CreateTags"],
            ec2_types,
            condition={
                "StringEquals": {"ec2:CreateAction": [a.removeprefix("ec2:") for a in EC2_CREATE_ACTIONS]}
            },
        ),
    ]


def sandbox_deploy_output(role_arn: pulumi.Input[str], region: str) -> dict[str, pulumi.Input[str]]:
    """The dev stack's `sandboxCiIdentity`: how sandbox jobs log in (ciIdentity's shape, deploy role)."""
    return {"deployRoleArn": role_arn, "region": region}
