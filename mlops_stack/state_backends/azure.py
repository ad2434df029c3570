"""Azure: a Blob container in a storage account for Pulumi state and a Key Vault key for secrets.

The container is made through the Blob data plane (azure-storage-blob; Azurite serves it in tests). The
resource group, storage account (versioning, soft delete, HTTPS/TLS 1.2 only, no public blobs, no shared
keys) and Key Vault (RBAC, purge protection), and the data roles the person running bootstrap needs on them,
are management-plane calls no emulator covers: they sit behind `AzureManagement`, whose real implementation
(`azure_arm.ArmManagement`) needs azure-mgmt-resource, -storage, -keyvault and -authorization. Storage is
encrypted at rest by Azure; the Key Vault key encrypts Pulumi's secrets.

Every name is checked against Azure's rules (`infra.azure.limits.STATE_RULES`) before anything is called.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from infra.azure.limits import STATE_RULES
from mlops_stack.state_backends import BootstrapError, StateBackend

CONTAINER_MARKER = {"mlops_stack_role": "pulumi_state"}
"""Blob metadata keys must be C# identifiers, hence underscores where tags and labels use dashes."""
# A data role just granted (`AzureManagement.ensure_operator_access`) can take up to 10 minutes to take
# effect; until then the Blob service answers 403 with one of these error codes
# (https://learn.microsoft.com/rest/api/storageservices/blob-service-error-codes).
NOT_YET_AUTHORIZED = frozenset({"AuthorizationPermissionMismatch", "AuthorizationFailure"})
PROPAGATION_SECONDS = 600
POLL_SECONDS = 15


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

    def ensure_operator_access(
        self, resource_group: str, storage_account: str, vault: str, key: str
    ) -> list[str]:
        """Grant the signed-in principal Storage Blob Data Contributor on the account and Key Vault Crypto
        User on the vault (Owner/Contributor hold no data actions), and wait until the key answers; a
        `BootstrapError` naming the `az role assignment create` commands if Azure refuses."""
        ...


def name_problems(**names: str) -> list[str]:
    """Each name that Azure would refuse, with the rule (keys: the `STATE_RULES` fields)."""
    problems = []
    for rule in STATE_RULES:
        value = names.get(rule.field)
        if value is not None and (problem := rule.problem(value)) is not None:
            flag = rule.resource_type.removeprefix("bootstrap:")
            problems.append(f"--{flag} {value!r} {problem} ({rule.explain}; {rule.doc})")
    return problems


def ensure_container(
    blobs: BlobServiceClient, container: str, changes: list[str], sleep: Callable[[float], None] = time.sleep
) -> None:
    """A private container carrying our marker; an existing container without it is not adopted."""
    client = blobs.get_container_client(container)
    for attempt in range(PROPAGATION_SECONDS // POLL_SECONDS + 1):
        try:
            properties = client.get_container_properties()
            break
        except ResourceNotFoundError:
            client.create_container(metadata=CONTAINER_MARKER)  # no public_access: private
            changes.append(f"created private blob container {container}")
            return
        except HttpResponseError as error:
            code = getattr(error, "error_code", None)  # set by azure-storage-blob from x-ms-error-code
            if error.status_code != 403 or code not in NOT_YET_AUTHORIZED:
                raise
            if attempt == PROPAGATION_SECONDS // POLL_SECONDS:
                raise BootstrapError(
                    f"the Blob service still refuses you on container {container} ({code}) "
                    "10 minutes after the role assignment: check `az role assignment list --assignee <you> "
                    "--all` and run bootstrap again"
                ) from error
            sleep(POLL_SECONDS)
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
    sleep: Callable[[float], None] = time.sleep,
) -> StateBackend:
    """Make (or check) the account, container, vault, key and your access to them; return the URLs Pulumi
    needs. The account and vault are shared by every environment; the container and key are this one's."""
    problems = name_problems(
        resourceGroupName=resource_group,
        accountName=storage_account,
        containerName=container,
        vaultName=vault,
        keyName=key,
    )
    if problems:
        raise BootstrapError("Azure would refuse these names:\n  " + "\n  ".join(problems))
    changes = management.ensure_resource_group(resource_group, location)
    changes += management.ensure_storage_account(resource_group, storage_account, location)
    changes += management.ensure_key(resource_group, vault, key, location)
    changes += management.ensure_operator_access(resource_group, storage_account, vault, key)
    ensure_container(blobs, container, changes, sleep)
    return StateBackend(
        login_url=f"azblob://{container}?storage_account={storage_account}",
        secrets_provider=f"azurekeyvault://{vault}.vault.azure.net/keys/{key}",
        changes=changes,
    )
