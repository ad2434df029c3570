"""Keyless CI: user-assigned identities GitHub Actions logs in as through OIDC federation.

Which token subject each identity trusts is the cross-cloud table in `infra.github` (deploy: the stack's
GitHub environment; preview: pull requests, or for prod only the deploy branch; sandbox: the `sandbox`
environment). Sandbox stacks make no identity.

The identities and their federated credentials live in a resource group of their own (`<group>-ci`), on
which no CI identity holds any role: Contributor on the stack's group would otherwise let its deploy identity
add a subject to its own or the preview identity's federated credential (a trust change is no role
assignment, so the ABAC condition below does not stop it) or delete them. They are made by the admin's first
`pulumi up` and CI leaves them unchanged.

- deploy: Contributor on the stack's resource group, plus Role Based Access Control Administrator there,
  restricted by an ABAC condition to assigning and removing only the data-plane roles the apps' identities
  get (AcrPull, Storage Blob Data Contributor/Reader/Delegator) to service principals. Chosen over User
  Access Administrator, which could grant anything, Owner included, to anyone. It therefore cannot change
  its own or any CI identity's roles, nor create or remove management locks (prod): those take an Owner,
  who runs the first `pulumi up` of a stack anyway. Reads and writes its environment's Pulumi state
  container, uses its key.
- preview: Reader on the resource group; reads (never writes) its environment's state container, uses its key.
- retrain (every stack but sandboxes; .github/workflows/retrain.yml): `Key Vault Secrets User` on the one
  secret of the stack's vault that holds the MLflow admin password (infra/azure/vault.py), assigned at that
  secret's scope (https://learn.microsoft.com/azure/key-vault/general/rbac-guide#best-practices-for-individual-
  keys-secrets-and-certificates-role-assignments). No role on any resource group, no state, no key.
- sandbox (the dev stack with `sandboxes: true`): the dev stack makes one resource group for all
  sandboxes and this identity, with the deploy identity's two roles on that group only, so sandbox stacks
  (which deploy into that group) can be created and destroyed by CI and nothing else can be touched; the
  sandbox state and key.
State grants sit on the state container and the key alone (Azure RBAC scopes below a storage account and a
Key Vault: https://learn.microsoft.com/azure/storage/blobs/assign-azure-role-data-access,
https://learn.microsoft.com/azure/key-vault/general/rbac-guide).
"""

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.managedidentity as managedidentity
import pulumi_azure_native.resources as resources

from infra.azure.roles import BuiltInRole, grant_role
from infra.azure.vault import TrackingPasswordVault
from infra.config import StackSettings, StateLocation
from infra.github import ISSUER, CiRole, trusted_subjects

GITHUB_AUDIENCE = "api://AzureADTokenExchange"
# Roles the deploy identity may hand out (to the apps' identities) and take back, and nothing else.
DELEGABLE_ROLES = (
    BuiltInRole.ACR_PULL,
    BuiltInRole.STORAGE_BLOB_DATA_CONTRIBUTOR,
    BuiltInRole.STORAGE_BLOB_DATA_READER,
    BuiltInRole.STORAGE_BLOB_DELEGATOR,
)


def delegation_condition(roles: tuple[BuiltInRole, ...] = DELEGABLE_ROLES) -> str:
    """ABAC condition on a role assignment: writes only of `roles` to service principals, deletes only of
    `roles` (Azure's "constrain roles" pattern for delegating role assignment management)."""
    guids = "{" + ", ".join(role.value for role in roles) + "}"
    attribute = "Microsoft.Authorization/roleAssignments"
    return (
        f"((!(ActionMatches{{'{attribute}/write'}})) OR "
        f"(@Request[{attribute}:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {guids}"
        f" AND @Request[{attribute}:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase"
        " {'ServicePrincipal'}))"
        f" AND ((!(ActionMatches{{'{attribute}/delete'}})) OR "
        f"(@Resource[{attribute}:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {guids}))"
    )


def identities_group_name(settings: StackSettings) -> str:
    """Where the stack's CI identities live, out of reach of every CI identity."""
    return f"{settings.project}-{settings.stack}-ci"


def sandboxes_group_name(settings: StackSettings) -> str:
    """The resource group a dev stack makes for sandboxes (sandbox stacks name it in azureResourceGroup)."""
    return f"{settings.project}-{settings.stack}-sandboxes"


@dataclass(frozen=True, kw_only=True)
class CiIdentityArgs:
    settings: StackSettings
    resource_group_id: pulumi.Input[str]  # the stack's group: what its deploy identity manages
    subscription_id: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    tracking_password: TrackingPasswordVault | None  # what the retrain identity reads (None on sandboxes)


class CiIdentity(pulumi.ComponentResource):
    """The CI identities (none for a sandbox); `outputs` is what a workflow's `azure/login` step needs."""

    outputs: dict[str, pulumi.Input[str]]
    sandbox_outputs: dict[str, pulumi.Input[str]] | None

    def __init__(self, name: str, args: CiIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-stack:azure:CiIdentity", name, None, opts)
        settings = args.settings
        self.outputs, self.sandbox_outputs = {}, None
        subjects = trusted_subjects(settings)
        if not subjects:
            self.register_outputs({})
            return
        # In prod the group is protected like the stack's: deleting it would lock CI out of production.
        identities = resources.ResourceGroup(
            f"{name}-identities",
            resource_group_name=identities_group_name(settings),
            opts=pulumi.ResourceOptions(parent=self, protect=settings.protect),
        )
        deploy = self._federated_identity(f"{name}-deploy", subjects[CiRole.DEPLOY], identities.name, args)
        preview = self._federated_identity(f"{name}-preview", subjects[CiRole.PREVIEW], identities.name, args)
        self._grant_deployer(f"{name}-deploy", deploy, args.resource_group_id, args)
        grant_role(
            f"{name}-preview-reader",
            role=BuiltInRole.READER,
            scope=args.resource_group_id,
            principal_id=preview.principal_id,
            subscription_id=args.subscription_id,
            parent=self,
        )
        if settings.state is not None:
            self._grant_state(f"{name}-deploy", settings.state, deploy, args, write=True)
            self._grant_state(f"{name}-preview", settings.state, preview, args, write=False)
        else:
            pulumi.log.warn(
                "mlops-stack:stateBackend is not set: the CI identities get no access to this stack's state, "
                "so workflows cannot preview or deploy it (scripts/bootstrap.py sets it)",
                resource=self,
            )
        if args.tracking_password is None:
            raise ValueError("a stack with CI identities keeps the MLflow admin password in its vault")
        retrain = self._federated_identity(f"{name}-retrain", subjects[CiRole.RETRAIN], identities.name, args)
        grant_role(
            f"{name}-retrain-reads-tracking-password",
            role=BuiltInRole.KEY_VAULT_SECRETS_USER,
            scope=args.tracking_password.secret_id,
            principal_id=retrain.principal_id,
            subscription_id=args.subscription_id,
            parent=self,
        )
        self.outputs = {
            "deployClientId": deploy.client_id,
            "previewClientId": preview.client_id,
            "retrainClientId": retrain.client_id,
            "trackingPasswordSecret": args.tracking_password.secret_uri,
            "tenantId": args.tenant_id,
            "subscriptionId": args.subscription_id,
        }
        if CiRole.SANDBOX in subjects:
            group = resources.ResourceGroup(
                f"{name}-sandboxes-group",
                resource_group_name=sandboxes_group_name(settings),
                opts=pulumi.ResourceOptions(parent=self),
            )
            sandbox = self._federated_identity(
                f"{name}-sandbox", subjects[CiRole.SANDBOX], identities.name, args
            )
            self._grant_deployer(f"{name}-sandbox", sandbox, group.id, args)
            if settings.sandbox_state is not None:
                self._grant_state(f"{name}-sandbox", settings.sandbox_state, sandbox, args, write=True)
            self.sandbox_outputs = {
                "deployClientId": sandbox.client_id,
                "tenantId": args.tenant_id,
                "subscriptionId": args.subscription_id,
                "resourceGroup": group.name,
            }
        self.register_outputs(self.outputs)

    def _grant_deployer(
        self,
        name: str,
        identity: managedidentity.UserAssignedIdentity,
        scope: pulumi.Input[str],
        args: CiIdentityArgs,
    ) -> None:
        """Contributor, and assigning only the apps' data roles, on one resource group."""
        grant_role(
            f"{name}-contributor",
            role=BuiltInRole.CONTRIBUTOR,
            scope=scope,
            principal_id=identity.principal_id,
            subscription_id=args.subscription_id,
            parent=self,
        )
        grant_role(
            f"{name}-role-delegation",
            role=BuiltInRole.RBAC_ADMINISTRATOR,
            scope=scope,
            principal_id=identity.principal_id,
            subscription_id=args.subscription_id,
            parent=self,
            condition=delegation_condition(),
        )

    def _grant_state(
        self,
        name: str,
        state: StateLocation,
        identity: managedidentity.UserAssignedIdentity,
        args: CiIdentityArgs,
        *,
        write: bool,
    ) -> None:
        container, key = state_scopes(state, args.settings.state_resource_group, args.subscription_id)
        grant_role(
            f"{name}-state",
            role=BuiltInRole.STORAGE_BLOB_DATA_CONTRIBUTOR if write else BuiltInRole.STORAGE_BLOB_DATA_READER,
            scope=container,
            principal_id=identity.principal_id,
            subscription_id=args.subscription_id,
            parent=self,
        )
        # Pulumi's azurekeyvault secrets provider encrypts and decrypts with the key (no built-in role can
        # decrypt without encrypt; encrypting reveals nothing).
        grant_role(
            f"{name}-state-key",
            role=BuiltInRole.KEY_VAULT_CRYPTO_USER,
            scope=key,
            principal_id=identity.principal_id,
            subscription_id=args.subscription_id,
            parent=self,
        )

    def _federated_identity(
        self, name: str, subject: str, group: pulumi.Input[str], args: CiIdentityArgs
    ) -> managedidentity.UserAssignedIdentity:
        identity = managedidentity.UserAssignedIdentity(
            name,
            resource_name_=name,
            resource_group_name=group,
            opts=pulumi.ResourceOptions(parent=self),
        )
        managedidentity.FederatedIdentityCredential(
            f"{name}-github",
            resource_group_name=group,
            resource_name_=identity.name,
            federated_identity_credential_resource_name="github-actions",
            issuer=ISSUER,
            subject=subject,
            audiences=[GITHUB_AUDIENCE],
            opts=pulumi.ResourceOptions(parent=identity),
        )
        return identity


def state_scopes(
    state: StateLocation, resource_group: str, subscription_id: pulumi.Input[str]
) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
    """ARM ids of the state's blob container and its Key Vault key, from the URLs bootstrap printed:
    `azblob://<container>?storage_account=<account>` and `azurekeyvault://<vault>.vault.azure.net/keys/<key>`."""
    group = pulumi.Output.concat("/subscriptions/", subscription_id, f"/resourceGroups/{resource_group}")
    account = state.backend_query.get("storage_account", "")
    vault, key = state.key.split(".", 1)[0], state.key.rsplit("/", 1)[-1]
    container = pulumi.Output.concat(
        group,
        f"/providers/Microsoft.Storage/storageAccounts/{account}/blobServices/default/containers/{state.bucket}",
    )
    return container, pulumi.Output.concat(group, f"/providers/Microsoft.KeyVault/vaults/{vault}/keys/{key}")
