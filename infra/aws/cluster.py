"""The ECS cluster the stack's Express services run in, and the infrastructure role Express Mode uses to
create their load balancer, target groups, security-group rules, certificates and scaling policies."""

from dataclasses import dataclass

import pulumi
from pulumi_aws import ecs
from pulumi_aws import iam as aws_iam

from infra.aws import iam
from infra.aws.account import Account
from infra.config import StackSettings
from infra.naming import short_name

# AWS's managed policy for exactly this role. It has `*` resources because the load balancers, target groups
# and certificates it manages do not exist (and have no names) until Express Mode creates them.
EXPRESS_INFRASTRUCTURE_POLICY = "service-role/AmazonECSInfrastructureRoleforExpressGatewayServices"


@dataclass(frozen=True, kw_only=True)
class ServiceClusterArgs:
    settings: StackSettings
    account: Account


class ServiceCluster(pulumi.ComponentResource):
    cluster_name: pulumi.Output[str]
    infrastructure_role_arn: pulumi.Output[str]
    # The role's policy must outlive the services: Express Mode uses it to delete their load balancer, target
    # groups and scaling policies, so services depend on it (else destroy leaves them in DRAINING).
    infrastructure_policy: aws_iam.RolePolicyAttachment

    def __init__(
        self, name: str, args: ServiceClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops-stack:aws:ServiceCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cluster = ecs.Cluster(
            f"{name}-cluster",
            name=args.settings.stack,
            # Container Insights is billed per metric; the services' own logs and ALB metrics suffice here.
            settings=[ecs.ClusterSettingArgs(name="containerInsights", value="disabled")],
            opts=child,
        )
        role = aws_iam.Role(
            f"{name}-infrastructure",
            name_prefix=short_name(args.settings.stack, "infra", max_length=32) + "-",
            path=workload_role_path(args.settings),
            description=f"ECS Express Mode manages the load balancer and scaling of {args.settings.stack}",
            # No aws:SourceAccount condition: AWS's trust policy for this role has none
            # (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/infrastructure_IAM_role.html, and
            # the Express getting-started guide), nothing documents that ECS sends the key when it assumes
            # the role, and a condition on an absent key denies. ECS can only be handed this role by a
            # principal of this account with iam:PassRole on it (PassRole does not cross accounts).
            assume_role_policy=iam.service_trust("ecs.amazonaws.com", source_account=None),
            permissions_boundary=args.account.infrastructure_boundary_arn,
            opts=child,
        )
        self.infrastructure_policy = aws_iam.RolePolicyAttachment(
            f"{name}-infrastructure-policy",
            role=role.name,
            policy_arn=args.account.managed_policy(EXPRESS_INFRASTRUCTURE_POLICY),
            opts=child,
        )
        self.cluster_name = cluster.name
        self.infrastructure_role_arn = role.arn
        self.register_outputs({"clusterName": cluster.name})


def workload_role_path(settings: StackSettings) -> str:
    """IAM path of the roles the workloads use; the CI deploy role may manage roles under it and no others."""
    return f"/mlops-stack/{settings.stack}/workloads/"
