"""One ECS Express Mode service with its own roles, log group and secrets.

Each service gets:
- an execution role (used by ECS to start tasks) that may pull only this stack's images, write only this
  service's log group and read only this service's secrets;
- a task role (used by the code in the container) with exactly the statements the caller passes;
- its secrets in Secrets Manager, referenced from the container by ARN.

Express Mode puts an HTTPS Application Load Balancer in front of the tasks and gives the service an endpoint
`<two letters>-<32 hex digits>.ecs.<region>.on.aws`. The 32 hex digits are a random UUID4 (public
deployments show `ni-adada88b582b4d3ea6b21602d2c1abf7` for a service `niriksh-api`, `ca-4f7c4875...` and
`ca-f68d8ab0...` for services `web` and `mcp`: every one has the UUID4 version nibble `4` and variant
`8-b`), and the two letters are not reliably the service name's. The AWS API documents the field only as "the
endpoint for access to the service" (botocore ecs service-2.json, IngressPathSummary). So the host is known
only after AWS creates the service, and is not derivable from anything we choose: `express_host_pattern`
gives the one documented-shape pattern a container can be told in advance.

Scaling: Express Mode scales on a target-tracking metric and needs at least one task behind the load balancer
(there is no request-driven start from zero as on Cloud Run), so a configured minimum of 0 runs one task.
The provider ignores a change to `scaling_target` alone on update (terraform-provider-aws
internal/service/ecs/express_gateway_service.go, Update: `fwflex.WithIgnoredField("scaling_target")` in the
diff that decides whether UpdateExpressGatewayService is called); when anything else changes, the request
carries the planned scaling target. So the scaling settings are also written into a container variable
(`SCALING_VARIABLE`): changing them changes the container, and the update that follows sends them. A
replacement instead would give the service a new endpoint.

Destroy order: Express Mode deletes a service's load balancer, target groups and scaling policies with the
infrastructure role and drains its tasks with the execution role. The provider docs say the service must
depend on its roles' policies (else "the policy may be destroyed too soon and the ECS service will then get
stuck in the DRAINING state": pulumi-aws ecs.ExpressGatewayService), so it depends on every policy of its
roles, the infrastructure role's attachment, its secrets' values, and the network it runs in.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_aws import cloudwatch, ecs
from pulumi_aws import iam as aws_iam

from infra.aws import iam
from infra.aws.account import Account
from infra.aws.cluster import workload_role_path
from infra.aws.limits import ECS_CPU_UNITS_PER_VCPU
from infra.aws.secrets import store_secrets
from infra.config import ContainerSettings, StackSettings
from infra.naming import short_name, unique_name
from infra.workloads import ContainerEnvironment

# The load balancer in front of every Express service closes idle connections after 60 s (ELB's default; we
# do not change it). A target that closes a kept-alive connection first races the balancer's next request onto
# it, which the caller sees as a 502, so AWS asks targets to idle longer than the balancer:
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html#connection-idle-timeout
ALB_IDLE_TIMEOUT_SECONDS = 60
TARGET_KEEP_ALIVE_SECONDS = ALB_IDLE_TIMEOUT_SECONDS + 5
SCALING_METRIC = "AVERAGE_CPU"
SCALING_TARGET_PERCENT = 60
# The container variable that carries the scaling settings, so that changing them updates the service (see the
# module docstring). Neither image reads it.
SCALING_VARIABLE = "MLOPS_STACK_SCALING"
SERVICE_NAME_LENGTH = 47  # 40 readable, '-', 6 random (the name Express gives the service and its hosts)


def reserve_service_name(
    name: str, settings: StackSettings, purpose: str, parent: pulumi.Resource
) -> pulumi.Output[str]:
    """`<stack>-<purpose>-<6 random>`: ECS keeps the names of deleted services for a while, so a recreated
    stack must not reuse one."""
    return unique_name(
        f"{name}-suffix", settings.stack, purpose, max_length=SERVICE_NAME_LENGTH, parent=parent
    )


def express_host_pattern(region: str) -> str:
    """The Host header pattern every Express endpoint of `region` matches (see the module docstring).

    It admits every Express service in the region, of any account. That keeps the point of MLflow's host check
    (DNS rebinding): only AWS's DNS answers for `*.ecs.<region>.on.aws`, each name with its own load balancer,
    and the load balancer forwards to our tasks only requests whose Host is our endpoint (Express routes by
    host-header listener rules) over TLS with a certificate for that name.
    """
    return f"*.ecs.{region}.on.aws"


@dataclass(frozen=True, kw_only=True)
class ExpressServiceArgs:
    settings: StackSettings
    account: Account
    purpose: str  # "tracking" or "api": names, log group, secrets
    service_name: pulumi.Input[str]
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
    # What the service needs for its whole life besides what is made here: the infrastructure role's policy
    # attachment, route-table associations, VPC endpoints and egress rules (see the module docstring).
    depends_on: Sequence[pulumi.Resource]


class ExpressService(pulumi.ComponentResource):
    url: pulumi.Output[str]
    revision: pulumi.Output[str]  # the ARN of the service revision the update deployed
    service_name: pulumi.Output[str]  # the ECS service's name (its metrics, task events and load balancing)
    log_group_name: pulumi.Output[str]
    secret_arns: dict[str, pulumi.Output[str]]  # by variable: whom else to let read one (the retrain role)

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

        execution_role, execution_policy = self._role(
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
        task_role, task_policy = self._role(
            name, "task", args, "Runtime permissions of", list(args.task_statements)
        )
        policies = [policy for policy in (execution_policy, task_policy) if policy is not None]
        min_tasks, max_tasks = max(1, args.container.min_instances), args.container.max_instances
        scaling = ecs.ExpressGatewayServiceScalingTargetArgs(
            auto_scaling_metric=SCALING_METRIC,
            auto_scaling_target_value=SCALING_TARGET_PERCENT,
            min_task_count=min_tasks,
            max_task_count=max_tasks,
        )
        plain = {
            **args.environment.plain,
            SCALING_VARIABLE: f"{SCALING_METRIC}:{SCALING_TARGET_PERCENT}:{min_tasks}-{max_tasks}",
        }

        service = ecs.ExpressGatewayService(
            f"{name}-service",
            service_name=args.service_name,
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
                    for key, value in sorted(plain.items())
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
            scaling_targets=[scaling],
            wait_for_steady_state=True,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*policies, *(secret.version for secret in secrets), *args.depends_on],
            ),
        )
        self.url = service.ingress_paths.apply(_public_url)
        self.revision = service.service_revision_arn
        # Through the service, so that whoever reads these (the alarms) waits until it exists.
        self.service_name = pulumi.Output.all(service.id, args.service_name).apply(lambda values: values[1])
        self.log_group_name = logs.name
        self.secret_arns = {secret.variable: secret.arn for secret in secrets}
        self.register_outputs({"url": self.url})

    def _role(
        self,
        name: str,
        kind: str,
        args: ExpressServiceArgs,
        description: str,
        statements: list[iam.Statement],
    ) -> tuple[aws_iam.Role, aws_iam.RolePolicy | None]:
        """A role ECS tasks assume, with one inline policy (none when it needs no permissions)."""
        settings = args.settings
        role = aws_iam.Role(
            f"{name}-{kind}-role",
            name_prefix=short_name(settings.stack, args.purpose, kind, max_length=37) + "-",
            path=workload_role_path(settings),
            description=f"{description} {args.purpose} of {settings.stack}",
            # ECS documents aws:SourceAccount (and aws:SourceArn) on the task role's trust
            # (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html).
            assume_role_policy=iam.service_trust("ecs-tasks.amazonaws.com", args.account.id),
            permissions_boundary=args.account.workload_boundary_arn,
            opts=pulumi.ResourceOptions(parent=self),
        )
        policy = (
            aws_iam.RolePolicy(
                f"{name}-{kind}-policy",
                role=role.id,
                policy=iam.document(*statements),
                opts=pulumi.ResourceOptions(parent=self),
            )
            if statements
            else None
        )
        return role, policy


def _public_url(ingress_paths: Sequence[object] | None) -> str:
    """The https URL of the service's public ingress path ("" before AWS has assigned one)."""
    for path in ingress_paths or []:
        access = _field(path, "access_type", "accessType")
        endpoint = _field(path, "endpoint", "endpoint")
        if access == "PUBLIC" and endpoint:
            return f"https://{endpoint.removeprefix('https://').rstrip('/')}"
    return ""


def _field(value: object, attribute: str, key: str) -> str:
    if isinstance(value, dict):
        return str(value.get(attribute) or value.get(key) or "")
    return str(getattr(value, attribute, "") or "")
