"""Cloud SQL for PostgreSQL: MLflow's tracking and model-registry database."""

from dataclasses import dataclass

import pulumi
import pulumi_gcp.sql as sql
import pulumi_random as random

from infra.config import StackSettings
from infra.naming import labels, short_name
from infra.workloads import DATABASE_NAME, DATABASE_USER

POSTGRES_VERSION = "POSTGRES_16"
# Enterprise edition keeps at most 7 days of transaction logs for point-in-time recovery.
MAX_TRANSACTION_LOG_DAYS = 7


@dataclass(frozen=True, kw_only=True)
class TrackingDatabaseArgs:
    settings: StackSettings
    password: pulumi.Output[str]  # from StackSecrets
    depends_on: list[pulumi.Resource]  # the Cloud SQL Admin API


class TrackingDatabase(pulumi.ComponentResource):
    """One instance, database and user.

    Reachable only through Cloud SQL's connectors (Cloud Run's built-in connection): the public IP has no
    authorized networks, so nothing can open a plain TCP session to it, and every connection is encrypted.
    """

    instance: sql.DatabaseInstance
    connection_name: pulumi.Output[str]  # project:region:instance, what Cloud Run mounts under /cloudsql
    database_name: pulumi.Output[str]
    user_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: TrackingDatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops-stack:gcp:TrackingDatabase", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)
        # A deleted instance's name stays reserved for up to a week: a random suffix lets a stack be
        # destroyed and brought up again at once. It changes only when the stack's state is recreated.
        suffix = random.RandomId(f"{name}-instance-suffix", byte_length=3, opts=child)
        backups = settings.backups
        self.instance = sql.DatabaseInstance(
            f"{name}-instance",
            name=pulumi.Output.concat(short_name(settings.stack, "mlflow", max_length=40), "-", suffix.hex),
            project=settings.gcp_project,
            region=settings.region,
            database_version=POSTGRES_VERSION,
            # Pulumi's guard and Cloud SQL's own: a protected instance survives both `pulumi destroy` and
            # a delete from the console or gcloud.
            deletion_protection=settings.protect,
            settings=sql.DatabaseInstanceSettingsArgs(
                tier=settings.database_tier,
                # PostgreSQL 16 defaults to Enterprise Plus, which has no shared-core tiers (db-f1-micro).
                edition="ENTERPRISE_PLUS"
                if settings.database_tier.startswith("db-perf-optimized")
                else "ENTERPRISE",
                availability_type="ZONAL",
                deletion_protection_enabled=settings.protect,
                disk_autoresize=True,
                backup_configuration=sql.DatabaseInstanceSettingsBackupConfigurationArgs(
                    enabled=backups,
                    point_in_time_recovery_enabled=backups,
                    transaction_log_retention_days=(
                        min(settings.backup_retention_days, MAX_TRANSACTION_LOG_DAYS) if backups else None
                    ),
                    backup_retention_settings=(
                        sql.DatabaseInstanceSettingsBackupConfigurationBackupRetentionSettingsArgs(
                            retained_backups=settings.backup_retention_days, retention_unit="COUNT"
                        )
                        if backups
                        else None
                    ),
                ),
                ip_configuration=sql.DatabaseInstanceSettingsIpConfigurationArgs(
                    # The public IP is what Cloud Run's connection reaches; with no authorized networks only
                    # IAM-authorized connectors (roles/cloudsql.client) get through.
                    ipv4_enabled=True,
                    authorized_networks=[],
                    ssl_mode="ENCRYPTED_ONLY",
                ),
                # The provider's default_labels reach a resource's top-level `labels` only; Cloud SQL keeps
                # its labels in settings, so they are the one place GCP's labels are given by hand.
                user_labels=labels(settings),
            ),
            opts=pulumi.ResourceOptions(parent=self, protect=settings.protect, depends_on=args.depends_on),
        )
        # ABANDON: PostgreSQL refuses to drop a database or role that still owns objects, which would fail
        # every destroy; both go away with the instance anyway.
        database = sql.Database(
            f"{name}-database",
            name=DATABASE_NAME,
            instance=self.instance.name,
            project=settings.gcp_project,
            deletion_policy="ABANDON",
            opts=child,
        )
        user = sql.User(
            f"{name}-user",
            name=DATABASE_USER,
            instance=self.instance.name,
            project=settings.gcp_project,
            password=args.password,
            deletion_policy="ABANDON",
            opts=child,
        )
        self.connection_name = self.instance.connection_name
        self.database_name = database.name
        self.user_name = user.name
        self.register_outputs({"connectionName": self.connection_name})
