"""Hooks for running the Azure program under Pulumi mocks: config per environment, the computed outputs
Azure would return (ids, names, FQDNs), the client-config and token invokes, and ACR's token exchange
(the one call the program makes to a cloud endpoint itself), recorded so tests can check what was sent."""

import functools
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

import pytest
from pulumi.runtime import MockCallArgs, MockResourceArgs, mocks

from infra.azure import registry
from testing.pulumi_program import ComputedOutputs, ProgramRun, run_program, stack_config

SUBSCRIPTION_ID = "11111111-2222-3333-4444-555555555555"
TENANT_ID = "99999999-8888-7777-6666-555555555555"
DEFAULT_DOMAIN = "kindsea-1a2b3c4d.westeurope.azurecontainerapps.io"
REPOSITORY = "acme-ml/mlops-stack"
LOCATION = "westeurope"
STACKS = {"dev": "azure-dev", "prod": "azure-prod", "sandbox": "azure-sandbox-alice"}
MODEL_SOURCE = "wasbs://mlflow@azuredevmlflowabc123.blob.core.windows.net/mlflow/1/models/m-0123/artifacts"


# The group the azure-dev stack (with sandboxes: true) made for sandboxes: a sandbox deploys into it.
SANDBOXES_GROUP = "mlops-stack-azure-dev-sandboxes"


def config_for(environment: str, **overrides: str) -> dict[str, str]:
    """A valid Azure stack config for `environment`; `overrides` are project keys (camelCase)."""
    if environment == "sandbox":
        overrides = {"azureResourceGroup": SANDBOXES_GROUP, **overrides}
    return stack_config("azure", environment, {"azure-native:location": LOCATION}, REPOSITORY, **overrides)


def with_model(environment: str, **overrides: str) -> dict[str, str]:
    return config_for(environment, modelVersion="1", modelSource=MODEL_SOURCE, **overrides)


def resource_id(logical_name: str) -> str:
    """The id the mocks give a resource (testing.pulumi_program answers `<name>-id`)."""
    return f"{logical_name}-id"


def principal_of(identity_logical_name: str) -> str:
    return f"{identity_logical_name}-principal"


def client_of(identity_logical_name: str) -> str:
    return f"{identity_logical_name}-client"


def outputs_for(args: MockResourceArgs) -> dict[str, Any]:
    """What ARM computes: names of autonamed resources, identity ids, FQDNs, the environment's domain."""
    inputs = args.inputs
    outputs: dict[str, Any] = {}
    if args.typ.startswith("azure-native:"):
        outputs["name"] = args.name
    if args.typ in EXPLICIT_NAMES:
        outputs["name"] = inputs[EXPLICIT_NAMES[args.typ]]
    if args.typ == "azure-native:containerregistry:Registry":
        outputs["loginServer"] = f"{inputs['registryName']}.azurecr.io"
    if args.typ == "azure-native:app:ContainerApp":
        # ARM answers the identity list it was sent as a map of identity id -> details.
        identity = inputs["identity"]
        outputs["identity"] = {
            **identity,
            "userAssignedIdentities": {key: {} for key in identity["userAssignedIdentities"]},
        }
    if args.typ == "azure-native:managedidentity:UserAssignedIdentity":
        outputs |= {"principalId": principal_of(args.name), "clientId": client_of(args.name)}
    if args.typ == "azure-native:app:ManagedEnvironment":
        outputs["defaultDomain"] = DEFAULT_DOMAIN
    if args.typ == "azure-native:dbforpostgresql:Server":
        # A VNet-integrated server keeps its public DNS name, which resolves to the private address through
        # the linked private zone.
        outputs["fullyQualifiedDomainName"] = f"{inputs['serverName']}.postgres.database.azure.com"
    if args.typ in ("random:index/randomString:RandomString", "random:index/randomPassword:RandomPassword"):
        # Physical names and passwords as pulumi-random makes them from what we send (the contract test
        # feeds them to the real entrypoint; the limits test checks them against Azure's rules).
        outputs["result"] = random_string(inputs)
    if args.typ == "azure-native:keyvault:Secret":
        vault_uri = f"https://{inputs['vaultName']}.vault.azure.net"
        outputs["properties"] = {
            "secretUri": f"{vault_uri}/secrets/{inputs['secretName']}",
            "secretUriWithVersion": f"{vault_uri}/secrets/{inputs['secretName']}/0123456789abcdef",
        }
    if args.typ == "docker-build:index:Image":
        outputs["ref"] = f"{inputs['tags'][0]}@sha256:{secrets.token_hex(32)}"
    return outputs


# Resource type -> the input that holds the physical name (the resource's `name` output, as ARM answers it).
EXPLICIT_NAMES = {
    "azure-native:resources:ResourceGroup": "resourceGroupName",
    "azure-native:storage:StorageAccount": "accountName",
    "azure-native:storage:BlobContainer": "containerName",
    "azure-native:containerregistry:Registry": "registryName",
    "azure-native:privatedns:PrivateZone": "privateZoneName",
    "azure-native:privatedns:VirtualNetworkLink": "virtualNetworkLinkName",
    "azure-native:app:ContainerApp": "containerAppName",
    "azure-native:app:ManagedEnvironment": "environmentName",
    "azure-native:operationalinsights:Workspace": "workspaceName",
    "azure-native:dbforpostgresql:Server": "serverName",
    "azure-native:network:VirtualNetwork": "virtualNetworkName",
    "azure-native:network:Subnet": "subnetName",
    "azure-native:managedidentity:UserAssignedIdentity": "resourceName",
    "azure-native:authorization:ManagementLockByScope": "lockName",
    "azure-native:monitor:DiagnosticSetting": "name",
    "azure-native:keyvault:Vault": "vaultName",
    "azure-native:keyvault:Secret": "secretName",
}

UPPER, LOWER, DIGITS = string.ascii_uppercase, string.ascii_lowercase, string.digits
SPECIAL = "!@#$%&*()-_=+[]{}<>:?"


def random_string(inputs: dict[str, Any]) -> str:
    """A result as pulumi-random computes it: the provider is terraform-provider-random bridged, whose
    `CreateString` (internal/random/string.go) takes `min_*` characters from each class first, fills the
    rest of `length` from the union of the enabled classes, then shuffles. Classes default to enabled."""
    classes = [
        (UPPER, inputs.get("upper", True), inputs.get("minUpper", 0)),
        (LOWER, inputs.get("lower", True), inputs.get("minLower", 0)),
        (DIGITS, inputs.get("numeric", True), inputs.get("minNumeric", 0)),
        (inputs.get("overrideSpecial") or SPECIAL, inputs.get("special", True), inputs.get("minSpecial", 0)),
    ]
    chosen = [secrets.choice(chars) for chars, _, minimum in classes for _ in range(int(minimum))]
    pool = "".join(chars for chars, enabled, _ in classes if enabled)
    chosen += [secrets.choice(pool) for _ in range(int(inputs["length"]) - len(chosen))]
    secrets.SystemRandom().shuffle(chosen)
    return "".join(chosen)


def calls(args: MockCallArgs) -> dict[str, Any]:
    if args.token == "azure-native:authorization:getClientConfig":
        return {
            "subscriptionId": SUBSCRIPTION_ID,
            "tenantId": TENANT_ID,
            "clientId": "deployer-client",
            "objectId": "deployer-object",
        }
    if args.token == "azure-native:resources:getResourceGroup":
        name = args.args["resourceGroupName"]
        return {
            "name": name,
            "id": f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{name}",
            "location": LOCATION,
        }
    if args.token == "azure-native:authorization:getClientToken":
        return {"token": AAD_TOKEN}
    raise AssertionError(f"unexpected invoke {args.token}")


AAD_TOKEN = f"aad-{secrets.token_urlsafe(16)}"


@dataclass
class TokenExchange:
    """Stands in for ACR's /oauth2/exchange endpoint and records what the program sent it."""

    refresh_token: str = field(default_factory=lambda: f"acr-refresh-{secrets.token_urlsafe(16)}")
    requests: list[tuple[str, str, str]] = field(default_factory=list)

    def __call__(self, login_server: str, tenant_id: str, aad_access_token: str) -> str:
        self.requests.append((login_server, tenant_id, aad_access_token))
        return self.refresh_token


@dataclass
class AzureRun:
    """One program run under mocks, with what ACR's token endpoint was asked and, per resource (logical
    name), the logical names of the resources the engine was told it depends on."""

    run: ProgramRun
    exchange: TokenExchange
    stack: str
    dependencies: dict[str, set[str]] = field(default_factory=dict)
    generated: dict[str, str] = field(default_factory=dict)  # pulumi-random results by logical name


def run_azure(config: dict[str, str], stack: str, extra_outputs: ComputedOutputs = lambda _: {}) -> AzureRun:
    """The program under mocks; `extra_outputs` adds to (or overrides) what `outputs_for` computes."""
    exchange = TokenExchange()
    dependencies: dict[str, set[str]] = {}
    generated: dict[str, str] = {}
    register = mocks.MockMonitor.RegisterResource

    def computed(args: MockResourceArgs) -> dict[str, Any]:
        outputs = {**outputs_for(args), **extra_outputs(args)}
        if "result" in outputs:
            generated[args.name] = outputs["result"]
        return outputs

    def recording(monitor: mocks.MockMonitor, request: Any) -> Any:
        # The engine orders creates by these URNs (explicit depends_on and inputs' resources alike).
        dependencies[request.name] = {urn.rsplit("::", 1)[-1] for urn in request.dependencies}
        return register(monitor, request)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(registry, "exchange_for_acr_refresh_token", exchange)
        patch.setattr(mocks.MockMonitor, "RegisterResource", recording)
        run = run_program(config, stack, outputs_for=computed, calls=calls)
    return AzureRun(run, exchange, stack, dependencies, generated)


@functools.cache
def standard_run(environment: str, model: bool) -> AzureRun:
    """One run per (environment, model pinned?), shared by every test module: the program is not cheap
    to import and run on a busy machine, and a run is never modified by the tests reading it."""
    config = with_model(environment) if model else config_for(environment)
    result = run_azure(config, STACKS[environment])
    pinned = "with" if model else "without"
    print(f"\nazure {environment} ({pinned} a model) under mocks: {result.run.seconds:.3f}s")
    return result


@pytest.fixture(params=sorted(STACKS))
def azure_run(request: pytest.FixtureRequest) -> AzureRun:
    """The program for dev, prod and sandbox, each with a pinned model (so both apps exist)."""
    return standard_run(request.param, model=True)


ROLE_PREFIX = f"/subscriptions/{SUBSCRIPTION_ID}/providers/Microsoft.Authorization/roleDefinitions/"


def container_app(result: AzureRun, component: str) -> dict[str, Any]:
    """Inputs of the Container App of `component` ("tracking" or "api")."""
    return result.run.one("azure-native:app:ContainerApp", f"-{component}-service-app").inputs


def container_env(app_inputs: dict[str, Any]) -> list[dict[str, Any]]:
    containers = app_inputs["template"]["containers"]
    assert len(containers) == 1
    env: list[dict[str, Any]] = containers[0]["env"]
    return env


def plain_env(app_inputs: dict[str, Any]) -> dict[str, str]:
    return {var["name"]: var["value"] for var in container_env(app_inputs) if "value" in var}
