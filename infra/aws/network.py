"""A small VPC of our own: two public subnets for the Express services' tasks, two isolated subnets for
the database, and security groups that let only the tracking server reach PostgreSQL.

Why a VPC of our own rather than the default VPC: the default VPC may have been deleted or changed, and its
default security group admits everything in it. A VPC, subnets, route tables and an internet gateway cost
nothing.

Why no NAT gateway and no interface endpoints: a NAT gateway (about 33 USD a month plus traffic) or the
four interface endpoints the tasks would need (ECR api, ECR dkr, Secrets Manager, CloudWatch Logs: about
7 USD a month each per AZ) cost more than a whole sandbox. Instead the tasks run in public subnets with a
public IP (Express Mode assigns one in public subnets), reach ECR, Secrets Manager and Logs over TLS on
443, and accept inbound traffic only through the security-group rules Express Mode adds for its load
balancer. S3 traffic takes the free gateway endpoint, so artifacts never leave the AWS network. The
database subnets have no route to the internet at all.
"""

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from pulumi_aws import ec2, vpc

from infra.config import StackSettings

VPC_CIDR = "10.42.0.0/16"
PUBLIC_CIDRS = ("10.42.0.0/20", "10.42.16.0/20")
DATABASE_CIDRS = ("10.42.128.0/24", "10.42.129.0/24")
POSTGRES_PORT = 5432
ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True)
class NetworkArgs:
    settings: StackSettings


class Network(pulumi.ComponentResource):
    """VPC, subnets, routes, the S3 gateway endpoint and the three security groups."""

    vpc_id: pulumi.Output[str]
    public_subnet_ids: list[pulumi.Output[str]]
    database_subnet_ids: list[pulumi.Output[str]]
    tracking_security_group_id: pulumi.Output[str]
    api_security_group_id: pulumi.Output[str]
    database_security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-stack:aws:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        zones = aws.get_availability_zones_output(
            state="available", opts=pulumi.InvokeOutputOptions(parent=self)
        ).names

        network = ec2.Vpc(
            f"{name}-vpc",
            cidr_block=VPC_CIDR,
            enable_dns_support=True,
            enable_dns_hostnames=True,  # RDS endpoints resolve to private addresses only with this on
            tags={"Name": f"{args.settings.stack}-vpc"},
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

        self.public_subnet_ids = []
        self.database_subnet_ids = []
        for index, (public_cidr, database_cidr) in enumerate(zip(PUBLIC_CIDRS, DATABASE_CIDRS, strict=True)):
            zone = zones[index]
            public = ec2.Subnet(
                f"{name}-public-{index}",
                vpc_id=network.id,
                cidr_block=public_cidr,
                availability_zone=zone,
                tags={"Name": f"{args.settings.stack}-public-{index}"},
                opts=child,
            )
            ec2.RouteTableAssociation(
                f"{name}-public-{index}-routes",
                subnet_id=public.id,
                route_table_id=public_routes.id,
                opts=child,
            )
            database = ec2.Subnet(
                f"{name}-database-{index}",
                vpc_id=network.id,
                cidr_block=database_cidr,
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={"Name": f"{args.settings.stack}-database-{index}"},
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

        # Free, and keeps artifact traffic on the AWS network.
        ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=network.id,
            service_name=f"com.amazonaws.{args.settings.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[public_routes.id],
            opts=child,
        )

        tracking = self._security_group(name, "tracking", "MLflow tracking server tasks", network.id)
        api = self._security_group(name, "api", "Model API tasks", network.id)
        database_group = self._security_group(name, "database", "PostgreSQL for MLflow", network.id)
        for purpose, group in (("tracking", tracking), ("api", api)):
            vpc.SecurityGroupEgressRule(
                f"{name}-{purpose}-https-out",
                security_group_id=group.id,
                description="TLS to ECR, Secrets Manager, CloudWatch Logs and S3",
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                cidr_ipv4=ANYWHERE,
                opts=child,
            )
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
