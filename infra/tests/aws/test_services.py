"""The ECS Express services: sizes, scaling, probes, secrets by reference, and each role's permissions."""

import json
from typing import Any

import pytest

from infra.tests.aws.conftest import (
    ACCOUNT_ID,
    REGION,
    config_for,
    express_service,
    role_policy,
    run_aws,
    statements,
    with_model,
)
from testing.pulumi_program import ProgramRun, Registered

ROLE = "aws:iam/role:Role"


def role_for(run: ProgramRun, arn: str) -> Registered:
    """The role the mocks gave this ARN (`.../<namePrefix>0001`)."""
    (role,) = [r for r in run.of_type(ROLE) if arn.endswith(f"/{r.inputs['namePrefix']}0001")]
    return role


def role_arn(role: Registered) -> str:
    return f"arn:aws:iam::{ACCOUNT_ID}:role{role.inputs['path']}{role.inputs['namePrefix']}0001"


def plain_env(service: Registered) -> dict[str, str]:
    return {e["name"]: e["value"] for e in service.inputs["primaryContainer"]["environments"]}


def secret_refs(service: Registered) -> dict[str, str]:
    return {s["name"]: s["valueFrom"] for s in service.inputs["primaryContainer"].get("secrets", [])}


def test_a_new_stack_has_no_model_api() -> None:
    run = run_aws("dev")
    services = run.of_type("aws:ecs/expressGatewayService:ExpressGatewayService")
    assert [s.name for s in services] == ["aws-dev-tracking-service-service"]
    assert run.outputs["apiUrl"] == ""
    assert run.outputs["modelUri"] == ""


def test_pinning_a_model_adds_the_api_serving_it(environment: str) -> None:
    run = run_aws(environment, with_model(environment))
    api = express_service(run, "api")
    env = plain_env(api)
    assert env["MODEL_URI"] == run.outputs["modelUri"] == with_model(environment)["mlops-stack:modelSource"]
    assert (env["MODEL_NAME"], env["MODEL_VERSION"], env["PORT"]) == ("throughput", "1", "8000")
    assert env["IMAGE"].startswith(f"{run.outputs['registry']}/model-api:")
    assert "@sha256:" in env["IMAGE"]
    assert api.inputs["healthCheckPath"] == "/readyz"
    assert api.inputs["primaryContainer"]["containerPort"] == 8000
    assert run.outputs["apiUrl"] == f"https://{api.inputs['serviceName']}.ecs.{REGION}.on.aws"
    assert set(secret_refs(api)) == {"API_KEY"}


def test_tracking_service_probe_port_size_and_scaling(environment: str) -> None:
    run = run_aws(environment)
    tracking = express_service(run, "tracking").inputs
    assert tracking["healthCheckPath"] == "/health"
    assert tracking["primaryContainer"]["containerPort"] == 5000
    assert (tracking["cpu"], tracking["memory"]) == ("512", "1024")
    (scaling,) = tracking["scalingTargets"]
    # ECS has no request-driven start from zero: a minimum of 0 runs one task (prod's default is 1).
    assert scaling["minTaskCount"] == 1
    assert scaling["maxTaskCount"] == 2


def test_sizes_and_scaling_come_from_config() -> None:
    config = with_model("dev", apiCpu="1", apiMemoryMiB="3072", apiMinInstances="2", apiMaxInstances="5")
    api = express_service(run_aws("dev", config), "api").inputs
    assert (api["cpu"], api["memory"]) == ("1024", "3072")
    assert api["scalingTargets"][0]["minTaskCount"] == 2
    assert api["scalingTargets"][0]["maxTaskCount"] == 5


def test_tracking_env_names_the_database_bucket_and_expected_host(environment: str) -> None:
    run = run_aws(environment)
    service = express_service(run, "tracking")
    env = plain_env(service)
    assert env["MLFLOW_DB_HOST"].endswith(".rds.amazonaws.com")
    assert (env["MLFLOW_DB_NAME"], env["MLFLOW_DB_USER"], env["MLFLOW_DB_SSLMODE"]) == (
        "mlflow",
        "mlflow",
        "require",
    )
    assert env["MLFLOW_ARTIFACTS_DESTINATION"] == run.outputs["artifactRoot"]
    assert env["MLFLOW_ALLOWED_HOSTS"] == f"{service.inputs['serviceName']}*.ecs.{REGION}.on.aws"
    assert run.outputs["trackingUri"] == f"https://{service.inputs['serviceName']}.ecs.{REGION}.on.aws"


def test_secrets_are_referenced_from_secrets_manager_never_plain(environment: str) -> None:
    run = run_aws(environment, with_model(environment))
    secret_values = {
        str(v.inputs["secretString"]["value"])
        for v in run.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    }
    secret_arns = {
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:{s.inputs['namePrefix']}AbCdEf"
        for s in run.of_type("aws:secretsmanager/secret:Secret")
    }
    tracking, api = express_service(run, "tracking"), express_service(run, "api")
    assert set(secret_refs(tracking)) == {
        "MLFLOW_DB_PASSWORD",
        "MLFLOW_ADMIN_PASSWORD",
        "MLFLOW_FLASK_SERVER_SECRET_KEY",
    }
    for service in (tracking, api):
        assert set(secret_refs(service).values()) <= secret_arns
        assert not set(plain_env(service)) & set(secret_refs(service))
        assert not set(plain_env(service).values()) & secret_values
        assert not any(value in json.dumps(service.inputs) for value in secret_values)
    for version in run.of_type("aws:secretsmanager/secretVersion:SecretVersion"):
        assert "4dabf18193072939515e22adb298388d" in version.inputs["secretString"]  # stored as a secret
    recovery = {s.inputs["recoveryWindowInDays"] for s in run.of_type("aws:secretsmanager/secret:Secret")}
    assert recovery == ({0} if environment == "sandbox" else {7})
    assert {"trackingAdminPassword", "apiKey"} <= run.secret_outputs


def _execution_statements(run: ProgramRun, purpose: str) -> dict[str, dict[str, Any]]:
    return role_policy(run, role_for(run, express_service(run, purpose).inputs["executionRoleArn"]))


@pytest.mark.parametrize("purpose", ["tracking", "api"])
def test_execution_role_reads_only_its_own_secrets_images_and_logs(purpose: str) -> None:
    run = run_aws("dev", with_model("dev"))
    service = express_service(run, purpose)
    granted = _execution_statements(run, purpose)
    assert granted["ReadThisServicesSecrets"]["Action"] == ["secretsmanager:GetSecretValue"]
    assert sorted(granted["ReadThisServicesSecrets"]["Resource"]) == sorted(secret_refs(service).values())
    repositories = sorted(
        f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:{r.name}" for r in run.of_type("aws:ecr/repository:Repository")
    )
    assert sorted(granted["PullThisStacksImages"]["Resource"]) == repositories
    log_group = run.one("aws:cloudwatch/logGroup:LogGroup", f"-{purpose}-service-logs")
    assert granted["WriteThisServicesLogs"]["Resource"] == [
        f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{log_group.inputs['name']}:log-stream:*"
    ]
    assert log_group.inputs["retentionInDays"] == 14
    # The one unavoidable wildcard: ecr:GetAuthorizationToken has no resource-level permissions.
    wildcards = [sid for sid, s in granted.items() if "*" in s["Resource"]]
    assert wildcards == ["EcrLogin"]
    assert granted["EcrLogin"]["Action"] == ["ecr:GetAuthorizationToken"]


def test_task_roles_tracking_reads_and_writes_artifacts_api_only_reads() -> None:
    run = run_aws("dev", with_model("dev"))
    bucket_arn = f"arn:aws:s3:::{run.one('aws:s3/bucket:Bucket').name}-0a1b2c3"
    key_arn = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:{run.one('aws:kms/key:Key').name}"
    tracking = role_policy(run, role_for(run, express_service(run, "tracking").inputs["taskRoleArn"]))
    api = role_policy(run, role_for(run, express_service(run, "api").inputs["taskRoleArn"]))
    for granted in (tracking, api):
        assert granted["ListArtifacts"]["Resource"] == [bucket_arn]
        assert granted["ListArtifacts"]["Condition"] == {"StringLike": {"s3:prefix": ["mlflow", "mlflow/*"]}}
        assert granted["Artifacts"]["Resource"] == [f"{bucket_arn}/mlflow/*"]
        assert granted["ArtifactKey"]["Resource"] == [key_arn]
    assert set(tracking["Artifacts"]["Action"]) == {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:PutObject",
        "s3:DeleteObject",
    }
    assert set(tracking["ArtifactKey"]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert set(api["Artifacts"]["Action"]) == {"s3:GetObject", "s3:GetObjectVersion"}
    assert api["ArtifactKey"]["Action"] == ["kms:Decrypt"]


def test_every_service_role_is_assumed_only_by_ecs_of_this_account() -> None:
    run = run_aws("dev", with_model("dev"))
    service_roles = [r for r in run.of_type(ROLE) if "/workloads/" in r.inputs["path"]]
    assert len(service_roles) == 5  # infrastructure + (execution, task) x 2
    for role in service_roles:
        (trust,) = statements(role, "assumeRolePolicy").values()
        assert trust["Principal"]["Service"] in ("ecs-tasks.amazonaws.com", "ecs.amazonaws.com")
        assert trust["Action"] == "sts:AssumeRole"
        assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}
    infrastructure = run.one(ROLE, "-ecs-infrastructure")
    (attachment,) = [
        a.inputs
        for a in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == f"{infrastructure.inputs['namePrefix']}0001"
    ]
    assert attachment["policyArn"] == (
        "arn:aws:iam::aws:policy/service-role/AmazonECSInfrastructureRoleforExpressGatewayServices"
    )
    for service in run.of_type("aws:ecs/expressGatewayService:ExpressGatewayService"):
        assert service.inputs["infrastructureRoleArn"] == role_arn(infrastructure)


def test_everything_is_tagged_through_the_provider(environment: str) -> None:
    run = run_aws(environment)
    (provider,) = run.of_type("pulumi:providers:aws")
    tags = (
        json.loads(provider.inputs["defaultTags"])["tags"]
        if isinstance(provider.inputs["defaultTags"], str)
        else provider.inputs["defaultTags"]["tags"]
    )
    assert tags["stack"] == run.outputs["registry"].rsplit("/", 1)[1]
    assert tags["environment"] == environment
    assert ("expires-at" in tags) is (environment == "sandbox")
    assert provider.inputs["region"] == REGION
    aws_resources = [r for r in run.resources if r.type.startswith("aws:")]
    assert all(r.provider and "::aws::" in r.provider for r in aws_resources)


def test_prebuilt_images_are_deployed_as_given_without_a_build() -> None:
    image = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/aws-dev/mlflow-tracking@sha256:{'a' * 64}"
    run = run_aws("dev", config_for("dev", trackingImage=image))
    assert express_service(run, "tracking").inputs["primaryContainer"]["image"] == image
    assert [i.name for i in run.of_type("docker-build:index:Image")] == ["aws-dev-api-image"]


def test_every_environment_exports_the_contract_outputs(environment: str) -> None:
    """Also prints the program's time under mocks (reported, never asserted: the machine is shared)."""
    run = run_aws(environment, with_model(environment))
    print(
        f"\naws {environment} (with a model) under mocks: {run.seconds:.3f}s, {len(run.resources)} resources"
    )
    for name in ("trackingUri", "artifactRoot", "registry", "apiUrl", "modelUri"):
        assert run.outputs[name], name
    # Sandboxes make no CI identity (the dev stack's sandbox role deploys them): theirs is {}.
    assert bool(run.outputs["ciIdentity"]) is (environment != "sandbox")
    assert run.outputs["trackingUri"].startswith("https://")
