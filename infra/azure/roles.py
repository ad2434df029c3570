"""Azure RBAC: the built-in roles this stack grants, and one helper that grants a role at a scope.

Role definition ids are full resource ids built from the subscription, as ARM expects them. The GUIDs are
Azure's built-in role ids (the same in every tenant).
"""

from enum import StrEnum

import pulumi
import pulumi_azure_native.authorization as authorization


class BuiltInRole(StrEnum):
    """Built-in role GUIDs, named as in the Azure portal."""

    ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
    CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
    KEY_VAULT_CRYPTO_USER = "12338af0-0e69-4776-bea7-57ae8d297424"
    KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"  # reads secret values, nothing else
    READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
    RBAC_ADMINISTRATOR = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"  # Role Based Access Control Administrator
    STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
    STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
    STORAGE_BLOB_DELEGATOR = "db58b8e5-c6ad-4a2a-8342-4190687cbf4a"


def role_definition_id(subscription_id: pulumi.Input[str], role: BuiltInRole) -> pulumi.Output[str]:
    """`/subscriptions/<id>/providers/Microsoft.Authorization/roleDefinitions/<guid>`."""
    return pulumi.Output.concat(
        "/subscriptions/", subscription_id, "/providers/Microsoft.Authorization/roleDefinitions/", role.value
    )


def grant_role(
    name: str,
    *,
    role: BuiltInRole,
    scope: pulumi.Input[str],
    principal_id: pulumi.Input[str],
    subscription_id: pulumi.Input[str],
    parent: pulumi.Resource,
    condition: str | None = None,
) -> authorization.RoleAssignment:
    """Assign `role` to a managed identity's service principal at `scope` (the name is a generated GUID).

    `principal_type` is set so ARM does not look the new identity up in Entra ID first: a just-created
    identity may not have replicated yet, which otherwise fails the assignment now and then.
    """
    return authorization.RoleAssignment(
        name,
        role_definition_id=role_definition_id(subscription_id, role),
        scope=scope,
        principal_id=principal_id,
        principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
        condition=condition,
        condition_version="2.0" if condition else None,
        opts=pulumi.ResourceOptions(parent=parent),
    )
