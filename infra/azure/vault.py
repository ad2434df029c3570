"""A Key Vault holding the MLflow admin password for the retrain workflow, and nothing else.

On GCP and AWS the tracking server's admin password already lives in the cloud's secret store, so the retrain
identity is granted on that secret. On Azure the tracking server gets it as a Container Apps secret, which has
no data-plane API a CI identity could be granted to read. This vault gives the retrain identity one secret to
read (`Key Vault Secrets User` on that secret alone, infra/azure/ci_identity.py), in RBAC mode so no access
policy can widen it (https://learn.microsoft.com/azure/key-vault/general/rbac-guide).

Two copies of one value: the Container Apps secret (what MLflow starts with) and this one (what the workflow
reads) are both set from the same `StackSecrets.tracking_admin_password` in the same `up`, so a rotation
(`pulumi up --replace` of the password) changes both. Referencing the vault from the Container App instead
(a `keyVaultUrl` secret read with the app's identity) would leave one copy, but:
- every sandbox would need a vault too: globally unique names that soft delete keeps reserved for at least
  7 days after each sandbox's destroy, and a new resource type in the sandbox identity's reach;
- the deploy identities would have to be allowed to assign `Key Vault Secrets User` (their role delegation is
  held by an ABAC condition to the apps' storage and registry roles, ci_identity.DELEGABLE_ROLES);
- a new revision's start would depend on the vault and on that assignment having propagated.
So the app keeps its own secret, and the vault exists only in stacks that make CI identities (not sandboxes).

Soft delete is always on (Azure no longer lets it be turned off) with the shortest retention, 7 days, except
where the stack protects data (prod: 90 days and purge protection, which nobody can undo or bypass). The vault
takes requests from anywhere (GitHub-hosted runners have no fixed addresses); only Entra ID identities with a
data role on the secret can read it. Its name is globally unique, with a random suffix kept in state, so a
stack brought up again while its old vault is still soft-deleted gets a new name.
"""

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.keyvault as keyvault

from infra.azure.limits import VAULT, VAULT_SOFT_DELETE_DAYS, name_limit
from infra.config import StackSettings
from infra.naming import unique_name

SECRET_NAME = "mlflow-admin-password"  # noqa: S105 (a secret's name, not its value)


@dataclass(frozen=True, kw_only=True)
class TrackingPasswordVaultArgs:
    settings: StackSettings
    resource_group_name: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    password: pulumi.Output[str]  # StackSecrets.tracking_admin_password


class TrackingPasswordVault(pulumi.ComponentResource):
    """The vault and its one secret; `secret_id` is the scope the retrain identity is granted on."""

    secret_id: pulumi.Output[str]  # ARM id of the secret
    secret_uri: pulumi.Output[str]  # https://<vault>.vault.azure.net/secrets/<name>: its current version

    def __init__(
        self, name: str, args: TrackingPasswordVaultArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops-stack:azure:TrackingPasswordVault", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)
        protect = settings.protect
        vault = keyvault.Vault(
            f"{name}-vault",
            vault_name=unique_name(
                f"{name}-suffix", settings.stack, "kv", max_length=name_limit(VAULT), parent=self
            ),
            resource_group_name=args.resource_group_name,
            properties=keyvault.VaultPropertiesArgs(
                tenant_id=args.tenant_id,
                sku=keyvault.SkuArgs(family=keyvault.SkuFamily.A, name=keyvault.SkuName.STANDARD),
                enable_rbac_authorization=True,
                enable_soft_delete=True,
                soft_delete_retention_in_days=VAULT_SOFT_DELETE_DAYS[1 if protect else 0],
                # The API takes only true here (irreversible) or nothing: never send false.
                enable_purge_protection=True if protect else None,
                enabled_for_deployment=False,
                enabled_for_disk_encryption=False,
                enabled_for_template_deployment=False,
                public_network_access="Enabled",
            ),
            opts=child,
        )
        # Secret explicitly, whatever the caller passes: the value must stay secret in state and in previews.
        value: pulumi.Output[str] = pulumi.Output.secret(args.password)
        secret = keyvault.Secret(
            f"{name}-admin-password",
            resource_group_name=args.resource_group_name,
            vault_name=vault.name,
            secret_name=SECRET_NAME,
            properties=keyvault.SecretPropertiesArgs(value=value, content_type="text/plain"),
            opts=child,
        )
        self.secret_id = secret.id
        self.secret_uri = secret.properties.secret_uri
        self.register_outputs({"secretUri": self.secret_uri})
