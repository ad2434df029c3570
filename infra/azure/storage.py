"""The artifact store: a private storage account reachable only with Entra ID (managed identities), and
the blob container MLflow proxies artifacts to."""

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.storage as storage

from infra.azure.protection import delete_lock
from infra.config import StackSettings
from infra.naming import unique_name

CONTAINER_NAME = "mlflow"
ARTIFACT_PATH = "mlflow"
# Storage account names are global, 3-24 lowercase letters and digits: 18 readable + 6 random.
ACCOUNT_NAME_LENGTH = 24


@dataclass(frozen=True, kw_only=True)
class ArtifactStoreArgs:
    resource_group_name: pulumi.Input[str]
    settings: StackSettings


class ArtifactStore(pulumi.ComponentResource):
    """StorageV2 account (HTTPS, TLS 1.2, no public blobs, no shared keys) and the artifacts container."""

    account_name: pulumi.Output[str]
    account_id: pulumi.Output[str]
    container_id: pulumi.Output[str]
    artifact_root: pulumi.Output[str]

    def __init__(
        self, name: str, args: ArtifactStoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops-stack:azure:ArtifactStore", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)
        # protect in prod; in sandboxes deleting the account deletes its blobs, so one destroy suffices.
        data = pulumi.ResourceOptions(parent=self, protect=settings.protect)
        account = storage.StorageAccount(
            f"{name}-account",
            account_name=unique_name(
                f"{name}-account-suffix",
                settings.stack,
                "mlflow",
                max_length=ACCOUNT_NAME_LENGTH,
                parent=self,
                alphanumeric=True,
            ),
            resource_group_name=args.resource_group_name,
            kind=storage.Kind.STORAGE_V2,
            # Zone-redundant copies for production data; locally redundant elsewhere is enough.
            sku=storage.SkuArgs(
                name=storage.SkuName.STANDARD_ZRS if settings.protect else storage.SkuName.STANDARD_LRS
            ),
            enable_https_traffic_only=True,
            minimum_tls_version=storage.MinimumTlsVersion.TLS1_2,
            allow_blob_public_access=False,
            # No account keys and no SAS signed with them: only Entra ID identities with a data role.
            allow_shared_key_access=False,
            default_to_o_auth_authentication=True,
            allow_cross_tenant_replication=False,
            opts=data,
        )
        if not settings.is_sandbox:
            # Overwritten or deleted artifacts stay recoverable; a sandbox is throwaway and skips the cost.
            retention = storage.DeleteRetentionPolicyArgs(enabled=True, days=settings.backup_retention_days)
            storage.BlobServiceProperties(
                f"{name}-blob-service",
                account_name=account.name,
                resource_group_name=args.resource_group_name,
                blob_services_name="default",
                is_versioning_enabled=True,
                delete_retention_policy=retention,
                container_delete_retention_policy=retention,
                opts=child,
            )
        container = storage.BlobContainer(
            f"{name}-container",
            account_name=account.name,
            resource_group_name=args.resource_group_name,
            container_name=CONTAINER_NAME,
            public_access=storage.PublicAccess.NONE,
            opts=data,
        )
        if settings.protect:
            delete_lock(f"{name}-account-lock", account, parent=self)
        self.account_name = account.name
        self.account_id = account.id
        self.container_id = container.id
        self.artifact_root = pulumi.Output.concat(
            "wasbs://", CONTAINER_NAME, "@", account.name, ".blob.core.windows.net/", ARTIFACT_PATH
        )
        self.register_outputs({"artifact_root": self.artifact_root, "container_id": container.id})
