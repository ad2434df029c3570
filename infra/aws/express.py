"""One ECS Express Mode service with its own roles, log group and secrets.

Each service gets:
- an execution role (used by ECS to start tasks) that may pull only this stack's images, write only this
  service's log group and read only this service's secrets;
- a task role (used by the code in the container) with exactly the statements the caller passes;
- its secrets in Secrets Manager, referenced from the container by ARN.

Express Mode puts an HTTPS Application Load Balancer in front of the tasks and gives the service a URL under
`*.ecs.<region>.on.aws`, which starts with the service name. The name is ours (with a random suffix, since ECS
keeps names of deleted services for a while), so the host the service will be reached at is known, as a
pattern, before AWS creates it.

Scaling: Express Mode scales on a target-tracking metric and needs at least one task behind the load balancer
(there is no request-driven start from zero as on Cloud Run), so a configured minimum of 0 runs one task.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_random as random
from pulumi_aws import cloudwatch, ecs
from pulumi_aws import iam as aws_iam

from infra.aws import iam
from infra.aws.account import Account
from infra.aws.cluster import workload_role_path
from infra.aws.secrets import store_secrets
from infra.config import ContainerSettings, StackSettings
from infra.naming import short_name
from infra.workloads import ContainerEnvironment

ECS_CPU_UNITS_PER_VCPU = 1024
SCALING_METRIC = "AVERAGE_CPU"
SCALING_TARGET_PERCENT = 60


@dataclass(frozen=True)
class ServiceName:
    """The service's name and the Host header pattern its Express URL will match."""

    name: pulumi.Output[str]
    host_pattern: pulumi.Output[str]


def reserve_service_name(
    name: str, settings: StackSettings, purpose: str, parent: pulumi.Resource
) -> ServiceName:
    suffix = random.RandomString(
        f"{name}-suffix", length=6, special=False, upper=False, opts=pulumi.ResourceOptions(parent=parent)
    ).result
    base = short_name(settings.stack, purpose, max_length=40)
    service_name = pulumi.Output.concat(base, "-", suffix)
    return ServiceName(
        name=service_name,
        host_pattern=pulumi.Output.concat(service_name, f"*.ecs.{settings.region}.on.aws"),
    )


@dataclass(frozen=True)
class ExpressServiceArgs:
    settings: StackSettings
    account: Account
    purpose: str  # "tracking" or "api": names, log group, secrets
    service_name: ServiceName
    image: pulumi.Input[str]
    container: ContainerSettings
    port: int
    health_check_path: str
    environment: ContainerEnvironment
    task_statements: Sequence[iam.Statement]
    cluster_name: pulumi.Input[str]
    infrastructure_role_arn: pulumi.Input[str]
    repository_arns: Sequence[pulumi.Input[str]]
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]


class ExpressService(pulumi.ComponentResource):
    url: pulumi.Output[str]
    task_role_arn: pulumi.Output[str]
    execution_role_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: ExpressServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops-stack:aws:ExpressService", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)
        logs = cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/mlops-stack/{settings.stack}/{args.purpose}",
            retention_in_days=settings.log_retention_days,
            opts=child,
        )
        secrets = store_secrets(f"{name}-secret", settings, args.environment.secrets, self)

        execution_role = self._role(
            name,
            "execution",
            args,
            "ECS pulls the image, writes logs and reads secrets for",
            [
                # GetAuthorizationToken has no resource-level permissions: AWS only accepts "*" here.
                iam.allow("EcrLogin", ["ecr:GetAuthorizationToken"], ["*"]),
                iam.allow(
                    "PullThisStacksImages",
                    ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                    list(args.repository_arns),
                ),
                iam.allow(
                    "WriteThisServicesLogs",
                    ["logs:CreateLogStream", "logs:PutLogEvents"],
                    [pulumi.Output.concat(logs.arn, ":log-stream:*")],
                ),
                *(
                    [
                        iam.allow(
                            "ReadThisServicesSecrets",
                            ["secretsmanager:GetSecretValue"],
                            [s.arn for s in secrets],
                        )
                    ]
                    if secrets
                    else []
                ),
            ],
        )
        task_role = self._role(name, "task", args, "Runtime permissions of", list(args.task_statements))

        service = ecs.ExpressGatewayService(
            f"{name}-service",
            service_name=args.service_name.name,
            cluster=args.cluster_name,
            execution_role_arn=execution_role.arn,
            infrastructure_role_arn=args.infrastructure_role_arn,
            task_role_arn=task_role.arn,
            cpu=str(int(args.container.cpu * ECS_CPU_UNITS_PER_VCPU)),
            memory=str(args.container.memory_mib),
            health_check_path=args.health_check_path,
            network_configurations=[
                ecs.ExpressGatewayServiceNetworkConfigurationArgs(
                    subnets=list(args.subnet_ids), security_groups=[args.security_group_id]
                )
            ],
            primary_container=ecs.ExpressGatewayServicePrimaryContainerArgs(
                image=args.image,
                container_port=args.port,
                environments=[
                    ecs.ExpressGatewayServicePrimaryContainerEnvironmentArgs(name=key, value=value)
                    for key, value in sorted(args.environment.plain.items())
                ],
                secrets=[
                    ecs.ExpressGatewayServicePrimaryContainerSecretArgs(name=s.variable, value_from=s.arn)
                    for s in secrets
                ],
                aws_logs_configurations=[
                    ecs.ExpressGatewayServicePrimaryContainerAwsLogsConfigurationArgs(
                        log_group=logs.name, log_stream_prefix=args.purpose
                    )
                ],
            ),
            scaling_targets=[
                ecs.ExpressGatewayServiceScalingTargetArgs(
                    auto_scaling_metric=SCALING_METRIC,
                    auto_scaling_target_value=SCALING_TARGET_PERCENT,
                    min_task_count=max(1, args.container.min_instances),
                    max_task_count=args.container.max_instances,
                )
            ],
            wait_for_steady_state=True,
            opts=child,
        )
        self.url = service.ingress_paths.apply(_public_url)
        self.task_role_arn = task_role.arn
        self.execution_role_arn = execution_role.arn
        self.register_outputs({"url": self.url})

    def _role(
        self,
        name: str,
        kind: str,
        args: ExpressServiceArgs,
        description: str,
        statements: list[iam.Statement],
    ) -> aws_iam.Role:
        """A role ECS tasks assume, with one inline policy (none when it needs no permissions)."""
        settings = args.settings
        role = aws_iam.Role(
            f"{name}-{kind}-role",
            name_prefix=short_name(settings.stack, args.purpose, kind, max_length=37) + "-",
            path=workload_role_path(settings),
            description=f"{description} {args.purpose} of {settings.stack}",
            assume_role_policy=iam.service_trust("ecs-tasks.amazonaws.com", args.account.id),
            permissions_boundary=args.account.workload_boundary_arn,
            opts=pulumi.ResourceOptions(parent=self),
        )
        if statements:
            aws_iam.RolePolicy(
                f"{name}-{kind}-policy",
                role=role.id,
                policy=iam.document(*statements),
                opts=pulumi.ResourceOptions(parent=self),
            )
        return role


def _public_url(ingress_paths: Sequence[object] | None) -> str:
    """The https URL of the service's public ingress path ("" before AWS has assigned one)."""
    for path in ingress_paths or []:
        access = _field(path, "access_type", "accessType")
        endpoint = _field(path, "endpoint", "endpoint")
        if access == "PUBLIC" and endpoint:
            return endpoint if endpoint.startswith("https://") else f"https://{endpoint.rstrip('/')}"
    return ""


def _field(value: object, attribute: str, key: str) -> str:
    if isinstance(value, dict):
        return str(value.get(attribute) or value.get(key) or "")
    return str(getattr(value, attribute, "") or "")
