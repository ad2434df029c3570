"""PostgreSQL Flexible Server for MLflow's backend store, reachable only inside the stack's VNet."""

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.dbforpostgresql as dbforpostgresql

from infra.azure.limits import POSTGRES_SERVER, name_limit
from infra.azure.protection import delete_lock
from infra.config import StackSettings
from infra.naming import unique_name
from infra.workloads import DATABASE_NAME

POSTGRES_VERSION = dbforpostgresql.PostgresMajorVersion.POSTGRES_MAJOR_VERSION_16
# The server's administrator is the user MLflow connects as (one application, one database). Azure
# reserves names such as admin, root and azure_superuser.
ADMIN_LOGIN = "mlflow"
STORAGE_SIZE_GB = 32  # the smallest size Flexible Server offers
# Server names are global (they are the server's DNS name): a readable prefix from the stack, '-', and a
# random suffix (infra.naming.unique_name), at most 63 characters whatever the stack's name.
# Flexible Server keeps backups for 7 to 35 days; a shorter setting (sandboxes: 1) gets the minimum.
MIN_BACKUP_RETENTION_DAYS = 7
# SKU name prefix -> tier: Standard_B* burstable, Standard_E* memory optimised, the rest general purpose.
TIER_BY_PREFIX = {
    "Standard_B": dbforpostgresql.SkuTier.BURSTABLE,
    "Standard_E": dbforpostgresql.SkuTier.MEMORY_OPTIMIZED,
}


def sku_tier(sku_name: str) -> dbforpostgresql.SkuTier:
    """The tier Azure requires next to a SKU name (a mismatch is rejected at deploy time)."""
    for prefix, tier in TIER_BY_PREFIX.items():
        if sku_name.startswith(prefix):
            return tier
    return dbforpostgresql.SkuTier.GENERAL_PURPOSE


@dataclass(frozen=True, kw_only=True)
class TrackingDatabaseArgs:
    resource_group_name: pulumi.Input[str]
    settings: StackSettings
    password: pulumi.Output[str]
    delegated_subnet_id: pulumi.Input[str]
    private_dns_zone_id: pulumi.Input[str]
    depends_on: list[pulumi.Resource]  # the DNS zone's VNet link: the server's name must resolve in the VNet


class TrackingDatabase(pulumi.ComponentResource):
    """The server (VNet-integrated, public access disabled) and the `mlflow` database."""

    host: pulumi.Output[str]
    id: pulumi.Output[str]
    name: str = DATABASE_NAME
    user: str = ADMIN_LOGIN

    def __init__(
        self, name: str, args: TrackingDatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops-stack:azure:TrackingDatabase", name, None, opts)
        settings = args.settings
        server = dbforpostgresql.Server(
            f"{name}-server",
            server_name=unique_name(
                f"{name}-server-suffix",
                settings.stack,
                "mlflow",
                max_length=name_limit(POSTGRES_SERVER),
                parent=self,
            ),
            resource_group_name=args.resource_group_name,
            version=POSTGRES_VERSION,
            sku=dbforpostgresql.SkuArgs(name=settings.database_tier, tier=sku_tier(settings.database_tier)),
            storage=dbforpostgresql.StorageArgs(
                storage_size_gb=STORAGE_SIZE_GB, auto_grow=dbforpostgresql.StorageAutoGrow.ENABLED
            ),
            administrator_login=ADMIN_LOGIN,
            administrator_login_password=args.password,
            auth_config=dbforpostgresql.AuthConfigArgs(
                password_auth=dbforpostgresql.PasswordBasedAuth.ENABLED,
                active_directory_auth=dbforpostgresql.MicrosoftEntraAuth.DISABLED,
            ),
            backup=dbforpostgresql.BackupArgs(
                backup_retention_days=max(MIN_BACKUP_RETENTION_DAYS, settings.backup_retention_days),
                geo_redundant_backup=(
                    dbforpostgresql.GeographicallyRedundantBackup.ENABLED
                    if settings.geo_redundant_backup
                    else dbforpostgresql.GeographicallyRedundantBackup.DISABLED
                ),
            ),
            # VNet integration: the server gets a private address in the delegated subnet and no public
            # endpoint; its name resolves through the private DNS zone linked to the VNet.
            network=dbforpostgresql.NetworkArgs(
                delegated_subnet_resource_id=args.delegated_subnet_id,
                private_dns_zone_arm_resource_id=args.private_dns_zone_id,
                public_network_access=dbforpostgresql.ServerPublicNetworkAccessState.DISABLED,
            ),
            opts=pulumi.ResourceOptions(parent=self, protect=settings.protect, depends_on=args.depends_on),
        )
        dbforpostgresql.Database(
            f"{name}-database",
            resource_group_name=args.resource_group_name,
            server_name=server.name,
            database_name=DATABASE_NAME,
            charset="UTF8",
            collation="en_US.utf8",
            opts=pulumi.ResourceOptions(parent=self, protect=settings.protect),
        )
        if settings.protect:
            delete_lock(f"{name}-server-lock", server, parent=self)
        self.host = server.fully_qualified_domain_name
        self.id = server.id  # what its metric alerts are scoped to
        self.register_outputs({"host": self.host})
