"""Keyless CI: two user-assigned identities GitHub Actions logs in as through OIDC federation.

- deploy: trusted only for `repo:<repo>:environment:<github environment>` (a job that runs in that GitHub
  environment, so its protection rules apply). Contributor on the stack's resource group, plus Role Based
  Access Control Administrator there, restricted by an ABAC condition to assigning and removing only the
  three data-plane roles the apps' identities get (AcrPull, Storage Blob Data Contributor/Reader). Chosen
  over User Access Administrator, which could grant anything, Owner included, to anyone.
  What it therefore cannot do, on purpose: change its own or the preview identity's roles, or create or
  remove management locks (prod) - those need an Owner, who runs the first `pulumi up` of a stack anyway
  (the identities and locks are created then and CI leaves them unchanged).
- preview: trusted only for `repo:<repo>:pull_request`; Reader on the resource group, enough for
  `pulumi preview` of a pull request, and nothing that changes anything.
"""

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.managedidentity as managedidentity

from infra.azure.roles import BuiltInRole, grant_role
from infra.config import StackSettings

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
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


def deploy_subject(settings: StackSettings) -> str:
    return f"repo:{settings.github_repository}:environment:{settings.github_environment}"


def preview_subject(settings: StackSettings) -> str:
    return f"repo:{settings.github_repository}:pull_request"


@dataclass(frozen=True)
class CiIdentityArgs:
    settings: StackSettings
    resource_group_name: pulumi.Input[str]
    resource_group_id: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    tags: dict[str, str]


class CiIdentity(pulumi.ComponentResource):
    """The deploy and preview identities; `outputs` is what a workflow's `azure/login` step needs."""

    outputs: dict[str, pulumi.Input[str]]

    def __init__(self, name: str, args: CiIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-stack:azure:CiIdentity", name, None, opts)
        deploy = self._federated_identity(f"{name}-deploy", deploy_subject(args.settings), args)
        preview = self._federated_identity(f"{name}-preview", preview_subject(args.settings), args)
        scope, subscription = args.resource_group_id, args.subscription_id
        grant_role(
            f"{name}-deploy-contributor",
            role=BuiltInRole.CONTRIBUTOR,
            scope=scope,
            principal_id=deploy.principal_id,
            subscription_id=subscription,
            parent=self,
        )
        grant_role(
            f"{name}-deploy-role-delegation",
            role=BuiltInRole.RBAC_ADMINISTRATOR,
            scope=scope,
            principal_id=deploy.principal_id,
            subscription_id=subscription,
            parent=self,
            condition=delegation_condition(),
        )
        grant_role(
            f"{name}-preview-reader",
            role=BuiltInRole.READER,
            scope=scope,
            principal_id=preview.principal_id,
            subscription_id=subscription,
            parent=self,
        )
        self.outputs = {
            "deployClientId": deploy.client_id,
            "previewClientId": preview.client_id,
            "tenantId": args.tenant_id,
            "subscriptionId": args.subscription_id,
        }
        self.register_outputs(self.outputs)

    def _federated_identity(
        self, name: str, subject: str, args: CiIdentityArgs
    ) -> managedidentity.UserAssignedIdentity:
        identity = managedidentity.UserAssignedIdentity(
            name,
            resource_group_name=args.resource_group_name,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        managedidentity.FederatedIdentityCredential(
            f"{name}-github",
            resource_group_name=args.resource_group_name,
            resource_name_=identity.name,
            federated_identity_credential_resource_name="github-actions",
            issuer=GITHUB_ISSUER,
            subject=subject,
            audiences=[GITHUB_AUDIENCE],
            opts=pulumi.ResourceOptions(parent=identity),
        )
        return identity
