"""Who may do what: every role assignment (role, scope, principal) and the CI federated credentials."""

import pytest
from pulumi.runtime import rpc

from infra.azure.ci_identity import DELEGABLE_ROLES
from infra.azure.roles import BuiltInRole
from infra.tests.azure.conftest import (
    AAD_TOKEN,
    REPOSITORY,
    ROLE_PREFIX,
    SANDBOXES_GROUP,
    STACKS,
    SUBSCRIPTION_ID,
    TENANT_ID,
    AzureRun,
    client_of,
    config_for,
    principal_of,
    resource_id,
    run_azure,
    standard_run,
)
from testing.pulumi_program import ProgramRun


def role_assignments(run: ProgramRun) -> set[tuple[str, BuiltInRole, str]]:
    actual = set()
    for assignment in run.of_type("azure-native:authorization:RoleAssignment"):
        inputs = assignment.inputs
        assert inputs["roleDefinitionId"].startswith(ROLE_PREFIX), inputs["roleDefinitionId"]
        assert inputs["principalType"] == "ServicePrincipal"
        role = BuiltInRole(inputs["roleDefinitionId"].removeprefix(ROLE_PREFIX))
        actual.add((inputs["principalId"], role, inputs["scope"]))
    return actual


def test_every_role_assignment_is_exactly_the_one_needed(azure_run: AzureRun) -> None:
    """Apps: data roles on the artifact container (not the account) and AcrPull on the registry only;
    CI: Contributor + constrained RBAC admin (deploy) and Reader (preview) on the stack's group; a sandbox
    makes no CI identity."""
    s = azure_run.stack
    container = resource_id(f"{s}-artifacts-container")
    account = resource_id(f"{s}-artifacts-account")
    registry = resource_id(f"{s}-registry-registry")
    expected = {
        (principal_of(f"{s}-tracking-identity"), BuiltInRole.STORAGE_BLOB_DATA_CONTRIBUTOR, container),
        (principal_of(f"{s}-tracking-identity"), BuiltInRole.STORAGE_BLOB_DELEGATOR, account),
        (principal_of(f"{s}-tracking-identity"), BuiltInRole.ACR_PULL, registry),
        (principal_of(f"{s}-api-identity"), BuiltInRole.STORAGE_BLOB_DATA_READER, container),
        (principal_of(f"{s}-api-identity"), BuiltInRole.ACR_PULL, registry),
    }
    if not s.startswith("azure-sandbox-"):
        group = resource_id(f"{s}-group")
        expected |= {
            (principal_of(f"{s}-ci-deploy"), BuiltInRole.CONTRIBUTOR, group),
            (principal_of(f"{s}-ci-deploy"), BuiltInRole.RBAC_ADMINISTRATOR, group),
            (principal_of(f"{s}-ci-preview"), BuiltInRole.READER, group),
            # The one secret, not the vault: the vault's other secrets (none today) stay out of reach.
            (
                principal_of(f"{s}-ci-retrain"),
                BuiltInRole.KEY_VAULT_SECRETS_USER,
                resource_id(f"{s}-vault-admin-password"),
            ),
        }
    assignments = azure_run.run.of_type("azure-native:authorization:RoleAssignment")
    assert role_assignments(azure_run.run) == expected
    assert len(assignments) == len(expected)


def test_deploy_may_delegate_only_the_apps_data_roles(azure_run: AzureRun) -> None:
    assignments = azure_run.run.of_type("azure-native:authorization:RoleAssignment")
    conditional = [a for a in assignments if a.inputs.get("condition")]
    if azure_run.stack.startswith("azure-sandbox-"):
        assert conditional == []
        return
    (delegation,) = conditional
    assert delegation.name.endswith("-ci-deploy-role-delegation")
    condition = delegation.inputs["condition"]
    assert delegation.inputs["conditionVersion"] == "2.0"
    allowed = ", ".join(role.value for role in DELEGABLE_ROLES)
    # Both writes and deletes are limited to the data roles; writes only to service principals.
    assert condition.count(f"GuidEquals {{{allowed}}}") == 2
    assert "roleAssignments/write" in condition
    assert "roleAssignments/delete" in condition
    assert "StringEqualsIgnoreCase {'ServicePrincipal'}" in condition
    for powerful in (BuiltInRole.CONTRIBUTOR, BuiltInRole.RBAC_ADMINISTRATOR, BuiltInRole.READER):
        assert powerful.value not in condition


@pytest.mark.parametrize(
    ("environment", "preview"), [("dev", "pull_request"), ("prod", "ref:refs/heads/main")]
)
def test_federated_credentials_trust_only_this_repository(environment: str, preview: str) -> None:
    s = STACKS[environment]
    run = standard_run(environment, model=True).run
    credentials = {
        c.name: c.inputs for c in run.of_type("azure-native:managedidentity:FederatedIdentityCredential")
    }
    assert set(credentials) == {f"{s}-ci-deploy-github", f"{s}-ci-preview-github", f"{s}-ci-retrain-github"}
    assert credentials[f"{s}-ci-deploy-github"]["subject"] == f"repo:{REPOSITORY}:environment:{environment}"
    assert credentials[f"{s}-ci-preview-github"]["subject"] == f"repo:{REPOSITORY}:{preview}"
    assert (
        credentials[f"{s}-ci-retrain-github"]["subject"]
        == f"repo:{REPOSITORY}:environment:retrain-{environment}"
    )
    for role in ("deploy", "preview", "retrain"):
        credential = credentials[f"{s}-ci-{role}-github"]
        assert credential["issuer"] == "https://token.actions.githubusercontent.com"
        assert credential["audiences"] == ["api://AzureADTokenExchange"]
        assert credential["resourceName"] == f"{s}-ci-{role}"  # attached to the right identity
        assert credential["resourceGroupName"] == f"mlops-stack-{s}-ci"


def test_ci_identity_output_has_what_azure_login_needs(azure_run: AzureRun) -> None:
    s = azure_run.stack
    if s.startswith("azure-sandbox-"):
        assert azure_run.run.outputs["ciIdentity"] == {}
        assert not azure_run.run.of_type("azure-native:managedidentity:FederatedIdentityCredential")
        return
    assert azure_run.run.outputs["ciIdentity"] == {
        "deployClientId": client_of(f"{s}-ci-deploy"),
        "previewClientId": client_of(f"{s}-ci-preview"),
        "retrainClientId": client_of(f"{s}-ci-retrain"),
        "trackingPasswordSecret": secret_uri(azure_run.run),
        "tenantId": TENANT_ID,
        "subscriptionId": SUBSCRIPTION_ID,
    }


def secret_uri(run: ProgramRun) -> str:
    secret = run.one("azure-native:keyvault:Secret").inputs
    return f"https://{secret['vaultName']}.vault.azure.net/secrets/{secret['secretName']}"


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_the_retrain_identitys_vault_holds_the_admin_password_and_admits_only_rbac(environment: str) -> None:
    """RBAC mode (no access policy can widen the one assignment), soft delete, purge protection where the
    stack protects data, and the value the tracking server gets, not another one."""
    result = standard_run(environment, model=True)
    run = result.run
    vault = run.one("azure-native:keyvault:Vault").inputs
    properties = vault["properties"]
    assert properties["enableRbacAuthorization"] is True
    assert properties["enableSoftDelete"] is True
    assert "accessPolicies" not in properties
    assert properties["tenantId"] == TENANT_ID
    assert properties["sku"] == {"family": "A", "name": "standard"}
    assert not any(properties[f] for f in ("enabledForDeployment", "enabledForDiskEncryption",
                                           "enabledForTemplateDeployment"))  # fmt: skip
    if environment == "prod":
        assert (properties["enablePurgeProtection"], properties["softDeleteRetentionInDays"]) == (True, 90)
    else:
        assert "enablePurgeProtection" not in properties  # the API takes only true, irreversibly
        assert properties["softDeleteRetentionInDays"] == 7
    secret = run.one("azure-native:keyvault:Secret")
    # The value is sent as a secret (the object holding it travels wrapped as one).
    assert secret.inputs["properties"][rpc._special_sig_key] == rpc._special_secret_sig
    properties = secret.inputs["properties"]["value"]
    assert properties["contentType"] == "text/plain"
    assert secret.inputs["vaultName"] == vault["vaultName"]
    assert secret.inputs["resourceGroupName"] == f"mlops-stack-{STACKS[environment]}"
    (tracking,) = [
        a
        for a in run.of_type("azure-native:app:ContainerApp")
        if a.inputs["containerAppName"].endswith("mlflow")
    ]
    (app_secret,) = [
        s for s in tracking.inputs["configuration"]["secrets"] if s["name"] == "mlflow-admin-password"
    ]
    assert properties["value"] == app_secret["value"]
    assert len(app_secret["value"]) == 32


def test_sandboxes_make_no_vault() -> None:
    run = standard_run("sandbox", model=True).run
    assert run.of_type("azure-native:keyvault:Vault") == []
    assert run.of_type("azure-native:keyvault:Secret") == []


def test_deploy_subject_follows_the_configured_github_environment() -> None:
    result = run_azure(config_for("prod", githubEnvironment="production"), STACKS["prod"])
    subject = result.run.one("azure-native:managedidentity:FederatedIdentityCredential", "-deploy-github")
    assert subject.inputs["subject"] == f"repo:{REPOSITORY}:environment:production"


STATE = {
    "stateBackend": "azblob://pulumi-state-dev?storage_account=acmemlstate",
    "stateSecretsProvider": "azurekeyvault://acme-ml-kv.vault.azure.net/keys/pulumi-secrets-dev",
}
SANDBOX_HOST = {
    "sandboxes": "true",
    "sandboxStateBackend": "azblob://pulumi-state-sandbox?storage_account=acmemlstate",
    "sandboxStateSecretsProvider": "azurekeyvault://acme-ml-kv.vault.azure.net/keys/pulumi-secrets-sandbox",
}
STATE_GROUP = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/mlops-stack-state"
CONTAINERS = (
    f"{STATE_GROUP}/providers/Microsoft.Storage/storageAccounts/acmemlstate/blobServices/default/containers"
)
KEYS = f"{STATE_GROUP}/providers/Microsoft.KeyVault/vaults/acme-ml-kv/keys"


def test_ci_identities_reach_only_their_environments_state_container_and_key() -> None:
    run = run_azure(config_for("dev", **STATE, **SANDBOX_HOST), STACKS["dev"]).run
    state = {a for a in role_assignments(run) if a[2].startswith(STATE_GROUP)}
    deploy, preview, sandbox = (
        principal_of(f"azure-dev-ci-{role}") for role in ("deploy", "preview", "sandbox")
    )
    assert state == {
        (deploy, BuiltInRole.STORAGE_BLOB_DATA_CONTRIBUTOR, f"{CONTAINERS}/pulumi-state-dev"),
        (deploy, BuiltInRole.KEY_VAULT_CRYPTO_USER, f"{KEYS}/pulumi-secrets-dev"),
        (preview, BuiltInRole.STORAGE_BLOB_DATA_READER, f"{CONTAINERS}/pulumi-state-dev"),
        (preview, BuiltInRole.KEY_VAULT_CRYPTO_USER, f"{KEYS}/pulumi-secrets-dev"),
        (sandbox, BuiltInRole.STORAGE_BLOB_DATA_CONTRIBUTOR, f"{CONTAINERS}/pulumi-state-sandbox"),
        (sandbox, BuiltInRole.KEY_VAULT_CRYPTO_USER, f"{KEYS}/pulumi-secrets-sandbox"),
    }


def test_the_dev_stack_makes_the_sandboxes_group_and_an_identity_that_may_change_only_it() -> None:
    run = run_azure(config_for("dev", **SANDBOX_HOST), STACKS["dev"]).run
    group = run.one("azure-native:resources:ResourceGroup", "-ci-sandboxes-group")
    assert group.inputs["resourceGroupName"] == SANDBOXES_GROUP
    sandbox = principal_of("azure-dev-ci-sandbox")
    assert {(a[1], a[2]) for a in role_assignments(run) if a[0] == sandbox and "state" not in a[2]} == {
        (BuiltInRole.CONTRIBUTOR, resource_id(group.name)),
        (BuiltInRole.RBAC_ADMINISTRATOR, resource_id(group.name)),
    }
    credential = run.one("azure-native:managedidentity:FederatedIdentityCredential", "-ci-sandbox-github")
    assert credential.inputs["subject"] == f"repo:{REPOSITORY}:environment:sandbox"
    assert run.outputs["sandboxCiIdentity"] == {
        "deployClientId": client_of("azure-dev-ci-sandbox"),
        "tenantId": TENANT_ID,
        "subscriptionId": SUBSCRIPTION_ID,
        "resourceGroup": SANDBOXES_GROUP,
    }


def test_a_sandbox_deploys_into_the_dev_stacks_group_for_sandboxes() -> None:
    run = standard_run("sandbox", model=True).run
    assert run.of_type("azure-native:resources:ResourceGroup") == []
    groups = {r.inputs["resourceGroupName"] for r in run.resources if "resourceGroupName" in r.inputs}
    assert groups == {SANDBOXES_GROUP}


def test_images_are_pushed_with_an_exchanged_token_not_a_registry_key() -> None:
    """Admin user off; the push password is the ACR refresh token exchanged for the deployer's Entra ID
    token at this stack's registry, and it is a secret."""
    result = standard_run("dev", model=True)
    registry = result.run.one("azure-native:containerregistry:Registry").inputs
    assert registry["adminUserEnabled"] is False
    assert registry["anonymousPullEnabled"] is False
    login_server = f"{registry['registryName']}.azurecr.io"
    assert result.exchange.requests == [(login_server, TENANT_ID, AAD_TOKEN)]
    images = result.run.of_type("docker-build:index:Image")
    assert len(images) == 2
    [api] = [image for image in images if image.name.endswith("-api-image")]
    assert api.inputs["buildArgs"] == {"CLOUD": "azure"}
    for image in images:
        registries = image.inputs["registries"]
        assert registries[rpc._special_sig_key] == rpc._special_secret_sig  # sent to the engine as a secret
        (login,) = registries["value"]
        assert login == {
            "address": login_server,
            "username": "00000000-0000-0000-0000-000000000000",
            "password": result.exchange.refresh_token,
        }
        assert image.inputs["tags"][0].startswith(f"{login_server}/")
    assert result.run.outputs["registry"] == login_server


def test_sandboxes_sharing_the_group_never_share_a_name() -> None:
    """Every resource a sandbox makes directly in the dev stack's group for sandboxes is named after the
    sandbox's stack, so two sandboxes (and their destroys) never touch each other's resources."""
    from infra.tests.azure.conftest import EXPLICIT_NAMES

    def group_level_names(stack: str) -> dict[str, set[str]]:
        run = run_azure(config_for("sandbox"), stack).run
        names: dict[str, set[str]] = {}
        for resource in run.resources:
            field = EXPLICIT_NAMES.get(resource.type)
            if field and "resourceGroupName" in resource.inputs and resource.type not in NESTED:
                names.setdefault(resource.type, set()).add(resource.inputs[field])
        return names

    alice, bob = group_level_names("azure-sandbox-alice"), group_level_names("azure-sandbox-bob")
    assert set(alice) == set(bob)
    assert len(alice) >= 9
    for resource_type in alice:
        assert alice[resource_type].isdisjoint(bob[resource_type]), resource_type


# Named within a parent that is itself the sandbox's (a subnet in its VNet, a container in its account).
NESTED = {
    "azure-native:network:Subnet",
    "azure-native:privatedns:VirtualNetworkLink",
    "azure-native:storage:BlobContainer",
}


def test_no_ci_identity_can_change_any_ci_identitys_trust() -> None:
    """The CI identities and their federated credentials sit in `<group>-ci`, and no role assignment the
    stack makes covers that group: Contributor on the stack's group (deploy) and on the sandboxes' group
    (sandbox) stop short of it, so no CI job can add a subject to a credential or delete an identity."""
    run = run_azure(config_for("dev", **STATE, **SANDBOX_HOST), STACKS["dev"]).run
    identities = run.one("azure-native:resources:ResourceGroup", "-ci-identities")
    assert identities.inputs["resourceGroupName"] == "mlops-stack-azure-dev-ci"
    ci = run.of_type("azure-native:managedidentity:UserAssignedIdentity")
    ci = [i for i in ci if "-ci-" in i.name]
    assert {i.name for i in ci} == {
        f"azure-dev-ci-{role}" for role in ("deploy", "preview", "sandbox", "retrain")
    }
    for resource in [*ci, *run.of_type("azure-native:managedidentity:FederatedIdentityCredential")]:
        assert resource.inputs["resourceGroupName"] == "mlops-stack-azure-dev-ci", resource.name
    group_id = resource_id(identities.name)
    scopes = {a.inputs["scope"] for a in run.of_type("azure-native:authorization:RoleAssignment")}
    assert group_id not in scopes
    assert all(not scope.startswith(f"{group_id}/") for scope in scopes)
    # Only the stack's own group and the sandboxes' group carry roles that can write resources.
    writable = {
        a.inputs["scope"]
        for a in run.of_type("azure-native:authorization:RoleAssignment")
        if a.inputs["roleDefinitionId"].endswith(BuiltInRole.CONTRIBUTOR.value)
    }
    assert writable == {resource_id("azure-dev-group"), resource_id("azure-dev-ci-sandboxes-group")}
