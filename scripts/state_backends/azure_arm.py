"""`AzureManagement` over the Azure management SDKs (azure-mgmt-resource, -storage, -keyvault).

Imported only by `bootstrap --cloud azure`; credentials come from `DefaultAzureCredential` (az login,
or OIDC in a workflow). Not exercised by tests (no emulator serves Azure Resource Manager): the
orchestration around it is tested with a fake of `AzureManagement`.
"""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.identity import DefaultAzureCredential

from scripts.state_backends import MARKER_KEY, MARKER_VALUE, BootstrapError

SOFT_DELETE_DAYS = 30


class ArmManagement:
    """Real `AzureManagement` for one subscription and tenant."""

    def __init__(self, subscription_id: str, tenant_id: str) -> None:
        try:
            from azure.mgmt.keyvault import KeyVaultManagementClient
            from azure.mgmt.resource import ResourceManagementClient
            from azure.mgmt.storage import StorageManagementClient
        except ImportError as error:
            raise BootstrapError(
                "bootstrap --cloud azure needs the Azure management SDKs: "
                "`uv pip install azure-mgmt-resource azure-mgmt-storage azure-mgmt-keyvault`"
            ) from error
        credential = DefaultAzureCredential()
        self._tenant_id = tenant_id
        self._resources: Any = ResourceManagementClient(credential, subscription_id)
        self._storage: Any = StorageManagementClient(credential, subscription_id)
        self._vaults: Any = KeyVaultManagementClient(credential, subscription_id)

    def ensure_resource_group(self, name: str, location: str) -> list[str]:
        if self._resources.resource_groups.check_existence(name):
            return []
        self._resources.resource_groups.create_or_update(
            name, {"location": location, "tags": {MARKER_KEY: MARKER_VALUE}}
        )
        return [f"created resource group {name}"]

    def ensure_storage_account(self, resource_group: str, name: str, location: str) -> list[str]:
        changes = []
        try:
            self._storage.storage_accounts.get_properties(resource_group, name)
        except ResourceNotFoundError:
            if not self._storage.storage_accounts.check_name_availability({"name": name}).name_available:
                raise BootstrapError(
                    f"storage account name {name!r} is taken (names are global): "
                    "pass another --storage-account"
                ) from None
            self._storage.storage_accounts.begin_create(
                resource_group,
                name,
                {
                    "location": location,
                    "kind": "StorageV2",
                    "sku": {"name": "Standard_ZRS"},
                    "enable_https_traffic_only": True,
                    "minimum_tls_version": "TLS1_2",
                    "allow_blob_public_access": False,
                    "tags": {MARKER_KEY: MARKER_VALUE},
                },
            ).result()
            changes.append(f"created storage account {name}")
        properties = self._storage.blob_services.get_service_properties(resource_group, name)
        retention = properties.delete_retention_policy
        if not properties.is_versioning_enabled or not (retention and retention.enabled):
            self._storage.blob_services.set_service_properties(
                resource_group,
                name,
                {
                    "is_versioning_enabled": True,
                    "delete_retention_policy": {"enabled": True, "days": SOFT_DELETE_DAYS},
                    "container_delete_retention_policy": {"enabled": True, "days": SOFT_DELETE_DAYS},
                },
            )
            changes.append(f"enabled blob versioning and soft delete on {name}")
        return changes

    def ensure_key(self, resource_group: str, vault: str, key: str, location: str) -> list[str]:
        changes = []
        try:
            self._vaults.vaults.get(resource_group, vault)
        except ResourceNotFoundError:
            if not self._vaults.vaults.check_name_availability({"name": vault}).name_available:
                raise BootstrapError(
                    f"Key Vault name {vault!r} is taken (names are global, and soft-deleted vaults keep "
                    "theirs): pass another --vault"
                ) from None
            self._vaults.vaults.begin_create_or_update(
                resource_group,
                vault,
                {
                    "location": location,
                    "tags": {MARKER_KEY: MARKER_VALUE},
                    "properties": {
                        "tenant_id": self._tenant_id,
                        "sku": {"family": "A", "name": "standard"},
                        "enable_rbac_authorization": True,
                        "enable_purge_protection": True,
                        "soft_delete_retention_in_days": 90,
                    },
                },
            ).result()
            changes.append(f"created Key Vault {vault}")
        try:
            self._vaults.keys.get(resource_group, vault, key)
        except ResourceNotFoundError:
            self._vaults.keys.create_if_not_exist(
                resource_group,
                vault,
                key,
                {
                    "properties": {
                        "kty": "RSA",
                        "key_size": 3072,
                        "key_ops": ["encrypt", "decrypt", "wrapKey", "unwrapKey"],
                    }
                },
            )
            changes.append(f"created Key Vault key {key}")
        return changes
