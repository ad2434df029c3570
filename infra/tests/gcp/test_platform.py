"""The GCP program under mocks, per environment: what we would send to Google."""

from typing import Any

import pytest

from infra.tests.gcp.conftest import (
    MODEL_SOURCE,
    PROJECT,
    PROJECT_NUMBER,
    REGION,
    REPOSITORY,
    SANDBOX_DEPLOYER,
    STACKS,
    run_gcp,
    with_model,
)
from testing.pulumi_program import ProgramRun, Registered

SERVICE = "gcp:cloudrunv2/service:Service"
ACCOUNT = "gcp:serviceaccount/account:Account"
IAM_TYPES = (
    "gcp:storage/bucketIAMMember:BucketIAMMember",
    "gcp:secretmanager/secretIamMember:SecretIamMember",
    "gcp:projects/iAMMember:IAMMember",
    "gcp:serviceaccount/iAMMember:IAMMember",
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember",
)


SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"  # how Pulumi marks a secret value on the wire


def secret_value(value: Any) -> Any:
    """The value of an input that must travel marked secret (so state encrypts it); fails if it is plain."""
    assert isinstance(value, dict), value
    assert value.get(SECRET_SIGNATURE) == "1b47061264138c4ac30d75fd1eb44270", value
    return value["value"]


def environment_of(run: ProgramRun) -> str:
    return str(run.outputs["environment"])


def email(run: ProgramRun, name_suffix: str) -> str:
    account = run.one(ACCOUNT, name_suffix)
    return f"serviceAccount:{account.inputs['accountId']}@{PROJECT}.iam.gserviceaccount.com"


def env_of(service: Registered) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in service.inputs["template"]["containers"][0]["envs"]}


def test_bucket_is_private_versioned_and_expires_old_versions(stack_run: ProgramRun) -> None:
    bucket = stack_run.one("gcp:storage/bucket:Bucket").inputs
    assert bucket["uniformBucketLevelAccess"] is True
    assert bucket["publicAccessPrevention"] == "enforced"
    assert bucket["versioning"] == {"enabled": True}
    [rule] = bucket["lifecycleRules"]
    assert rule["action"]["type"] == "Delete"
    assert rule["condition"]["withState"] == "ARCHIVED"
    assert (
        rule["condition"]["daysSinceNoncurrentTime"]
        == {"dev": 7, "prod": 14, "sandbox": 1}[environment_of(stack_run)]
    )
    assert stack_run.outputs["artifactRoot"] == f"gs://{bucket['name']}/mlflow"


def test_only_sandboxes_can_lose_their_data_on_destroy(stack_run: ProgramRun) -> None:
    environment = environment_of(stack_run)
    bucket = stack_run.one("gcp:storage/bucket:Bucket").inputs
    instance = stack_run.one("gcp:sql/databaseInstance:DatabaseInstance").inputs
    protected = environment == "prod"
    assert bucket["forceDestroy"] is (environment == "sandbox")
    assert instance["deletionProtection"] is protected
    assert instance["settings"]["deletionProtectionEnabled"] is protected
    backups = instance["settings"]["backupConfiguration"]
    assert backups["enabled"] is (environment != "sandbox")
    assert backups["pointInTimeRecoveryEnabled"] is (environment != "sandbox")
    if environment == "prod":
        assert backups["backupRetentionSettings"]["retainedBackups"] == 14


def test_database_is_reachable_only_through_connectors(stack_run: ProgramRun) -> None:
    instance = stack_run.one("gcp:sql/databaseInstance:DatabaseInstance").inputs
    ip = instance["settings"]["ipConfiguration"]
    assert ip.get("authorizedNetworks", []) == []
    assert ip["sslMode"] == "ENCRYPTED_ONLY"
    assert instance["settings"]["tier"] == "db-f1-micro"
    assert instance["settings"]["edition"] == "ENTERPRISE"
    # Random suffix: a destroyed stack can come back at once although Cloud SQL reserves deleted names.
    assert instance["name"].endswith("-a1b2c3")
    user = stack_run.one("gcp:sql/user:User").inputs
    assert (
        secret_value(user["password"])
        == f"mock-{STACKS[environment_of(stack_run)]}-secrets-database-password"
    )


def test_registry_keeps_recent_images_and_deletes_old_untagged(stack_run: ProgramRun) -> None:
    repository = stack_run.one("gcp:artifactregistry/repository:Repository").inputs
    assert repository["format"] == "DOCKER"
    assert repository["cleanupPolicyDryRun"] is False
    policies = {policy["id"]: policy for policy in repository["cleanupPolicies"]}
    assert policies["keep-most-recent"]["action"] == "KEEP"
    assert policies["keep-most-recent"]["mostRecentVersions"]["keepCount"] == 10
    assert policies["delete-old-untagged"]["action"] == "DELETE"
    assert policies["delete-old-untagged"]["condition"]["tagState"] == "UNTAGGED"
    assert stack_run.outputs["registry"] == f"{REGION}-docker.pkg.dev/{PROJECT}/{repository['repositoryId']}"


def test_every_labelled_resource_carries_the_stack_labels(stack_run: ProgramRun) -> None:
    environment = environment_of(stack_run)
    labelled = [
        *(r.inputs["labels"] for r in stack_run.of_type("gcp:storage/bucket:Bucket")),
        *(r.inputs["labels"] for r in stack_run.of_type("gcp:artifactregistry/repository:Repository")),
        *(r.inputs["labels"] for r in stack_run.of_type("gcp:secretmanager/secret:Secret")),
        *(r.inputs["labels"] for r in stack_run.of_type(SERVICE)),
        *(
            r.inputs["settings"]["userLabels"]
            for r in stack_run.of_type("gcp:sql/databaseInstance:DatabaseInstance")
        ),
    ]
    assert len(labelled) == 9  # bucket, repository, 4 secrets, 2 services, instance
    for labels in labelled:
        assert labels["stack"] == STACKS[environment]
        assert labels["environment"] == environment
        assert ("expires-at" in labels) is (environment == "sandbox")


def test_required_apis_are_enabled_and_never_disabled(stack_run: ProgramRun) -> None:
    services = {r.inputs["service"]: r.inputs for r in stack_run.of_type("gcp:projects/service:Service")}
    for api in ("run", "sqladmin", "secretmanager", "artifactregistry", "iam", "sts", "iamcredentials"):
        assert services[f"{api}.googleapis.com"]["disableOnDestroy"] is False


def iam_bindings(run: ProgramRun) -> set[tuple[str, str, str]]:
    """Every IAM binding the program makes, as (role, member, the last part of its scope)."""
    found = set()
    for binding in (b for t in IAM_TYPES for b in run.of_type(t)):
        inputs = binding.inputs
        scope = (
            inputs.get("bucket")
            or inputs.get("secretId")
            or inputs.get("serviceAccountId")
            or inputs.get("cryptoKeyId")
            or (binding.type.startswith("gcp:cloudrunv2") and f"run:{inputs['name']}")
            or f"project:{inputs['project']}"
        )
        found.add((inputs["role"], inputs["member"], scope.rsplit("/", 1)[-1]))
    return found


def test_every_iam_binding_has_the_expected_member_and_scope(stack_run: ProgramRun) -> None:
    """The complete list: any new binding must be added here on purpose."""
    tracking, api = email(stack_run, "-tracking-account"), email(stack_run, "-api-account")
    environment = environment_of(stack_run)
    stack = STACKS[environment]
    bucket = stack_run.one("gcp:storage/bucket:Bucket").inputs["name"]
    deployer = (
        f"serviceAccount:{SANDBOX_DEPLOYER}"
        if environment == "sandbox"
        else email(stack_run, "-ci-deploy-account")
    )
    expected = {
        ("roles/storage.objectAdmin", tracking, bucket),
        ("roles/storage.objectViewer", api, bucket),
        ("roles/cloudsql.client", tracking, f"project:{PROJECT}"),
        *(
            # the mocks' id of the Secret resource holding that variable (the binding is on it alone)
            ("roles/secretmanager.secretAccessor", tracking, f"{stack}-tracking-secrets-{name}-id")
            for name in ("mlflow-db-password", "mlflow-admin-password", "mlflow-flask-server-secret-key")
        ),
        ("roles/secretmanager.secretAccessor", api, f"{stack}-api-secrets-api-key-id"),
        ("roles/iam.serviceAccountUser", deployer, tracking.split(":")[1]),
        ("roles/iam.serviceAccountUser", deployer, api.split(":")[1]),
        ("roles/iam.serviceAccountTokenCreator", tracking, tracking.split(":")[1]),
        ("roles/run.invoker", "allUsers", f"run:{stack}-tracking"),
        ("roles/run.invoker", "allUsers", f"run:{stack}-api"),
    }
    if environment != "sandbox":  # sandboxes make no CI account
        deploy, preview = email(stack_run, "-ci-deploy-account"), email(stack_run, "-ci-preview-account")
        pool_id = f"gh-{stack}-a1b2c3"
        pool = f"projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/{pool_id}"
        subject = f"principal://iam.googleapis.com/{pool}/subject/repo:{REPOSITORY}"
        preview_subject = (
            f"{subject}:ref:refs/heads/main" if environment == "prod" else f"{subject}:pull_request"
        )
        expected |= {
            ("roles/iam.workloadIdentityUser", f"{subject}:environment:{environment}", deploy.split(":")[1]),
            ("roles/iam.workloadIdentityUser", preview_subject, preview.split(":")[1]),
            *((role, deploy, f"project:{PROJECT}") for role in _deploy_roles()),
            ("roles/viewer", preview, f"project:{PROJECT}"),
            ("roles/iam.securityReviewer", preview, f"project:{PROJECT}"),
        }
    assert iam_bindings(stack_run) == expected


def test_the_deploy_account_may_grant_only_the_workloads_project_roles(stack_run: ProgramRun) -> None:
    if environment_of(stack_run) == "sandbox":
        return
    [admin] = [
        b.inputs
        for b in stack_run.of_type("gcp:projects/iAMMember:IAMMember")
        if b.inputs["role"] == "roles/resourcemanager.projectIamAdmin"
    ]
    assert admin["condition"]["expression"] == (
        "api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly(['roles/cloudsql.client'])"
    )
    # Every other project-level binding the program makes uses one of the grantable roles, so a CI deploy
    # (which may change only those) can keep them up to date.
    workload_project_roles = {
        b.inputs["role"]
        for b in stack_run.of_type("gcp:projects/iAMMember:IAMMember")
        if not b.name.startswith(f"{STACKS[environment_of(stack_run)]}-ci-")
    }
    assert workload_project_roles == {"roles/cloudsql.client"}


STATE = {
    "stateBackend": "gs://acme-ml-pulumi-state-dev",
    "stateSecretsProvider": "gcpkms://projects/acme-ml/locations/europe-west1/keyRings/mlops-stack/"
    "cryptoKeys/pulumi-secrets-dev",
}
SANDBOX_STATE = {
    "sandboxes": "true",
    "sandboxStateBackend": "gs://acme-ml-pulumi-state-sandbox",
    "sandboxStateSecretsProvider": "gcpkms://projects/acme-ml/locations/europe-west1/keyRings/mlops-stack/"
    "cryptoKeys/pulumi-secrets-sandbox",
}


def test_ci_accounts_read_and_write_only_their_own_environments_state_and_key() -> None:
    run = run_gcp("dev", **STATE, **SANDBOX_STATE)
    deploy, preview = email(run, "-ci-deploy-account"), email(run, "-ci-preview-account")
    sandbox = email(run, "-ci-sandbox-account")
    state = {b for b in iam_bindings(run) if "pulumi-s" in b[2]}
    assert state == {
        ("roles/storage.objectUser", deploy, "acme-ml-pulumi-state-dev"),
        ("roles/cloudkms.cryptoKeyEncrypterDecrypter", deploy, "pulumi-secrets-dev"),
        ("roles/storage.objectViewer", preview, "acme-ml-pulumi-state-dev"),
        ("roles/cloudkms.cryptoKeyDecrypter", preview, "pulumi-secrets-dev"),
        ("roles/storage.objectUser", sandbox, "acme-ml-pulumi-state-sandbox"),
        ("roles/cloudkms.cryptoKeyEncrypterDecrypter", sandbox, "pulumi-secrets-sandbox"),
    }
    key = run.one("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember", "-ci-deploy-state-key").inputs
    assert key["cryptoKeyId"] == STATE["stateSecretsProvider"].removeprefix("gcpkms://")


def test_a_state_prefix_narrows_the_object_grant_to_it() -> None:
    run = run_gcp("dev", **{**STATE, "stateBackend": "gs://acme-ml-pulumi-state/dev"})
    grant = run.one("gcp:storage/bucketIAMMember:BucketIAMMember", "-ci-preview-state").inputs
    assert grant["bucket"] == "acme-ml-pulumi-state"
    assert grant["condition"]["expression"] == (
        "resource.name.startsWith('projects/_/buckets/acme-ml-pulumi-state/objects/dev/') "
        "|| resource.type == 'storage.googleapis.com/Bucket'"
    )


def test_the_dev_stack_makes_the_sandboxes_account_trusted_by_the_sandbox_environment_only() -> None:
    run = run_gcp("dev", **SANDBOX_STATE, sandboxProject="acme-ml-sandboxes")
    sandbox = email(run, "-ci-sandbox-account")
    federation = run.one("gcp:serviceaccount/iAMMember:IAMMember", "-ci-sandbox-federation").inputs
    assert federation["member"].endswith(f"/subject/repo:{REPOSITORY}:environment:sandbox")
    roles = {(b[0], b[2]) for b in iam_bindings(run) if b[1] == sandbox and b[2].startswith("project:")}
    assert roles == {(role, "project:acme-ml-sandboxes") for role in _deploy_roles()}
    assert run.outputs["sandboxCiIdentity"] == {
        "workloadIdentityProvider": run.outputs["ciIdentity"]["workloadIdentityProvider"],
        "deployServiceAccount": sandbox.split(":")[1],
        "project": "acme-ml-sandboxes",
    }
    assert "sandboxCiIdentity" not in run_gcp("dev").outputs


def test_a_sandbox_stack_makes_no_ci_account_and_exports_an_empty_ci_identity() -> None:
    run = run_gcp("sandbox", **with_model())
    assert not [a for a in run.of_type(ACCOUNT) if "-ci-" in a.name]
    assert not run.of_type("gcp:iam/workloadIdentityPool:WorkloadIdentityPool")
    assert run.outputs["ciIdentity"] == {}


def _deploy_roles() -> list[str]:
    from infra.gcp.ci_identity import DEPLOY_ROLES

    assert "roles/owner" not in DEPLOY_ROLES
    assert "roles/editor" not in DEPLOY_ROLES
    return list(DEPLOY_ROLES)


def test_cloud_sql_client_is_narrowed_to_this_instance(stack_run: ProgramRun) -> None:
    [binding] = [
        b
        for b in stack_run.of_type("gcp:projects/iAMMember:IAMMember")
        if b.inputs["role"] == "roles/cloudsql.client"
    ]
    instance = stack_run.one("gcp:sql/databaseInstance:DatabaseInstance").inputs["name"]
    assert binding.inputs["condition"]["expression"] == (
        f"resource.name == 'projects/{PROJECT}/instances/{instance}' "
        "&& resource.type == 'sqladmin.googleapis.com/Instance'"
    )


def test_github_provider_admits_only_this_repository(stack_run: ProgramRun) -> None:
    if environment_of(stack_run) == "sandbox":
        return
    provider = stack_run.one("gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider").inputs
    assert provider["attributeCondition"] == f"assertion.repository == '{REPOSITORY}'"
    assert provider["attributeMapping"]["attribute.repository_id"] == "assertion.repository_id"
    assert provider["oidc"]["issuerUri"] == "https://token.actions.githubusercontent.com"
    assert provider["attributeMapping"]["google.subject"] == "assertion.sub"
    pool_id = stack_run.one("gcp:iam/workloadIdentityPool:WorkloadIdentityPool").inputs[
        "workloadIdentityPoolId"
    ]
    assert 4 <= len(pool_id) <= 32
    assert not pool_id.startswith("gcp-")
    assert stack_run.outputs["ciIdentity"] == {
        "workloadIdentityProvider": f"projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/"
        f"{pool_id}/providers/github",
        "deployServiceAccount": email(stack_run, "-ci-deploy-account").split(":")[1],
        "previewServiceAccount": email(stack_run, "-ci-preview-account").split(":")[1],
        "project": PROJECT,
    }


def test_tracking_service_connects_through_cloud_sql_and_knows_its_host(stack_run: ProgramRun) -> None:
    stack = STACKS[environment_of(stack_run)]
    service = stack_run.one(SERVICE, "-tracking-service")
    instance = stack_run.one("gcp:sql/databaseInstance:DatabaseInstance").inputs["name"]
    connection = f"{PROJECT}:{REGION}:{instance}"
    template = service.inputs["template"]
    assert template["volumes"] == [{"name": "cloudsql", "cloudSqlInstance": {"instances": [connection]}}]
    assert template["containers"][0]["volumeMounts"] == [{"name": "cloudsql", "mountPath": "/cloudsql"}]
    env = env_of(service)
    assert env["MLFLOW_DB_HOST"]["value"] == f"/cloudsql/{connection}"
    host = f"{stack}-tracking-{PROJECT_NUMBER}.{REGION}.run.app"
    assert env["MLFLOW_ALLOWED_HOSTS"]["value"] == host
    assert stack_run.outputs["trackingUri"] == f"https://{host}"
    assert env["MLFLOW_ARTIFACTS_DESTINATION"]["value"] == stack_run.outputs["artifactRoot"]
    assert template["serviceAccount"] == email(stack_run, "-tracking-account").split(":")[1]


@pytest.mark.parametrize("purpose", ["tracking", "api"])
def test_secrets_are_references_never_plain_values(stack_run: ProgramRun, purpose: str) -> None:
    stack = STACKS[environment_of(stack_run)]
    secret_values = {
        secret_value(r.inputs["secretData"])
        for r in stack_run.of_type("gcp:secretmanager/secretVersion:SecretVersion")
    }
    assert len(secret_values) == 4
    assert all(value.startswith("mock-") for value in secret_values)
    env = env_of(stack_run.one(SERVICE, f"-{purpose}-service"))
    secret_names = {
        "tracking": {"MLFLOW_DB_PASSWORD", "MLFLOW_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"},
        "api": {"API_KEY"},
    }[purpose]
    for name in secret_names:
        assert "value" not in env[name]
        ref = env[name]["valueSource"]["secretKeyRef"]
        assert ref["secret"].startswith(f"{stack}-")
        assert ref["version"] == "1"
    assert not secret_values & {entry.get("value") for entry in env.values()}
    assert {"trackingAdminPassword", "apiKey"} <= stack_run.secret_outputs


def test_api_scales_and_probes_by_environment(stack_run: ProgramRun) -> None:
    environment = environment_of(stack_run)
    container = stack_run.one(SERVICE, "-api-service").inputs["template"]
    scaling = container["scaling"]
    assert (scaling["minInstanceCount"], scaling["maxInstanceCount"]) == {
        "dev": (0, 2),
        "prod": (1, 10),
        "sandbox": (0, 1),
    }[environment]
    tracking_scaling = stack_run.one(SERVICE, "-tracking-service").inputs["template"]["scaling"]
    assert tracking_scaling["minInstanceCount"] == (1 if environment == "prod" else 0)
    probes = container["containers"][0]
    assert probes["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert probes["resources"]["limits"] == {"cpu": "1", "memory": "1024Mi"}
    env = env_of(stack_run.one(SERVICE, "-api-service"))
    assert not any(name.startswith("MLFLOW_") for name in env)  # no tracking credentials
    assert env["MODEL_URI"]["value"] == stack_run.outputs["modelUri"]


def test_images_are_built_and_deployed_by_digest(stack_run: ProgramRun) -> None:
    images = stack_run.of_type("docker-build:index:Image")
    assert len(images) == 2
    for image in images:
        # The token makes the whole registries list secret.
        [registry] = secret_value(image.inputs["registries"])
        assert registry["address"] == f"{REGION}-docker.pkg.dev"
        assert registry["username"] == "oauth2accesstoken"
        assert registry["password"] == "mock-access-token"
    for service in stack_run.of_type(SERVICE):
        assert "@sha256:" in service.inputs["template"]["containers"][0]["image"]


def test_prebuilt_images_are_deployed_as_given_and_nothing_is_built() -> None:
    tracking = f"{REGION}-docker.pkg.dev/{PROJECT}/shared/mlflow@sha256:" + "1" * 64
    api = f"{REGION}-docker.pkg.dev/{PROJECT}/shared/api@sha256:" + "2" * 64
    run = run_gcp("dev", trackingImage=tracking, apiImage=api, **with_model())
    assert run.of_type("docker-build:index:Image") == []
    assert run.one(SERVICE, "-tracking-service").inputs["template"]["containers"][0]["image"] == tracking
    assert run.one(SERVICE, "-api-service").inputs["template"]["containers"][0]["image"] == api


def test_no_model_pinned_means_no_api_yet() -> None:
    run = run_gcp("dev")
    assert [s.name for s in run.of_type(SERVICE)] == ["gcp-dev-tracking-service"]
    assert not [a for a in run.of_type(ACCOUNT) if a.inputs["accountId"].endswith("-api")]
    assert run.outputs["apiUrl"] == ""
    assert run.outputs["modelUri"] == ""


def test_iam_mode_has_no_public_invoker_on_the_api() -> None:
    run = run_gcp("prod", apiAuth="iam", **with_model())
    invokers = run.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
    assert [i.inputs["name"] for i in invokers] == ["gcp-prod-tracking"]
    api_env = env_of(run.one(SERVICE, "-api-service"))
    assert "API_KEY" not in api_env
    assert "apiKey" not in run.outputs
    assert all(
        b.inputs["member"] != "allUsers"
        for t in IAM_TYPES
        for b in run.of_type(t)
        if b.inputs.get("name") != "gcp-prod-tracking"
    )


def test_the_pool_also_pins_the_repository_and_owner_ids_when_given() -> None:
    run = run_gcp("prod", githubRepositoryId="123456789", githubOwnerId="987654")
    provider = run.one("gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider").inputs
    assert provider["attributeCondition"] == (
        f"assertion.repository == '{REPOSITORY}' && assertion.repository_id == '123456789' "
        "&& assertion.repository_owner_id == '987654'"
    )


def test_the_api_reads_only_the_pinned_models_objects() -> None:
    run = run_gcp("dev", **with_model())
    grant = run.one("gcp:storage/bucketIAMMember:BucketIAMMember", "-api-bucket-reader").inputs
    bucket = run.one("gcp:storage/bucket:Bucket").inputs["name"]
    prefix = "mlflow/1/models/m-0123456789abcdef/artifacts"
    assert MODEL_SOURCE.endswith(prefix)
    assert grant["role"] == "roles/storage.objectViewer"
    assert grant["condition"]["expression"] == (
        f"resource.name.startsWith('projects/_/buckets/{bucket}/objects/{prefix}/') "
        "|| resource.type == 'storage.googleapis.com/Bucket'"
    )
