"""The GCP program under mocks, per environment: what we would send to Google."""

import json
from typing import Any

import pytest

from infra.config import MODEL_ENVIRONMENTS
from infra.gcp.ci_identity import sandbox_deployer_email
from infra.tests.gcp.conftest import (
    MODEL_PATH,
    PROJECT,
    PROJECT_NUMBER,
    REGION,
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
    rule, abandoned_uploads = bucket["lifecycleRules"]
    # Parts of multipart uploads nobody completed are billed until aborted: a day after they started.
    assert abandoned_uploads == {
        "action": {"type": "AbortIncompleteMultipartUpload"},
        "condition": {"age": 1},
    }
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


def test_registry_keeps_recent_images_and_deletes_the_rest(stack_run: ProgramRun) -> None:
    repository = stack_run.one("gcp:artifactregistry/repository:Repository").inputs
    assert repository["format"] == "DOCKER"
    assert repository["cleanupPolicyDryRun"] is False
    policies = {policy["id"]: policy for policy in repository["cleanupPolicies"]}
    assert policies["keep-most-recent"]["action"] == "KEEP"
    assert policies["keep-most-recent"]["mostRecentVersions"]["keepCount"] == 10
    assert policies["delete-the-rest"]["action"] == "DELETE"
    assert policies["delete-the-rest"]["condition"] == {"tagState": "ANY"}
    assert stack_run.outputs["registry"] == f"{REGION}-docker.pkg.dev/{PROJECT}/{repository['repositoryId']}"


def test_every_labelled_resource_carries_the_stack_labels_through_the_provider(stack_run: ProgramRun) -> None:
    """One place: the explicit provider's default_labels reach every resource with top-level labels (none sets
    its own); Cloud SQL keeps labels in its settings, the one place they are given by hand."""
    environment = environment_of(stack_run)
    [provider] = stack_run.of_type("pulumi:providers:gcp")
    labels = json.loads(provider.inputs["defaultLabels"])  # provider config travels as JSON text
    assert labels["stack"] == STACKS[environment]
    assert labels["environment"] == environment
    assert ("expires-at" in labels) is (environment == "sandbox")
    assert (provider.inputs["project"], provider.inputs["region"]) == (PROJECT, REGION)
    gcp_resources = [r for r in stack_run.resources if r.custom and r.type.startswith("gcp:")]
    assert all("$pulumi:providers:gcp::gcp::" in (r.provider or "") for r in gcp_resources)
    assert not [r.name for r in gcp_resources if r.inputs.get("labels")]
    [instance] = stack_run.of_type("gcp:sql/databaseInstance:DatabaseInstance")
    assert instance.inputs["settings"]["userLabels"] == labels


def test_required_apis_are_enabled_and_never_disabled(stack_run: ProgramRun) -> None:
    services = {r.inputs["service"]: r.inputs for r in stack_run.of_type("gcp:projects/service:Service")}
    for api in ("run", "sqladmin", "secretmanager", "artifactregistry", "iam", "sts", "iamcredentials"):
        assert services[f"{api}.googleapis.com"]["disableOnDestroy"] is False


def test_every_iam_binding_has_the_expected_member_and_scope(stack_run: ProgramRun) -> None:
    """The complete list: any new binding must be added here on purpose. The CI identities' own bindings
    (logical names `<stack>-ci-…`) are checked in test_ci_identity.py."""
    tracking, api = email(stack_run, "-tracking-account"), email(stack_run, "-api-account")
    environment = environment_of(stack_run)
    stack = STACKS[environment]
    deploy = (
        f"serviceAccount:{sandbox_deployer_email(PROJECT)}"
        if environment == "sandbox"
        else email(stack_run, "-ci-deploy-account")
    )
    found = set()
    for binding in (b for t in IAM_TYPES for b in stack_run.of_type(t)):
        if binding.name.startswith(f"{stack}-ci-"):
            continue
        inputs = binding.inputs
        scope = (
            inputs.get("bucket")
            or inputs.get("secretId")
            or inputs.get("serviceAccountId")
            or (binding.type.startswith("gcp:cloudrunv2") and f"run:{inputs['name']}")
            or f"project:{inputs['project']}"
        )
        found.add((inputs["role"], inputs["member"], scope.rsplit("/", 1)[-1]))
    bucket = stack_run.one("gcp:storage/bucket:Bucket").inputs["name"]
    expected = {
        ("roles/storage.objectAdmin", tracking, bucket),
        ("roles/storage.objectViewer", api, bucket),  # conditioned: test_api_reads_only_its_models_objects
        ("roles/cloudsql.client", tracking, f"project:{PROJECT}"),
        *(
            # the mocks' id of the Secret resource holding that variable (the binding is on it alone)
            ("roles/secretmanager.secretAccessor", tracking, f"{stack}-tracking-secrets-{name}-id")
            for name in ("mlflow-db-password", "mlflow-admin-password", "mlflow-flask-server-secret-key")
        ),
        ("roles/secretmanager.secretAccessor", api, f"{stack}-api-secrets-api-key-id"),
        ("roles/iam.serviceAccountUser", deploy, tracking.split(":")[1]),
        ("roles/iam.serviceAccountUser", deploy, api.split(":")[1]),
        ("roles/iam.serviceAccountTokenCreator", tracking, tracking.split(":")[1]),
        ("roles/run.invoker", "allUsers", f"run:{stack}-tracking"),
        ("roles/run.invoker", "allUsers", f"run:{stack}-api"),
    }
    assert found == expected


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
    # Both URLs Cloud Run serves: the deterministic one and the hash-based *.a.run.app one.
    assert env["MLFLOW_ALLOWED_HOSTS"]["value"] == f"{host},{stack}-tracking-*.a.run.app"
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
    # The API image is built for the pinned version: its requirements, and GCP's storage client.
    api = next(image for image in images if image.name.endswith("-api-image"))
    assert api.inputs["context"]["named"] == {
        "model": {"location": str(MODEL_ENVIRONMENTS / "throughput" / "1")}
    }
    assert api.inputs["buildArgs"] == {"CLOUD": "gcp"}


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
    run = run_gcp("prod", apiAuth="iam", **with_model("prod"))
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


def test_tracking_speaks_http2_end_to_end_and_is_probed_over_tcp(stack_run: ProgramRun) -> None:
    """Cloud Run refuses HTTP/1 request bodies over 32 MiB: the port is h2c, and the server told to speak it.
    HTTP probes need HTTP/1, so the startup probe is TCP (Cloud Run has no TCP liveness probe)."""
    service = stack_run.one(SERVICE, "-tracking-service")
    [container] = service.inputs["template"]["containers"]
    assert container["ports"] == {"name": "h2c", "containerPort": 5000}
    assert env_of(service)["MLFLOW_HTTP2"]["value"] == "true"
    assert container["startupProbe"] == {
        "tcpSocket": {"port": 5000},
        "periodSeconds": 10,
        "timeoutSeconds": 10,
        "failureThreshold": 24,
    }
    assert "livenessProbe" not in container
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "2048Mi"}
    assert service.inputs["template"]["timeout"] == "900s"


def test_api_reads_only_its_models_objects(stack_run: ProgramRun) -> None:
    """objectViewer on the bucket, conditioned: listing (checked on the bucket), the model's objects only."""
    binding = stack_run.one("gcp:storage/bucketIAMMember:BucketIAMMember", "-api-bucket-reader").inputs
    bucket = stack_run.one("gcp:storage/bucket:Bucket").inputs["name"]
    assert binding["role"] == "roles/storage.objectViewer"
    resource = f"projects/_/buckets/{bucket}"
    assert binding["condition"]["expression"] == (
        f"resource.name == '{resource}' || resource.name.startsWith('{resource}/objects/{MODEL_PATH}/')"
    )
    assert stack_run.outputs["modelUri"] == f"gs://{bucket}/{MODEL_PATH}"
    writer = stack_run.one("gcp:storage/bucketIAMMember:BucketIAMMember", "-tracking-bucket-writer").inputs
    assert "condition" not in writer  # the tracking server writes every run's artifacts


@pytest.mark.parametrize("purpose", ["tracking", "api"])
def test_each_service_keeps_the_urn_it_had_before_the_cloud_run_component(
    stack_run: ProgramRun, purpose: str
) -> None:
    """Services and invokers were children of TrackingServer/ModelApi until CloudRunService came between: each
    names that component as a former parent, so `up` on an older stack moves them instead of replacing them.
    Same type and name under that parent is exactly the URN they had."""
    stack = STACKS[environment_of(stack_run)]
    workload = {"tracking": "mlops-stack:gcp:TrackingServer", "api": "mlops-stack:gcp:ModelApi"}[purpose]
    [owner] = [r for r in stack_run.of_type(workload) if r.name == f"{stack}-{purpose}"]
    moved = [
        stack_run.one(SERVICE, f"-{purpose}-service"),
        stack_run.one("gcp:cloudrunv2/serviceIamMember:ServiceIamMember", f"-{purpose}-public-invoker"),
    ]
    for resource in moved:
        assert resource.name.startswith(owner.name)
        assert resource.alias_parents == [owner.urn]
