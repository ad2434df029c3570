"""The permissions boundary every workload role carries, so a CI identity that may create roles cannot use
them to become more than it is.

A deploy identity holds PowerUserAccess (no IAM) plus the right to create and change the stack's workload
roles. Without a fence it could make a role with AdministratorAccess, trusted by itself, and assume it. So:
every workload role must carry this boundary (the CI policies allow CreateRole, PutRolePolicy,
AttachRolePolicy, ... only with `iam:PermissionsBoundary` equal to it, and deny removing it), and the boundary
caps any role at PowerUser without IAM, inside its own environment (resources tagged with another
environment are denied). A permissions boundary limits, never grants: the role's own policies still decide
what it may do (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html).

The boundary policy is made by the admin's first `up` (with the CI roles); CI cannot change it, since
PowerUserAccess has no IAM and the CI policies allow IAM writes on workload roles only. Sandbox stacks use the
sandboxes' boundary, which the dev stack with `sandboxes: true` makes under a fixed name: one account holds
at most one dev stack that hosts sandboxes.
"""

import pulumi
from pulumi_aws import iam as aws_iam

from infra.aws import iam
from infra.aws.account import Account
from infra.config import StackSettings

SANDBOX_BOUNDARY_NAME = "mlops-stack-sandbox-workload-boundary"
SANDBOX_ENVIRONMENT = "sandbox"
# Condition keys (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html):
# these IAM actions honour `iam:PermissionsBoundary`; the others on a role do not, and a condition on a key an
# action does not have is never true, so they are allowed without it.
BOUNDED_ROLE_ACTIONS = (
    "iam:CreateRole",
    "iam:PutRolePermissionsBoundary",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
)
OTHER_ROLE_ACTIONS = (
    "iam:DeleteRole",
    "iam:GetRole",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
    "iam:UpdateAssumeRolePolicy",
    "iam:GetRolePolicy",
    "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
)


def boundary_name(settings: StackSettings) -> str:
    return SANDBOX_BOUNDARY_NAME if settings.is_sandbox else f"{settings.stack}-workload-boundary"


def boundary_path(settings: StackSettings) -> str:
    return "/mlops-stack/sandbox/" if settings.is_sandbox else f"/mlops-stack/{settings.stack}/"


def boundary_arn(settings: StackSettings, account: Account) -> pulumi.Output[str]:
    """The boundary this stack's workload roles carry (IAM policy ARNs include the path)."""
    return account.arn("iam", f"policy{boundary_path(settings)}{boundary_name(settings)}", regional=False)


def other_environments_denied(environment: str) -> iam.Statement:
    """Deny everything on resources tagged with another environment (every resource of ours is tagged by
    the provider's default tags). `Null: false` makes the deny apply only where the tag exists: a negated
    operator on a missing key is true, which would deny every untagged resource and every List/Describe
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html)."""
    return {
        "Sid": "NoOtherEnvironments",
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {
            "StringNotEquals": {"aws:ResourceTag/environment": environment},
            "Null": {"aws:ResourceTag/environment": "false"},
        },
    }


def boundary_document(environment: str) -> pulumi.Output[str]:
    return iam.document(
        {
            "Sid": "AtMostPowerUser",
            "Effect": "Allow",
            "NotAction": ["iam:*", "organizations:*", "account:*"],
            "Resource": "*",
        },
        # ECS Express's infrastructure role creates the load balancer's and auto scaling's service-linked
        # roles (its AWS-managed policy, AmazonECSInfrastructureRoleforExpressGatewayServices, does).
        iam.allow("ServiceLinkedRoles", ["iam:CreateServiceLinkedRole"], ["*"]),
        other_environments_denied(environment),
    )


def create_boundary(
    name: str, settings: StackSettings, *, sandbox: bool, parent: pulumi.Resource
) -> aws_iam.Policy:
    """The boundary policy for this stack's workload roles, or (sandbox=True) for all sandboxes'."""
    environment = SANDBOX_ENVIRONMENT if sandbox else settings.environment.value
    return aws_iam.Policy(
        name,
        name=SANDBOX_BOUNDARY_NAME if sandbox else boundary_name(settings),
        path="/mlops-stack/sandbox/" if sandbox else boundary_path(settings),
        description=f"Caps every workload role of {'sandbox stacks' if sandbox else settings.stack}",
        policy=boundary_document(environment),
        opts=pulumi.ResourceOptions(parent=parent),
    )
