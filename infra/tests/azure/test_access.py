"""Who may do what: every role assignment (role, scope, principal) and the CI federated credentials."""

from pulumi.runtime import rpc

from infra.azure.ci_identity import DELEGABLE_ROLES
from infra.azure.roles import BuiltInRole
from infra.tests.azure.conftest import (
    AAD_TOKEN,
    REPOSITORY,
    ROLE_PREFIX,
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


def test_every_role_assignment_is_exactly_the_one_needed(azure_run: AzureRun) -> None:
    """Apps: data roles on the artifact container (not the account) and AcrPull on the registry only;
    CI: Contributor + constrained RBAC admin (deploy) and Reader (preview) on the stack's group."""
    s = azure_run.stack
    container = resource_id(f"{s}-artifacts-container")
    account = resource_id(f"{s}-artifacts-account")
    registry = resource_id(f"{s}-registry-registry")
    group = resource_id(f"{s}-group")
    expected = {
        (principal_of(f"{s}-tracking-identity"), BuiltInRole.STORAGE_BLOB_DATA_CONTRIBUTOR, container),
        (principal_of(f"{s}-tracking-identity"), BuiltInRole.STORAGE_BLOB_DELEGATOR, account),
        (principal_of(f"{s}-tracking-identity"), BuiltInRole.ACR_PULL, registry),
        (principal_of(f"{s}-api-identity"), BuiltInRole.STORAGE_BLOB_DATA_READER, container),
        (principal_of(f"{s}-api-identity"), BuiltInRole.ACR_PULL, registry),
        (principal_of(f"{s}-ci-deploy"), BuiltInRole.CONTRIBUTOR, group),
        (principal_of(f"{s}-ci-deploy"), BuiltInRole.RBAC_ADMINISTRATOR, group),
        (principal_of(f"{s}-ci-preview"), BuiltInRole.READER, group),
    }
    assignments = azure_run.run.of_type("azure-native:authorization:RoleAssignment")
    actual = set()
    for assignment in assignments:
        inputs = assignment.inputs
        assert inputs["roleDefinitionId"].startswith(ROLE_PREFIX), inputs["roleDefinitionId"]
        assert inputs["principalType"] == "ServicePrincipal"
        role = BuiltInRole(inputs["roleDefinitionId"].removeprefix(ROLE_PREFIX))
        actual.add((inputs["principalId"], role, inputs["scope"]))
    assert actual == expected
    assert len(assignments) == len(expected)


def test_deploy_may_delegate_only_the_apps_data_roles(azure_run: AzureRun) -> None:
    inputs = azure_run.run.one(
        "azure-native:authorization:RoleAssignment", "-ci-deploy-role-delegation"
    ).inputs
    condition = inputs["condition"]
    assert inputs["conditionVersion"] == "2.0"
    allowed = ", ".join(role.value for role in DELEGABLE_ROLES)
    # Both writes and deletes are limited to the three roles; writes only to service principals.
    assert condition.count(f"GuidEquals {{{allowed}}}") == 2
    assert "roleAssignments/write" in condition
    assert "roleAssignments/delete" in condition
    assert "StringEqualsIgnoreCase {'ServicePrincipal'}" in condition
    for powerful in (BuiltInRole.CONTRIBUTOR, BuiltInRole.RBAC_ADMINISTRATOR, BuiltInRole.READER):
        assert powerful.value not in condition
    assignments = azure_run.run.of_type("azure-native:authorization:RoleAssignment")
    assert sum(1 for a in assignments if a.inputs.get("condition")) == 1


def test_federated_credentials_trust_only_this_repository(azure_run: AzureRun) -> None:
    s = azure_run.stack
    environment = s.removeprefix("azure-").split("-")[0]
    credentials = {
        c.name: c.inputs
        for c in azure_run.run.of_type("azure-native:managedidentity:FederatedIdentityCredential")
    }
    assert set(credentials) == {f"{s}-ci-deploy-github", f"{s}-ci-preview-github"}
    deploy, preview = credentials[f"{s}-ci-deploy-github"], credentials[f"{s}-ci-preview-github"]
    assert deploy["subject"] == f"repo:{REPOSITORY}:environment:{environment}"
    assert preview["subject"] == f"repo:{REPOSITORY}:pull_request"
    for credential, identity in ((deploy, f"{s}-ci-deploy"), (preview, f"{s}-ci-preview")):
        assert credential["issuer"] == "https://token.actions.githubusercontent.com"
        assert credential["audiences"] == ["api://AzureADTokenExchange"]
        assert credential["resourceName"] == identity  # attached to the right identity
        assert credential["resourceGroupName"] == f"mlops-stack-{s}"


def test_ci_identity_output_has_what_azure_login_needs(azure_run: AzureRun) -> None:
    s = azure_run.stack
    assert azure_run.run.outputs["ciIdentity"] == {
        "deployClientId": client_of(f"{s}-ci-deploy"),
        "previewClientId": client_of(f"{s}-ci-preview"),
        "tenantId": TENANT_ID,
        "subscriptionId": SUBSCRIPTION_ID,
    }


def test_deploy_subject_follows_the_configured_github_environment() -> None:
    result = run_azure(config_for("prod", githubEnvironment="production"), STACKS["prod"])
    subject = result.run.one("azure-native:managedidentity:FederatedIdentityCredential", "-deploy-github")
    assert subject.inputs["subject"] == f"repo:{REPOSITORY}:environment:production"


def test_images_are_pushed_with_an_exchanged_token_not_a_registry_key() -> None:
    """Admin user off; the push password is the ACR refresh token exchanged for the deployer's Entra ID
    token at this stack's registry, and it is a secret."""
    result = standard_run("dev", model=False)
    registry = result.run.one("azure-native:containerregistry:Registry").inputs
    assert registry["adminUserEnabled"] is False
    assert registry["anonymousPullEnabled"] is False
    login_server = f"{registry['registryName']}.azurecr.io"
    assert result.exchange.requests == [(login_server, TENANT_ID, AAD_TOKEN)]
    images = result.run.of_type("docker-build:index:Image")
    assert len(images) == 2
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
