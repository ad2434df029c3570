"""A small VPC of our own: two public subnets for the Express services (their load balancer and tasks), two
isolated subnets for the database, VPC endpoints through which the tasks reach AWS, and security groups that
let the tasks reach only those endpoints (and the tracking server its database).

Why a VPC of our own rather than the default VPC: the default VPC may have been deleted or changed, and its
default security group admits everything in it. A VPC, subnets, route tables and an internet gateway cost
nothing.

How the tasks reach ECR, S3, Secrets Manager and CloudWatch Logs (they must, before the container even
starts: image pull, secrets, log driver):

- Express Mode takes one subnet list for both its load balancer and its tasks
  (`ExpressGatewayServiceNetworkConfiguration` has `subnets` and `securityGroups` only, no `assignPublicIp`:
  botocore's ecs service-2.json). It makes an internet-facing load balancer in public subnets and an internal
  one in private subnets (a public-subnet-less VPC gets an internal ALB: dev.classmethod.jp/articles/
  ecs-express-mode-public-subnet-less). So for a public URL the tasks sit in public subnets (default route to
  the internet gateway), and nothing documents that Express gives them a public IP: without one they have no
  way out (ResourceInitializationError, aws/integrations-on-dotnet-aspire-for-aws#200).
- A NAT gateway or NAT instance cannot help: NAT serves subnets whose default route points at it, i.e.
  private subnets, where Express would put an internal load balancer. Public subnets keep their default route
  on the internet gateway.
- VPC endpoints work in any subnet and need no public IP: the S3 gateway endpoint (free; ECR keeps image
  layers in S3, and the artifacts live there) and interface endpoints for ecr.api, ecr.dkr, secretsmanager and
  logs (https://docs.aws.amazon.com/AmazonECR/latest/userguide/vpc-endpoints.html,
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/vpc-endpoints.html). Fargate tasks need no ECS
  endpoint. That is what this module builds, and the tasks' security groups allow HTTPS only to those
  endpoints and to S3's prefix list: the containers cannot reach the internet at all.

Idle monthly cost in eu-west-1 (730 h), as of the pricing pages https://aws.amazon.com/privatelink/pricing/,
https://aws.amazon.com/vpc/pricing/ and https://aws.amazon.com/ec2/pricing/on-demand/:

| path | idle USD/month | USD/GB | usable by Express tasks in public subnets |
|---|---:|---:|---|
| S3 gateway endpoint | 0 | 0 | yes (S3 only) |
| 4 interface endpoints in one zone (`oneZone`): 4 x 0.011 x 730 | 32.12 | 0.01 | yes |
| 4 interface endpoints in two zones (`everyZone`) | 64.24 | 0.01 | yes |
| NAT gateway in one zone: 0.048/h + its public IPv4 0.005/h | 38.69 | 0.048 | no (private subnets only) |
| NAT instance t4g.nano: 0.0046/h + IPv4 0.005/h + 8 GiB gp3 | 7.71 | 0 | no (private subnets only) |

`awsInterfaceEndpoints` picks one zone (dev, sandbox) or every zone (staging, prod): with one zone, tasks in
the other zone cross zones to the endpoints (0.01 USD/GB each way) and a zone outage stops new tasks there.
"""

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from pulumi_aws import ec2, vpc

from infra.config import InterfaceEndpointZones, StackSettings

VPC_CIDR = "10.42.0.0/16"
PUBLIC_CIDRS = ("10.42.0.0/20", "10.42.16.0/20")
DATABASE_CIDRS = ("10.42.128.0/24", "10.42.129.0/24")
POSTGRES_PORT = 5432
HTTPS_PORT = 443
ANYWHERE = "0.0.0.0/0"
# What an Express task talks to before and while it runs: image manifest and auth (ecr.api), image layers
# (ecr.dkr, then S3), its secrets (secretsmanager) and its log stream (logs).
INTERFACE_ENDPOINT_SERVICES = ("ecr.api", "ecr.dkr", "secretsmanager", "logs")


@dataclass(frozen=True, kw_only=True)
class NetworkArgs:
    settings: StackSettings


class Network(pulumi.ComponentResource):
    """VPC, subnets, routes, the VPC endpoints and the security groups."""

    vpc_id: pulumi.Output[str]
    public_subnet_ids: list[pulumi.Output[str]]
    database_subnet_ids: list[pulumi.Output[str]]
    tracking_security_group_id: pulumi.Output[str]
    api_security_group_id: pulumi.Output[str]
    database_security_group_id: pulumi.Output[str]
    # What an Express service's tasks need for as long as they run (routes, endpoints, egress rules). Services
    # depend on these explicitly, so `pulumi destroy` removes them only after the services have drained.
    service_dependencies: list[pulumi.Resource]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-stack:aws:Network", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)
        zones = aws.get_availability_zones_output(
            state="available", opts=pulumi.InvokeOutputOptions(parent=self)
        ).names

        network = ec2.Vpc(
            f"{name}-vpc",
            cidr_block=VPC_CIDR,
            # Interface endpoints' private DNS names and RDS endpoints resolve in the VPC only with both on.
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={"Name": f"{settings.stack}-vpc"},
            opts=child,
        )
        gateway = ec2.InternetGateway(f"{name}-igw", vpc_id=network.id, opts=child)
        public_routes = ec2.RouteTable(
            f"{name}-public-routes",
            vpc_id=network.id,
            routes=[ec2.RouteTableRouteArgs(cidr_block=ANYWHERE, gateway_id=gateway.id)],
            opts=child,
        )
        # No routes beyond the VPC itself: the database subnets cannot reach or be reached from outside.
        isolated_routes = ec2.RouteTable(f"{name}-isolated-routes", vpc_id=network.id, opts=child)

        self.service_dependencies = [gateway]
        self.public_subnet_ids = []
        self.database_subnet_ids = []
        for index, (public_cidr, database_cidr) in enumerate(zip(PUBLIC_CIDRS, DATABASE_CIDRS, strict=True)):
            zone = zones[index]
            public = ec2.Subnet(
                f"{name}-public-{index}",
                vpc_id=network.id,
                cidr_block=public_cidr,
                availability_zone=zone,
                tags={"Name": f"{settings.stack}-public-{index}"},
                opts=child,
            )
            # Express Mode tells public from private subnets by this route (internet-facing or internal load
            # balancer), so the services must not be created before it is in place.
            self.service_dependencies.append(
                ec2.RouteTableAssociation(
                    f"{name}-public-{index}-routes",
                    subnet_id=public.id,
                    route_table_id=public_routes.id,
                    opts=child,
                )
            )
            database = ec2.Subnet(
                f"{name}-database-{index}",
                vpc_id=network.id,
                cidr_block=database_cidr,
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={"Name": f"{settings.stack}-database-{index}"},
                opts=child,
            )
            ec2.RouteTableAssociation(
                f"{name}-database-{index}-routes",
                subnet_id=database.id,
                route_table_id=isolated_routes.id,
                opts=child,
            )
            self.public_subnet_ids.append(public.id)
            self.database_subnet_ids.append(database.id)

        tracking = self._security_group(name, "tracking", "MLflow tracking server tasks", network.id)
        api = self._security_group(name, "api", "Model API tasks", network.id)
        database_group = self._security_group(name, "database", "PostgreSQL for MLflow", network.id)
        endpoint_group = self._security_group(
            name, "endpoints", "Interface VPC endpoints for the Express tasks", network.id
        )

        # Free: S3 traffic (artifacts, models, ECR's image layers) stays on the AWS network.
        s3_endpoint = ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=network.id,
            service_name=f"com.amazonaws.{settings.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[public_routes.id],
            opts=child,
        )
        self.service_dependencies.append(s3_endpoint)
        endpoint_subnets = (
            self.public_subnet_ids
            if settings.aws_interface_endpoints is InterfaceEndpointZones.EVERY_ZONE
            else self.public_subnet_ids[:1]
        )
        for service in INTERFACE_ENDPOINT_SERVICES:
            self.service_dependencies.append(
                ec2.VpcEndpoint(
                    f"{name}-{service.replace('.', '-')}",
                    vpc_id=network.id,
                    service_name=f"com.amazonaws.{settings.region}.{service}",
                    vpc_endpoint_type="Interface",
                    # The services' usual hostnames resolve to the endpoint inside the VPC: no client changes.
                    private_dns_enabled=True,
                    subnet_ids=endpoint_subnets,
                    security_group_ids=[endpoint_group.id],
                    opts=child,
                )
            )

        for purpose, group in (("tracking", tracking), ("api", api)):
            self.service_dependencies += [
                vpc.SecurityGroupEgressRule(
                    f"{name}-{purpose}-endpoints-out",
                    security_group_id=group.id,
                    description="HTTPS to the interface endpoints (ECR, Secrets Manager, CloudWatch Logs)",
                    ip_protocol="tcp",
                    from_port=HTTPS_PORT,
                    to_port=HTTPS_PORT,
                    referenced_security_group_id=endpoint_group.id,
                    opts=child,
                ),
                vpc.SecurityGroupEgressRule(
                    f"{name}-{purpose}-s3-out",
                    security_group_id=group.id,
                    description="HTTPS to S3 through the gateway endpoint",
                    ip_protocol="tcp",
                    from_port=HTTPS_PORT,
                    to_port=HTTPS_PORT,
                    prefix_list_id=s3_endpoint.prefix_list_id,
                    opts=child,
                ),
                vpc.SecurityGroupIngressRule(
                    f"{name}-endpoints-from-{purpose}",
                    security_group_id=endpoint_group.id,
                    description=f"HTTPS from the {purpose} tasks",
                    ip_protocol="tcp",
                    from_port=HTTPS_PORT,
                    to_port=HTTPS_PORT,
                    referenced_security_group_id=group.id,
                    opts=child,
                ),
            ]
        self.service_dependencies.append(
            vpc.SecurityGroupEgressRule(
                f"{name}-tracking-postgres-out",
                security_group_id=tracking.id,
                description="MLflow to its database",
                ip_protocol="tcp",
                from_port=POSTGRES_PORT,
                to_port=POSTGRES_PORT,
                referenced_security_group_id=database_group.id,
                opts=child,
            )
        )
        # The only way into the database: from the tracking server's tasks.
        vpc.SecurityGroupIngressRule(
            f"{name}-database-from-tracking",
            security_group_id=database_group.id,
            description="PostgreSQL from the MLflow tracking server only",
            ip_protocol="tcp",
            from_port=POSTGRES_PORT,
            to_port=POSTGRES_PORT,
            referenced_security_group_id=tracking.id,
            opts=child,
        )

        self.vpc_id = network.id
        self.tracking_security_group_id = tracking.id
        self.api_security_group_id = api.id
        self.database_security_group_id = database_group.id
        self.register_outputs({"vpcId": network.id})

    def _security_group(
        self, name: str, purpose: str, description: str, vpc_id: pulumi.Input[str]
    ) -> ec2.SecurityGroup:
        """A group without inline rules: rules are separate resources, so the ingress rules Express Mode
        adds for its load balancer are not removed by the next `pulumi up`."""
        return ec2.SecurityGroup(
            f"{name}-{purpose}-sg",
            vpc_id=vpc_id,
            description=description,
            revoke_rules_on_delete=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
