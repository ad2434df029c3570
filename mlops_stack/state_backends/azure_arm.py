"""`AzureManagement` over the Azure management SDKs (azure-mgmt-resource, -storage, -keyvault and
-authorization).

Imported only by `bootstrap --cloud azure`; credentials come from `DefaultAzureCredential` (az login, or
OIDC in a workflow). The SDKs (azure-mgmt-storage 25, -keyvault 14, -resource 26) are generated from TypeSpec:
a plain dict passed as a request body is sent as JSON exactly as written, so `{"enable_https_traffic_only":
True}` reaches ARM as an unknown property and is silently ignored. Every body here is therefore one of the
SDK's model classes, which write ARM's REST shape (`properties.supportsHttpsTrafficOnly`) and refuse a
misspelt keyword. `scripts/tests/fake_arm.py` stands in for ARM at the HTTP level in the tests and checks
those bodies against the REST API reference.

Azure RBAC gives Owner and Contributor no data actions: neither may read a blob nor use a Key Vault key
(https://learn.microsoft.com/azure/key-vault/general/rbac-guide). So bootstrap grants the signed-in principal,
the person or pipeline that runs it and then `pulumi stack init` / `pulumi up`, *Storage Blob Data
Contributor* on the state account and *Key Vault Crypto User* on the vault (every environment's container and
key; CI identities get their own environment's only, from the stacks), and waits until Key Vault honours it.
When Azure refuses the grant (it takes roleAssignments/write: Owner, User Access Administrator or RBAC
Administrator), the error prints the two `az role assignment create` commands to ask for.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.pipeline.transport import HttpTransport

from mlops_stack.state_backends import MARKER_KEY, MARKER_VALUE, BootstrapError

SOFT_DELETE_DAYS = 30
VAULT_SOFT_DELETE_DAYS = 90
KEY_SIZE = 3072
ARM_SCOPE = "https://management.azure.com/.default"
VAULT_SCOPE = "https://vault.azure.net/.default"
KEY_VAULT_API_VERSION = "7.5"
# Azure says role assignments can take up to 10 minutes to take effect
# (https://learn.microsoft.com/azure/role-based-access-control/troubleshooting).
PROPAGATION_SECONDS = 600
POLL_SECONDS = 15
READ_ME = "https://learn.microsoft.com/azure/role-based-access-control/role-assignments-cli"


@dataclass(frozen=True)
class DataRole:
    name: str
    guid: str  # built-in role id, the same in every tenant
    resource: str  # what it is granted on, for messages


BLOB_DATA_CONTRIBUTOR = DataRole(
    "Storage Blob Data Contributor", "ba92f5b4-2d11-453d-a403-e96b0029c9fe", "account"
)
KEY_VAULT_CRYPTO_USER = DataRole("Key Vault Crypto User", "12338af0-0e69-4776-bea7-57ae8d297424", "vault")


@dataclass(frozen=True)
class Principal:
    """Who the credential signs in as: the token's `oid`, and whether it is a user (a delegated token has
    `scp`)."""

    object_id: str
    principal_type: str  # "User" or "ServicePrincipal", as role assignments name them

    @classmethod
    def from_token(cls, token: str) -> Principal:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        user = "scp" in claims or claims.get("idtyp") == "user"
        return cls(claims["oid"], "User" if user else "ServicePrincipal")


class ArmManagement:
    """Real `AzureManagement` for one subscription and tenant (`credential`/`transport`: for tests)."""

    def __init__(
        self,
        subscription_id: str,
        tenant_id: str,
        credential: TokenCredential | None = None,
        transport: HttpTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        try:
            from azure.mgmt.authorization import AuthorizationManagementClient
            from azure.mgmt.keyvault import KeyVaultManagementClient
            from azure.mgmt.resource.resources import ResourceManagementClient
            from azure.mgmt.storage import StorageManagementClient
        except ImportError as error:
            raise BootstrapError(
                "bootstrap --cloud azure needs the Azure management SDKs (the `ops` dependency group): "
                "`uv sync --group ops`"
            ) from error
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        options: dict[str, Any] = {"transport": transport} if transport is not None else {}
        self._subscription_id = subscription_id
        self._tenant_id = tenant_id
        self._credential = credential
        self._transport = transport
        self._sleep = sleep
        self._resources = ResourceManagementClient(credential, subscription_id, **options)
        self._storage = StorageManagementClient(credential, subscription_id, **options)
        self._vaults = KeyVaultManagementClient(credential, subscription_id, **options)
        self._authorization = AuthorizationManagementClient(credential, subscription_id, **options)

    def ensure_resource_group(self, name: str, location: str) -> list[str]:
        from azure.mgmt.resource.resources.models import ResourceGroup

        if self._resources.resource_groups.check_existence(name):
            return []
        self._resources.resource_groups.create_or_update(
            name, ResourceGroup(location=location, tags={MARKER_KEY: MARKER_VALUE})
        )
        return [f"created resource group {name}"]

    def ensure_storage_account(self, resource_group: str, name: str, location: str) -> list[str]:
        from azure.mgmt.storage import models

        changes = []
        try:
            account = self._storage.storage_accounts.get_properties(resource_group, name)
        except ResourceNotFoundError:
            availability = self._storage.storage_accounts.check_name_availability(
                models.StorageAccountCheckNameAvailabilityParameters(name=name)
            )
            if not availability.name_available:
                raise BootstrapError(
                    f"storage account name {name!r} is taken (names are global): "
                    "pass another --storage-account"
                ) from None
            self._storage.storage_accounts.begin_create(
                resource_group,
                name,
                models.StorageAccountCreateParameters(
                    location=location,
                    kind=models.Kind.STORAGE_V2,
                    sku=models.Sku(name=models.SkuName.STANDARD_ZRS),
                    tags={MARKER_KEY: MARKER_VALUE},
                    properties=models.StorageAccountPropertiesCreateParameters(
                        enable_https_traffic_only=True,
                        minimum_tls_version=models.MinimumTlsVersion.TLS1_2,
                        allow_blob_public_access=False,
                        # Only Entra ID: no account key that anyone with listKeys (Contributor) could read
                        # every environment's state with; Pulumi's azblob backend (gocloud's
                        # azureblob.NewDefaultClient) signs in with `az login` / OIDC when no key is set.
                        allow_shared_key_access=False,
                        default_to_o_auth_authentication=True,
                        allow_cross_tenant_replication=False,
                    ),
                ),
            ).result()
            changes.append(f"created storage account {name}")
        else:
            if (account.tags or {}).get(MARKER_KEY) != MARKER_VALUE:
                raise BootstrapError(
                    f"storage account {name!r} exists in {resource_group} but was not made by bootstrap (no "
                    f"tag {MARKER_KEY}={MARKER_VALUE}): pass another --storage-account"
                )
            if account.allow_shared_key_access is not False or account.allow_blob_public_access is not False:
                self._storage.storage_accounts.update(
                    resource_group,
                    name,
                    models.StorageAccountUpdateParameters(
                        properties=models.StorageAccountPropertiesUpdateParameters(
                            allow_shared_key_access=False, allow_blob_public_access=False
                        )
                    ),
                )
                changes.append(f"turned off shared keys and public blob access on {name}")
        properties = self._storage.blob_services.get_service_properties(resource_group, name)
        retention = properties.delete_retention_policy
        if not properties.is_versioning_enabled or not (retention and retention.enabled):
            policy = models.DeleteRetentionPolicy(enabled=True, days=SOFT_DELETE_DAYS)
            self._storage.blob_services.set_service_properties(
                resource_group,
                name,
                models.BlobServiceProperties(
                    blob_service_properties=models.BlobServicePropertiesProperties(
                        is_versioning_enabled=True,
                        delete_retention_policy=policy,
                        container_delete_retention_policy=models.DeleteRetentionPolicy(
                            enabled=True, days=SOFT_DELETE_DAYS
                        ),
                    )
                ),
            )
            changes.append(f"enabled blob versioning and soft delete on {name}")
        return changes

    def ensure_key(self, resource_group: str, vault: str, key: str, location: str) -> list[str]:
        from azure.mgmt.keyvault import models

        changes = []
        try:
            existing = self._vaults.vaults.get(resource_group, vault)
        except ResourceNotFoundError:
            availability = self._vaults.vaults.check_name_availability(
                models.VaultCheckNameAvailabilityParameters(name=vault)
            )
            if not availability.name_available:
                raise BootstrapError(
                    f"Key Vault name {vault!r} is taken (names are global, and soft-deleted vaults keep "
                    "theirs for 90 days): pass another --vault"
                ) from None
            self._vaults.vaults.begin_create_or_update(
                resource_group,
                vault,
                models.VaultCreateOrUpdateParameters(
                    location=location,
                    tags={MARKER_KEY: MARKER_VALUE},
                    properties=models.VaultProperties(
                        tenant_id=self._tenant_id,
                        sku=models.Sku(family=models.SkuFamily.A, name=models.SkuName.STANDARD),
                        enable_rbac_authorization=True,
                        enable_purge_protection=True,
                        soft_delete_retention_in_days=VAULT_SOFT_DELETE_DAYS,
                    ),
                ),
            ).result()
            changes.append(f"created Key Vault {vault}")
        else:
            if not existing.properties.enable_rbac_authorization:
                raise BootstrapError(
                    f"Key Vault {vault!r} uses access policies, not Azure RBAC: the stacks grant CI its key "
                    "with role assignments, which such a vault ignores; pass another --vault"
                )
        try:
            self._vaults.keys.get(resource_group, vault, key)
        except ResourceNotFoundError:
            # A management-plane call (keys/write): Owner/Contributor may make the key without a data role.
            self._vaults.keys.create_if_not_exist(
                resource_group,
                vault,
                key,
                models.KeyCreateParameters(
                    properties=models.KeyProperties(
                        kty=models.JsonWebKeyType.RSA,
                        key_size=KEY_SIZE,
                        key_ops=[
                            models.JsonWebKeyOperation.ENCRYPT,
                            models.JsonWebKeyOperation.DECRYPT,
                            models.JsonWebKeyOperation.WRAP_KEY,
                            models.JsonWebKeyOperation.UNWRAP_KEY,
                        ],
                    )
                ),
            )
            changes.append(f"created Key Vault key {key}")
        return changes

    def ensure_operator_access(
        self, resource_group: str, storage_account: str, vault: str, key: str
    ) -> list[str]:
        """Give whoever runs bootstrap the data roles `pulumi login` and `stack init` need; wait for them."""
        # The API version the client uses by default (2022-04-01), whose body carries principalType.
        from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

        principal = Principal.from_token(self._credential.get_token(ARM_SCOPE).token)
        group = f"/subscriptions/{self._subscription_id}/resourceGroups/{resource_group}/providers"
        grants = [
            (
                BLOB_DATA_CONTRIBUTOR,
                f"{group}/Microsoft.Storage/storageAccounts/{storage_account}",
                storage_account,
            ),
            (KEY_VAULT_CRYPTO_USER, f"{group}/Microsoft.KeyVault/vaults/{vault}", vault),
        ]
        missing = [
            (role, scope, name) for role, scope, name in grants if not self._has_role(principal, role, scope)
        ]
        changes = []
        for role, scope, name in missing:
            definition = (
                f"/subscriptions/{self._subscription_id}/providers/Microsoft.Authorization/roleDefinitions"
            )
            try:
                self._authorization.role_assignments.create(
                    scope,
                    str(uuid.uuid5(uuid.NAMESPACE_URL, f"{scope}|{principal.object_id}|{role.guid}")),
                    RoleAssignmentCreateParameters(
                        role_definition_id=f"{definition}/{role.guid}",
                        principal_id=principal.object_id,
                        principal_type=principal.principal_type,
                    ),
                )
            except HttpResponseError as error:
                if error.status_code != 403:
                    raise
                commands = "\n".join(
                    f"  az role assignment create --assignee-object-id {principal.object_id} "
                    f"--assignee-principal-type {principal.principal_type} --role '{r.name}' --scope {s}"
                    for r, s, _ in missing
                )
                raise BootstrapError(
                    "Azure refused to let you grant yourself the data roles Pulumi needs (Owner and "
                    "Contributor carry no data actions; granting takes Owner, User Access Administrator or "
                    f"Role Based Access Control Administrator). Ask someone who has one to run:\n{commands}\n"
                    f"then run bootstrap again ({READ_ME})"
                ) from error
            changes.append(f"granted you ({principal.object_id}) {role.name} on {role.resource} {name}")
        if any(role is KEY_VAULT_CRYPTO_USER for role, _, _ in missing):
            self._wait_for_key(vault, key)
            changes.append(f"Key Vault {vault} now lets you use key {key}")
        return changes

    def _has_role(self, principal: Principal, role: DataRole, scope: str) -> bool:
        """Whether `principal` holds `role` at `scope` or above (ARM lists inherited assignments too)."""
        assignments = self._authorization.role_assignments.list_for_scope(
            scope, filter=f"principalId eq '{principal.object_id}'"
        )
        return any(
            (assignment.role_definition_id or "").lower().endswith(f"/{role.guid}")
            for assignment in assignments
        )

    def _wait_for_key(self, vault: str, key: str) -> None:
        """Poll the key on Key Vault's data plane until the new role assignment is in force."""
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import BearerTokenCredentialPolicy
        from azure.core.rest import HttpRequest

        options: dict[str, Any] = {"transport": self._transport} if self._transport is not None else {}
        client: PipelineClient[Any, Any] = PipelineClient(
            f"https://{vault}.vault.azure.net",
            policies=[BearerTokenCredentialPolicy(self._credential, VAULT_SCOPE)],
            **options,
        )
        url = f"https://{vault}.vault.azure.net/keys/{key}?api-version={KEY_VAULT_API_VERSION}"
        for attempt in range(PROPAGATION_SECONDS // POLL_SECONDS + 1):
            status = client.send_request(HttpRequest("GET", url)).status_code
            if status == 200:
                return
            if status != 403:
                break
            if attempt < PROPAGATION_SECONDS // POLL_SECONDS:
                self._sleep(POLL_SECONDS)
        raise BootstrapError(
            f"Key Vault {vault} still answers {status} for key {key} after the role assignment; Azure can "
            "take up to 10 minutes to apply one: run bootstrap again in a few minutes"
        )
