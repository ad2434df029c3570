"""A stand-in for Azure Resource Manager and Key Vault's data plane, at the HTTP level, for bootstrap's tests.

No emulator serves ARM, so this models the documented REST behaviour of the calls bootstrap makes, and refuses
what the real service would refuse or silently ignore (a body in the wrong shape is the failure this exists to
catch: the TypeSpec-generated SDKs send a dict body as written):

- Resource groups (https://learn.microsoft.com/rest/api/resources/resource-groups): HEAD answers 204 or 404;
  PUT needs `location`.
- Storage accounts (https://learn.microsoft.com/rest/api/storagerp/storage-accounts):
  `checkNameAvailability` needs `name` and `type: Microsoft.Storage/storageAccounts`; PUT needs `location`,
  `kind`, `sku.name`, and every setting under `properties` in camelCase (ARM drops an unknown property;
  the fake records it so the test fails); PATCH merges `properties`; `blobServices/default` holds versioning
  and soft delete, off on a new account (https://learn.microsoft.com/rest/api/storagerp/blob-services).
- Key Vault (https://learn.microsoft.com/rest/api/keyvault/keyvault/vaults): `checkNameAvailability` needs
  `name` and `type: Microsoft.KeyVault/vaults`; a vault PUT needs `location`, `properties.tenantId` and
  `properties.sku` (family, name); a key PUT needs `properties.kty`
  (https://learn.microsoft.com/rest/api/keyvault/keyvault/keys/create-if-not-exist).
- Role assignments (https://learn.microsoft.com/rest/api/authorization/role-assignments): list for a scope
  returns the assignments at that scope and above; PUT needs `properties.roleDefinitionId` and `principalId`,
  answers 403 `AuthorizationFailed` to a caller without roleAssignments/write and 409 `RoleAssignmentExists`
  to a duplicate.
- Key Vault data plane (https://learn.microsoft.com/rest/api/keyvault/keys/get-key): GET of a key answers 403
  `Forbidden` until the caller holds a Key Vault data role on the vault *and* it has taken effect, which here
  is `propagation_polls` requests after it was granted (Azure: up to 10 minutes), then 200.

Long-running PUTs answer 200 with `provisioningState: Succeeded`, which the SDK's ARM poller takes as done.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import BaseAdapter, HTTPAdapter
from urllib3.response import HTTPResponse

SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"
TENANT = "99999999-8888-7777-6666-555555555555"
OPERATOR = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"  # the signed-in user's object id
ARM = "https://management.azure.com"
STORAGE_PROPERTIES = {
    "supportsHttpsTrafficOnly",
    "minimumTlsVersion",
    "allowBlobPublicAccess",
    "allowSharedKeyAccess",
    "defaultToOAuthAuthentication",
    "allowCrossTenantReplication",
}
BLOB_SERVICE_PROPERTIES = {"isVersioningEnabled", "deleteRetentionPolicy", "containerDeleteRetentionPolicy"}
VAULT_PROPERTIES = {
    "tenantId",
    "sku",
    "enableRbacAuthorization",
    "enablePurgeProtection",
    "softDeleteRetentionInDays",
}
KEY_PROPERTIES = {"kty", "keySize", "keyOps"}
KEY_VAULT_DATA_ROLES = {
    "12338af0-0e69-4776-bea7-57ae8d297424",  # Key Vault Crypto User
    "14b46e9e-c2b7-41b4-b07b-48a6ebf60603",  # Key Vault Crypto Officer
    "00482a5a-887f-4fb3-b363-3b7fe8e74483",  # Key Vault Administrator
}


def group_id(group: str) -> str:
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}/providers"


def user_token(object_id: str = OPERATOR) -> str:
    """A delegated (user) access token as Entra ID issues it: a JWT whose payload has `oid` and `scp`."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return (
        f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part({'oid': object_id, 'scp': 'user_impersonation'})}.sig"
    )


class FakeCredential:
    """A TokenCredential for the signed-in user, whatever the scope."""

    def __init__(self, object_id: str = OPERATOR) -> None:
        self.token = user_token(object_id)

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, 4_102_444_800)


@dataclass
class FakeArmService:
    """ARM's state for one subscription, and every request it was sent."""

    may_assign_roles: bool = True
    propagation_polls: int = 2  # data-plane requests refused after a Key Vault role is granted
    taken_names: set[str] = field(default_factory=set)  # storage accounts / vaults of other tenants
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    blob_services: dict[str, dict[str, Any]] = field(default_factory=dict)
    vaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    assignments: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> assignment
    ignored: list[str] = field(default_factory=list)  # properties real ARM would silently drop
    requests: list[tuple[str, str]] = field(default_factory=list)
    refusals_left: dict[str, int] = field(default_factory=dict)  # vault -> data-plane 403s still to give

    def transport(self) -> RequestsTransport:
        session = requests.Session()
        session.mount("https://", _Adapter(self))
        return RequestsTransport(session=session, session_owner=False)

    def writes(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path in self.requests if method in ("PUT", "PATCH", "POST")]

    # --- routing ---------------------------------------------------------------------------------------

    def handle(self, method: str, url: str, body: dict[str, Any] | None) -> tuple[int, dict[str, Any] | None]:
        path = url.split("?", 1)[0]
        self.requests.append((method, path))
        vault_data = re.fullmatch(r"https://([^.]+)\.vault\.azure\.net/keys/([^/]+)", path)
        if vault_data:
            return self._key_data_plane(vault_data[1])
        path = path.removeprefix(ARM)
        group = rf"/subscriptions/{SUBSCRIPTION}/resourcegroups/([^/]+)"
        routes: list[tuple[str, Callable[..., tuple[int, dict[str, Any] | None]]]] = [
            (rf"{group}", self._group),
            (
                rf"/subscriptions/{SUBSCRIPTION}/providers/Microsoft\.Storage/checkNameAvailability",
                self._storage_name,
            ),
            (
                rf"/subscriptions/{SUBSCRIPTION}/providers/Microsoft\.KeyVault/checkNameAvailability",
                self._vault_name,
            ),
            (rf"{group}/providers/Microsoft\.Storage/storageAccounts/([^/]+)", self._account),
            (
                rf"{group}/providers/Microsoft\.Storage/storageAccounts/([^/]+)/blobServices/default",
                self._blobs,
            ),
            (rf"{group}/providers/Microsoft\.KeyVault/vaults/([^/]+)", self._vault),
            (rf"{group}/providers/Microsoft\.KeyVault/vaults/([^/]+)/keys/([^/]+)", self._key),
            (
                r"(/subscriptions/.+)/providers/Microsoft\.Authorization/roleAssignments",
                self._list_assignments,
            ),
            (
                r"(/subscriptions/.+)/providers/Microsoft\.Authorization/roleAssignments/([^/]+)",
                self._assignment,
            ),
        ]
        for pattern, handler in routes:
            match = re.fullmatch(pattern, path, flags=re.IGNORECASE)
            if match:
                return handler(method, body or {}, *match.groups())
        raise AssertionError(f"fake ARM has no route for {method} {url}")

    @staticmethod
    def _error(status: int, code: str) -> tuple[int, dict[str, Any]]:
        return status, {"error": {"code": code, "message": code}}

    def _properties(self, kind: str, body: dict[str, Any], known: set[str]) -> dict[str, Any]:
        properties = dict(body.get("properties") or {})
        for name in set(properties) - known:
            self.ignored.append(f"{kind}.properties.{name}")
            del properties[name]
        for name in set(body) - {"location", "kind", "sku", "tags", "properties"}:
            self.ignored.append(f"{kind}.{name}")
        return properties

    def _group(self, method: str, body: dict[str, Any], name: str) -> tuple[int, dict[str, Any] | None]:
        if method == "HEAD":
            return (204, None) if name in self.groups else (404, None)
        if method == "PUT":
            if "location" not in body:
                return self._error(400, "LocationRequired")
            self.groups[name] = {"name": name, "location": body["location"], "tags": body.get("tags", {})}
            return 201, self.groups[name]
        raise AssertionError(method)

    def _storage_name(self, method: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if set(body) != {"name", "type"} or body["type"] != "Microsoft.Storage/storageAccounts":
            return self._error(400, "InvalidRequestContent")
        available = body["name"] not in self.taken_names and body["name"] not in self.accounts
        return 200, {"nameAvailable": available, "reason": None if available else "AlreadyExists"}

    def _vault_name(self, method: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if set(body) != {"name", "type"} or body["type"] != "Microsoft.KeyVault/vaults":
            return self._error(400, "InvalidRequestContent")
        available = body["name"] not in self.taken_names and body["name"] not in self.vaults
        return 200, {"nameAvailable": available}

    def _account_id(self, group: str, name: str) -> str:
        return f"{group_id(group)}/Microsoft.Storage/storageAccounts/{name}"

    def _account(
        self, method: str, body: dict[str, Any], group: str, name: str
    ) -> tuple[int, dict[str, Any]]:
        if method == "GET":
            return (
                (200, self.accounts[name]) if name in self.accounts else self._error(404, "ResourceNotFound")
            )
        if method == "PUT":
            if "location" not in body or "kind" not in body or "name" not in (body.get("sku") or {}):
                return self._error(400, "InvalidRequestContent")
            properties = self._properties("storageAccount", body, STORAGE_PROPERTIES)
            self.accounts[name] = {
                "id": self._account_id(group, name),
                "name": name,
                "location": body["location"],
                "kind": body["kind"],
                "sku": body["sku"],
                "tags": body.get("tags", {}),
                "properties": {**properties, "provisioningState": "Succeeded"},
            }
            self.blob_services[name] = {"properties": {"isVersioningEnabled": False}}
            return 200, self.accounts[name]
        if method == "PATCH":
            self.accounts[name]["properties"].update(
                self._properties("storageAccount", body, STORAGE_PROPERTIES)
            )
            return 200, self.accounts[name]
        raise AssertionError(method)

    def _blobs(self, method: str, body: dict[str, Any], group: str, name: str) -> tuple[int, dict[str, Any]]:
        if method == "GET":
            return 200, {"name": "default", **self.blob_services[name]}
        if method == "PUT":
            properties = self._properties("blobServices", body, BLOB_SERVICE_PROPERTIES)
            self.blob_services[name]["properties"].update(properties)
            return 200, {"name": "default", **self.blob_services[name]}
        raise AssertionError(method)

    def _vault(self, method: str, body: dict[str, Any], group: str, name: str) -> tuple[int, dict[str, Any]]:
        if method == "GET":
            return (200, self.vaults[name]) if name in self.vaults else self._error(404, "ResourceNotFound")
        if method == "PUT":
            properties = self._properties("vault", body, VAULT_PROPERTIES)
            sku = properties.get("sku") or {}
            if "location" not in body or "tenantId" not in properties or set(sku) != {"family", "name"}:
                return self._error(400, "BadRequest")
            self.vaults[name] = {
                "id": f"{group_id(group)}/Microsoft.KeyVault/vaults/{name}",
                "name": name,
                "location": body["location"],
                "tags": body.get("tags", {}),
                "properties": {**properties, "provisioningState": "Succeeded"},
            }
            return 200, self.vaults[name]
        raise AssertionError(method)

    def _key(
        self, method: str, body: dict[str, Any], group: str, vault: str, key: str
    ) -> tuple[int, dict[str, Any]]:
        name = f"{vault}/{key}"
        if method == "GET":
            return (200, self.keys[name]) if name in self.keys else self._error(404, "ResourceNotFound")
        if method == "PUT":
            properties = self._properties("key", body, KEY_PROPERTIES)
            if "kty" not in properties:
                return self._error(400, "BadParameter")
            self.keys[name] = {"name": key, "properties": properties}
            return 200, self.keys[name]
        raise AssertionError(method)

    def _list_assignments(self, method: str, body: dict[str, Any], scope: str) -> tuple[int, dict[str, Any]]:
        at_or_above = [
            a
            for a in self.assignments.values()
            if (scope.lower() + "/").startswith(a["properties"]["scope"].lower() + "/")
        ]
        return 200, {"value": at_or_above}

    def _assignment(
        self, method: str, body: dict[str, Any], scope: str, name: str
    ) -> tuple[int, dict[str, Any]]:
        if method != "PUT":
            raise AssertionError(method)
        if not self.may_assign_roles:
            return self._error(403, "AuthorizationFailed")
        properties = body.get("properties") or {}
        if not {"roleDefinitionId", "principalId"} <= set(properties):
            return self._error(400, "InvalidRoleAssignmentRequest")
        for existing in self.assignments.values():
            same = existing["properties"]
            if (same["scope"], same["principalId"], same["roleDefinitionId"]) == (
                scope,
                properties["principalId"],
                properties["roleDefinitionId"],
            ):
                return self._error(409, "RoleAssignmentExists")
        assignment_id = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"
        self.assignments[assignment_id] = {
            "id": assignment_id,
            "name": name,
            "properties": {**properties, "scope": scope},
        }
        role = properties["roleDefinitionId"].rsplit("/", 1)[-1]
        vault = re.search(r"/vaults/([^/]+)$", scope)
        if vault and role in KEY_VAULT_DATA_ROLES:
            self.refusals_left[vault[1]] = self.propagation_polls
        return 201, self.assignments[assignment_id]

    def _key_data_plane(self, vault: str) -> tuple[int, dict[str, Any]]:
        granted = any(
            a["properties"]["scope"].lower().endswith(f"/vaults/{vault}".lower())
            and a["properties"]["roleDefinitionId"].rsplit("/", 1)[-1] in KEY_VAULT_DATA_ROLES
            for a in self.assignments.values()
        )
        if not granted or self.refusals_left.get(vault, 0) > 0:
            if granted:
                self.refusals_left[vault] -= 1
            return 403, {"error": {"code": "Forbidden", "innererror": {"code": "ForbiddenByRbac"}}}
        return 200, {"key": {"kid": f"https://{vault}.vault.azure.net/keys/k/1", "kty": "RSA"}}


class _Adapter(BaseAdapter):
    """Answers requests' HTTP calls from the fake service (requests' public adapter interface)."""

    def __init__(self, service: FakeArmService) -> None:
        super().__init__()
        self.service = service
        self.builder = HTTPAdapter()

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        data: Any = request.body
        if hasattr(data, "read"):  # a stream body
            data = data.read()
        body = json.loads(data) if data else None
        status, answer = self.service.handle(request.method or "GET", request.url or "", body)
        content = b"" if answer is None else json.dumps(answer).encode()
        raw = HTTPResponse(
            body=io.BytesIO(content),
            headers={"Content-Type": "application/json", "Content-Length": str(len(content))},
            status=status,
            preload_content=False,
        )
        return self.builder.build_response(request, raw)

    def close(self) -> None:
        self.builder.close()
