"""The two Container Apps: exposure, scale, probes, identities, and secrets only as secret references."""

import re

from infra.config import KEYS, Environment
from infra.tests.azure.conftest import (
    DEFAULT_DOMAIN,
    MODEL_SOURCE,
    AzureRun,
    client_of,
    container_app,
    container_env,
    plain_env,
    resource_id,
    standard_run,
)

SECRET_VARIABLES = {
    "tracking": {"MLFLOW_DB_PASSWORD", "MLFLOW_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"},
    "api": {"API_KEY"},
}


def test_ingress_is_external_https_only(azure_run: AzureRun) -> None:
    for component, port in (("tracking", 5000), ("api", 8000)):
        ingress = container_app(azure_run, component)["configuration"]["ingress"]
        assert ingress["external"] is True
        assert ingress["allowInsecure"] is False
        assert ingress["targetPort"] == port


def test_secrets_reach_the_containers_only_as_secret_references(azure_run: AzureRun) -> None:
    passwords = [r.name for r in azure_run.run.of_type("random:index/randomPassword:RandomPassword")]
    secret_values = {azure_run.generated[name] for name in passwords}
    assert len(secret_values) == len(passwords) >= 3
    for component, expected in SECRET_VARIABLES.items():
        inputs = container_app(azure_run, component)
        declared = {secret["name"] for secret in inputs["configuration"]["secrets"]}
        references = {var["name"]: var["secretRef"] for var in container_env(inputs) if "secretRef" in var}
        assert set(references) == expected
        assert set(references.values()) == declared
        for variable in container_env(inputs):
            assert variable.get("value") not in secret_values, variable["name"]
            assert not ("value" in variable and "secretRef" in variable)


def test_scale_to_zero_by_default_and_sizes_from_settings(azure_run: AzureRun) -> None:
    environment = Environment(azure_run.run.outputs["environment"])

    def default(key: str) -> int:
        return int(KEYS[key].default_for(environment) or 0)

    for component, minimum in (
        ("tracking", default("trackingMinInstances")),
        ("api", default("apiMinInstances")),
    ):
        template = container_app(azure_run, component)["template"]
        assert template["scale"]["minReplicas"] == minimum
        assert template["containers"][0]["resources"] == {"cpu": 0.5, "memory": "1Gi"}
    assert container_app(azure_run, "api")["template"]["scale"]["maxReplicas"] == default("apiMaxInstances")
    if environment is not Environment.PROD:
        assert default("trackingMinInstances") == default("apiMinInstances") == 0


def test_probes_use_each_servers_health_endpoints(azure_run: AzureRun) -> None:
    def probes(component: str) -> dict[str, tuple[str, int]]:
        container = container_app(azure_run, component)["template"]["containers"][0]
        return {p["type"]: (p["httpGet"]["path"], p["httpGet"]["port"]) for p in container["probes"]}

    assert probes("tracking") == {"Startup": ("/health", 5000), "Liveness": ("/health", 5000)}
    assert probes("api") == {
        "Startup": ("/readyz", 8000),
        "Liveness": ("/healthz", 8000),
        "Readiness": ("/readyz", 8000),
    }


def test_each_app_runs_and_pulls_as_its_own_identity(azure_run: AzureRun) -> None:
    s = azure_run.stack
    registry = azure_run.run.outputs["registry"]
    for component in ("tracking", "api"):
        inputs = container_app(azure_run, component)
        identity = f"{s}-{component}-identity"
        assert inputs["identity"] == {
            "type": "UserAssigned",
            "userAssignedIdentities": [resource_id(identity)],
        }
        assert inputs["configuration"]["registries"] == [
            {"server": registry, "identity": resource_id(identity)}
        ]
        assert plain_env(inputs)["AZURE_CLIENT_ID"] == client_of(identity)
        assert inputs["template"]["containers"][0]["image"].startswith(f"{registry}/")
        assert "@sha256:" in inputs["template"]["containers"][0]["image"]  # deployed by digest
        assert inputs["managedEnvironmentId"] == resource_id(f"{s}-apps-environment")
        assert inputs["workloadProfileName"] == "Consumption"


def test_tracking_server_environment_and_urls(azure_run: AzureRun) -> None:
    s = azure_run.stack
    inputs = container_app(azure_run, "tracking")
    env = plain_env(inputs)
    host = f"{inputs['containerAppName']}.{DEFAULT_DOMAIN}"
    assert env["MLFLOW_ALLOWED_HOSTS"] == host
    assert azure_run.run.outputs["trackingUri"] == f"https://{host}"
    server = azure_run.run.one("azure-native:dbforpostgresql:Server").inputs["serverName"]
    assert re.fullmatch(rf"{s}-mlflow-[a-z0-9]{{6}}", server), server  # global: a random suffix
    assert env["MLFLOW_DB_HOST"] == f"{server}.postgres.database.azure.com"
    assert env["MLFLOW_DB_SSLMODE"] == "require"
    assert env["MLFLOW_ARTIFACTS_DESTINATION"] == azure_run.run.outputs["artifactRoot"]
    assert {"trackingAdminPassword", "apiKey"} <= azure_run.run.secret_outputs


def test_model_api_serves_the_pinned_model(azure_run: AzureRun) -> None:
    inputs = container_app(azure_run, "api")
    env = plain_env(inputs)
    assert env["MODEL_URI"] == MODEL_SOURCE
    assert (env["MODEL_NAME"], env["MODEL_VERSION"]) == ("throughput", "1")
    assert azure_run.run.outputs["apiUrl"] == f"https://{inputs['containerAppName']}.{DEFAULT_DOMAIN}"
    assert azure_run.run.outputs["modelUri"] == MODEL_SOURCE


def test_no_model_api_until_a_model_is_pinned() -> None:
    """A new stack's first `up` has no model yet: no API app, no API identity or roles, empty apiUrl."""
    result = standard_run("dev", model=False)
    apps = result.run.of_type("azure-native:app:ContainerApp")
    assert [app.inputs["containerAppName"] for app in apps] == ["azure-dev-mlflow"]
    api_resources = [r.name for r in result.run.resources if r.name.startswith("azure-dev-api")]
    assert api_resources == []  # not even its image: the API image is built for a pinned model
    assert result.run.outputs["apiUrl"] == ""
    assert result.run.outputs["modelUri"] == ""


def test_each_app_waits_for_its_role_assignments_to_take_effect(azure_run: AzureRun) -> None:
    """The first revision pulls its image (AcrPull) and the API reads its model at start: the app is
    created only after a delay that starts once every assignment of its identity exists, and the delay
    runs again when an assignment is replaced (its id is a trigger)."""
    s = azure_run.stack
    for component, purposes in (
        ("tracking", {"artifacts", "sign-uploads", "pull"}),
        ("api", {"artifacts", "pull"}),
    ):
        identity = f"{s}-{component}-identity"
        delay = azure_run.run.named(f"{identity}-propagation")
        assert delay.type == "time:index/sleep:Sleep"
        assert delay.inputs["createDuration"] == "120s"
        assignments = {f"{identity}-{purpose}" for purpose in purposes}
        assert delay.inputs["triggers"] == {p: resource_id(f"{identity}-{p}") for p in purposes}
        assert assignments <= azure_run.dependencies[delay.name]
        assert delay.name in azure_run.dependencies[f"{s}-{component}-service-app"]


def test_probes_stay_within_container_apps_limits(azure_run: AzureRun) -> None:
    """At most 10 failures and 240 s a period (infra/azure/limits.py); the startup budget is 150 s."""
    for component in ("tracking", "api"):
        container = container_app(azure_run, component)["template"]["containers"][0]
        timing = {p["type"]: (p["periodSeconds"], p["failureThreshold"]) for p in container["probes"]}
        assert timing["Startup"] == (15, 10)
        assert timing["Liveness"] == (30, 3)
        if component == "api":
            assert timing["Readiness"] == (10, 3)
