"""Azure: a Blob container in a storage account for Pulumi state and a Key Vault key for secrets.

The container is made through the Blob data plane (azure-storage-blob; Azurite serves it in tests). The
resource group, storage account (versioning, soft delete, HTTPS/TLS 1.2 only, no public blobs) and Key
Vault (RBAC, purge protection) are management-plane calls no emulator covers: they sit behind
`AzureManagement`, whose real implementation needs azure-mgmt-resource, azure-mgmt-storage and
azure-mgmt-keyvault. Storage is encrypted at rest by Azure; the Key Vault key encrypts Pulumi's secrets.
"""

from __future__ import annotations

from typing import Protocol

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from scripts.state_backends import BootstrapError, StateBackend

CONTAINER_MARKER = {"mlops_stack_role": "pulumi_state"}
"""Blob metadata keys must be C# identifiers, hence underscores where tags and labels use dashes."""


class AzureManagement(Protocol):
    """The Azure Resource Manager calls bootstrap needs; each is idempotent and says what it changed."""

    def ensure_resource_group(self, name: str, location: str) -> list[str]:
        """Create the resource group if missing."""
        ...

    def ensure_storage_account(self, resource_group: str, name: str, location: str) -> list[str]:
        """Create/converge the storage account; `BootstrapError` if the name belongs to someone else."""
        ...

    def ensure_key(self, resource_group: str, vault: str, key: str, location: str) -> list[str]:
        """Create/converge the Key Vault and an RSA key in it; `BootstrapError` if the vault name is taken."""
        ...


def ensure_container(blobs: BlobServiceClient, container: str, changes: list[str]) -> None:
    """A private container carrying our marker; an existing container without it is not adopted."""
    client = blobs.get_container_client(container)
    try:
        properties = client.get_container_properties()
    except ResourceNotFoundError:
        client.create_container(metadata=CONTAINER_MARKER)  # no public_access: private
        changes.append(f"created private blob container {container}")
        return
    if {key: properties.metadata.get(key) for key in CONTAINER_MARKER} != CONTAINER_MARKER:
        raise BootstrapError(
            f"blob container {container!r} exists but was not made by bootstrap (no metadata "
            f"{CONTAINER_MARKER}): pass another --container"
        )
    if properties.public_access:
        client.set_container_access_policy(signed_identifiers={}, public_access=None)
        changes.append(f"made blob container {container} private")


def ensure_azure_backend(
    management: AzureManagement,
    blobs: BlobServiceClient,
    resource_group: str,
    location: str,
    storage_account: str,
    container: str,
    vault: str,
    key: str,
) -> StateBackend:
    """Make (or check) the account, container, vault and key; return the URLs Pulumi needs."""
    changes = management.ensure_resource_group(resource_group, location)
    changes += management.ensure_storage_account(resource_group, storage_account, location)
    changes += management.ensure_key(resource_group, vault, key, location)
    ensure_container(blobs, container, changes)
    return StateBackend(
        login_url=f"azblob://{container}?storage_account={storage_account}",
        secrets_provider=f"azurekeyvault://{vault}.vault.azure.net/keys/{key}",
        changes=changes,
    )
