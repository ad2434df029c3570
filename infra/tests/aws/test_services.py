"""The ECS Express services: sizes, scaling, probes, secrets by reference, and each role's permissions."""

import json
import re
import secrets
import shlex
from pathlib import Path
from typing import Any

import pytest
from mlflow.server.security_utils import is_allowed_host_header, should_block_cors_request
from uvicorn import main as uvicorn_cli

from infra.aws.database import RDS_CA_BUNDLE_PATH
from infra.aws.express import ALB_IDLE_TIMEOUT_SECONDS, _public_url
from infra.images import REPOSITORY_ROOT, TRACKING_DOCKERFILE
from infra.mlflow_server.command import build_launch
from infra.mlflow_server.settings import parse_settings
from infra.tests.aws.conftest import (
    ACCOUNT_ID,
    EXPRESS_ENDPOINT,
    REGION,
    bucket_name,
    express_service,
    role_policy,
    run_aws,
    statements,
    with_model,
)
from service.settings import Settings
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


def ingress_host(service: Registered) -> str:
    """The public endpoint AWS assigned the service (the mocks give it the real shape)."""
    (path,) = [p for p in service.outputs["ingressPaths"] if p["accessType"] == "PUBLIC"]
    return str(path["endpoint"])


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
    assert run.outputs["apiUrl"] == f"https://{ingress_host(api)}"
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


def test_tracking_env_names_the_database_bucket_and_verifies_the_database_certificate(
    environment: str,
) -> None:
    run = run_aws(environment)
    service = express_service(run, "tracking")
    env = plain_env(service)
    assert env["MLFLOW_DB_HOST"].endswith(".rds.amazonaws.com")
    assert (env["MLFLOW_DB_NAME"], env["MLFLOW_DB_USER"]) == ("mlflow", "mlflow")
    # verify-full: the RDS certificate must chain to the CA bundle the image carries and name the host.
    assert env["MLFLOW_DB_SSLMODE"] == "verify-full"
    assert env["PGSSLROOTCERT"] == RDS_CA_BUNDLE_PATH
    assert env["MLFLOW_ARTIFACTS_DESTINATION"] == run.outputs["artifactRoot"]
    assert run.outputs["trackingUri"] == f"https://{ingress_host(service)}"


def test_the_tracking_image_carries_the_ca_bundle_where_infra_points_libpq() -> None:
    """The join between infra/aws (PGSSLROOTCERT) and the image: the bundle is downloaded at build time,
    checked by SHA-256, readable by the server's unprivileged user, at exactly that path."""
    dockerfile = (REPOSITORY_ROOT / TRACKING_DOCKERFILE).read_text().replace("\\\n", " ")
    (instruction,) = [line.split() for line in dockerfile.splitlines() if line.startswith("ADD ")]
    flags = {
        word.split("=", 1)[0]: word.split("=", 1)[1] for word in instruction[1:] if word.startswith("--")
    }
    source, destination = [word for word in instruction[1:] if not word.startswith("--")]
    assert destination == RDS_CA_BUNDLE_PATH
    assert source == "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", flags["--checksum"])
    assert flags["--chmod"] == "0444"


def _mlflow_security(run: ProgramRun) -> tuple[list[str], list[str]]:
    """The Host patterns and CORS origins the real entrypoint gives `mlflow server` for the mocked tracking
    service's environment (secrets replaced by generated values): what MLflow's middleware will enforce."""
    service = express_service(run, "tracking")
    environ = {**plain_env(service), **{name: secrets.token_urlsafe(24) for name in secret_refs(service)}}
    argv = build_launch(parse_settings(environ), Path("/tmp/auth.ini"), environ, "python").argv
    hosts = argv[argv.index("--allowed-hosts") + 1].split(",")
    origins = argv[argv.index("--cors-allowed-origins") + 1].split(",")
    return hosts, origins


@pytest.mark.parametrize(
    "endpoint",
    [
        None,  # the one the mock assigned this stack's service (random letters, never the name's)
        # Real Express endpoints from public deployments, moved to our region: services `niriksh-api`, `web`.
        f"ni-adada88b582b4d3ea6b21602d2c1abf7.ecs.{REGION}.on.aws",
        f"ca-4f7c487503aa47609a79a96746866bb8.ecs.{REGION}.on.aws",
    ],
)
def test_mlflow_accepts_requests_and_ui_writes_on_a_real_express_endpoint(endpoint: str | None) -> None:
    """MLflow's own host check and cross-origin check (mlflow.server.security_utils), configured as the
    entrypoint configures them from what infra sends, must pass the host AWS assigns: a request that fails the
    host check gets 403, and the UI's own POSTs carry `Origin: https://<host>`."""
    run = run_aws("dev")
    host = endpoint or ingress_host(express_service(run, "tracking"))
    assert EXPRESS_ENDPOINT.fullmatch(host)
    hosts, origins = _mlflow_security(run)
    assert is_allowed_host_header(hosts, host)
    assert not should_block_cors_request(f"https://{host}", "POST", origins)
    # Still a check: another domain, or an Express endpoint of another region, is refused.
    for foreign in ("attacker.example", "ni-adada88b582b4d3ea6b21602d2c1abf7.ecs.us-east-1.on.aws"):
        assert not is_allowed_host_header(hosts, foreign)
        assert should_block_cors_request(f"https://{foreign}", "POST", origins)


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
    bucket_arn = f"arn:aws:s3:::{bucket_name(run)}"
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
        "s3:AbortMultipartUpload",  # MLflow's multipart uploads (large artifacts) abort through the server
    }
    assert set(tracking["ArtifactKey"]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert set(api["Artifacts"]["Action"]) == {"s3:GetObject", "s3:GetObjectVersion"}
    assert api["ArtifactKey"]["Action"] == ["kms:Decrypt"]


def test_every_service_role_is_assumed_only_by_ecs_and_task_roles_only_for_this_account() -> None:
    run = run_aws("dev", with_model("dev"))
    service_roles = [r for r in run.of_type(ROLE) if "/workloads/" in r.inputs["path"]]
    assert len(service_roles) == 5  # infrastructure + (execution, task) x 2
    infrastructure = run.one(ROLE, "-ecs-infrastructure")
    for role in service_roles:
        (trust,) = statements(role, "assumeRolePolicy").values()
        assert trust["Action"] == "sts:AssumeRole"
        if role is infrastructure:
            # AWS's documented trust for the infrastructure role has no condition; nothing documents that ECS
            # sends aws:SourceAccount when it assumes it, and a condition on an absent key would deny.
            assert trust["Principal"]["Service"] == "ecs.amazonaws.com"
            assert "Condition" not in trust
        else:
            assert trust["Principal"]["Service"] == "ecs-tasks.amazonaws.com"
            assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}
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
    run = run_aws("dev", with_model("dev", trackingImage=image))
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


@pytest.mark.parametrize(
    "endpoint",
    [
        "ni-adada88b582b4d3ea6b21602d2c1abf7.ecs.eu-west-1.on.aws",
        "https://ni-adada88b582b4d3ea6b21602d2c1abf7.ecs.eu-west-1.on.aws/",
    ],
)
def test_the_public_url_comes_from_the_public_ingress_path_with_or_without_a_scheme(endpoint: str) -> None:
    """The API documents `endpoint` only as "the endpoint for access to the service": accept a bare host and a
    URL, and never take a PRIVATE path."""
    paths = [
        {"accessType": "PRIVATE", "endpoint": "internal-x.ecs.eu-west-1.on.aws"},
        {"accessType": "PUBLIC", "endpoint": endpoint},
    ]
    assert _public_url(paths) == "https://ni-adada88b582b4d3ea6b21602d2c1abf7.ecs.eu-west-1.on.aws"
    assert _public_url(paths[:1]) == ""


def test_both_services_keep_idle_connections_open_longer_than_the_load_balancer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Read the way each program reads it: the tracking server's uvicorn options as uvicorn's own CLI parses
    what `mlflow server` hands it, the API's through its settings class (the join of infra and two images)."""
    run = run_aws("dev", with_model("dev"))
    tracking_env = plain_env(express_service(run, "tracking"))
    environ = {
        **tracking_env,
        **{name: secrets.token_urlsafe(24) for name in secret_refs(express_service(run, "tracking"))},
    }
    argv = build_launch(parse_settings(environ), Path("/tmp/auth.ini"), environ, "python").argv
    uvicorn_args = shlex.split(argv[argv.index("--uvicorn-opts") + 1])
    tracking_keep_alive = uvicorn_cli.make_context("uvicorn", [*uvicorn_args, "app:app"]).params[
        "timeout_keep_alive"
    ]

    for name, value in plain_env(express_service(run, "api")).items():
        monkeypatch.setenv(name, value)
    api_keep_alive = Settings().keep_alive_timeout_seconds  # type: ignore[call-arg]  # read from the environment

    assert tracking_keep_alive > ALB_IDLE_TIMEOUT_SECONDS
    assert api_keep_alive > ALB_IDLE_TIMEOUT_SECONDS
