"""PostgreSQL for MLflow, in isolated subnets, reachable only from the tracking server's security group.

`databaseTier=serverless` (the dev and sandbox default): Aurora Serverless v2 with a minimum of 0 ACU, so an
idle database pauses and costs only its storage. `databaseTier=db.<class>`: a single RDS PostgreSQL instance
of that class (Aurora's smallest class is larger than the classes people pick for a small tracking server).

Identifiers are explicit (`<stack>-mlflow`, at most 63 characters): Pulumi's auto-name (logical name, a dash
and 7 random characters) would exceed RDS's 63 for a sandbox with a long id, and Pulumi refuses a name that
does not fit (pulumi/pulumi sdk/go/common/resource/resource_id.go, NewUniqueName). A change that replaces the
database then fails on the taken name instead of creating a second database first, which is what a database
should do.

TLS: the tracking server connects with sslmode=verify-full against the RDS CA bundle baked into its image at
`RDS_CA_BUNDLE_PATH` (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.SSL.html).
"""

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_aws import rds

from infra.config import StackSettings
from infra.naming import short_name
from infra.workloads import DATABASE_NAME, DATABASE_USER

SERVERLESS_TIER = "serverless"
# Where infra/mlflow_server/Dockerfile puts the RDS global CA bundle (a test holds the two together).
RDS_CA_BUNDLE_PATH = "/opt/rds-ca/global-bundle.pem"
# 0 ACU needs Aurora PostgreSQL 13.15, 14.12, 15.7, 16.3 or later.
AURORA_ENGINE_VERSION = "16.6"
POSTGRES_ENGINE_VERSION = "16.6"
SERVERLESS_MAX_ACU = 2.0
# An RDS instance starts at 20 GB and storage autoscaling grows it up to 100 GB.
ALLOCATED_STORAGE_GB = 20
MAX_ALLOCATED_STORAGE_GB = 100
# Pause after 5 idle minutes (the minimum AWS allows): MLflow holds no idle connections (NullPool).
SECONDS_UNTIL_AUTO_PAUSE = 300


@dataclass(frozen=True, kw_only=True)
class TrackingDatabaseArgs:
    settings: StackSettings
    subnet_ids: list[pulumi.Output[str]]
    security_group_id: pulumi.Input[str]
    password: pulumi.Output[str]


class TrackingDatabase(pulumi.ComponentResource):
    """Aurora Serverless v2 or an RDS instance, private, encrypted, protected in prod."""

    host: pulumi.Output[str]
    is_serverless: bool
    instance_identifier: str  # the writer instance (Aurora) or the instance (RDS): its CloudWatch dimension

    def __init__(
        self, name: str, args: TrackingDatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops-stack:aws:TrackingDatabase", name, None, opts)
        settings = args.settings
        self.is_serverless = settings.database_tier == SERVERLESS_TIER
        subnets = rds.SubnetGroup(
            f"{name}-subnets", subnet_ids=args.subnet_ids, opts=pulumi.ResourceOptions(parent=self)
        )
        data = pulumi.ResourceOptions(parent=self, protect=settings.protect)
        common: dict[str, Any] = {
            "db_subnet_group_name": subnets.name,
            "vpc_security_group_ids": [args.security_group_id],
            "storage_encrypted": True,
            "deletion_protection": settings.protect,
            "backup_retention_period": _retention_days(settings, self.is_serverless),
            # Sandboxes leave nothing behind; every other environment keeps a final snapshot.
            "skip_final_snapshot": settings.is_sandbox,
            "final_snapshot_identifier": None
            if settings.is_sandbox
            else short_name(settings.stack, "mlflow-final", max_length=63),
            "copy_tags_to_snapshot": True,
        }
        if self.is_serverless:
            cluster = rds.Cluster(
                f"{name}-cluster",
                cluster_identifier=short_name(settings.stack, "mlflow", max_length=63),
                engine="aurora-postgresql",
                engine_mode="provisioned",
                engine_version=AURORA_ENGINE_VERSION,
                database_name=DATABASE_NAME,
                master_username=DATABASE_USER,
                master_password=args.password,
                serverlessv2_scaling_configuration=rds.ClusterServerlessv2ScalingConfigurationArgs(
                    min_capacity=0.0,
                    max_capacity=SERVERLESS_MAX_ACU,
                    seconds_until_auto_pause=SECONDS_UNTIL_AUTO_PAUSE,
                ),
                **common,
                opts=data,
            )
            self.instance_identifier = short_name(settings.stack, "mlflow-writer", max_length=63)
            rds.ClusterInstance(
                f"{name}-writer",
                identifier=self.instance_identifier,
                cluster_identifier=cluster.id,
                instance_class="db.serverless",
                engine=cluster.engine,
                engine_version=cluster.engine_version,
                db_subnet_group_name=subnets.name,
                publicly_accessible=False,
                opts=data,
            )
            self.host = cluster.endpoint
        else:
            self.instance_identifier = short_name(settings.stack, "mlflow", max_length=63)
            instance = rds.Instance(
                f"{name}-instance",
                identifier=self.instance_identifier,
                engine="postgres",
                engine_version=POSTGRES_ENGINE_VERSION,
                instance_class=settings.database_tier,
                allocated_storage=ALLOCATED_STORAGE_GB,
                max_allocated_storage=MAX_ALLOCATED_STORAGE_GB,
                storage_type="gp3",
                db_name=DATABASE_NAME,
                username=DATABASE_USER,
                password=args.password,
                publicly_accessible=False,
                **common,
                opts=data,
            )
            self.host = instance.address
        self.register_outputs({"host": self.host})


def _retention_days(settings: StackSettings, serverless: bool) -> int:
    """Days of automated backups; Aurora cannot turn them off, so a sandbox keeps the minimum of one day."""
    if settings.backups:
        return settings.backup_retention_days
    return 1 if serverless else 0
