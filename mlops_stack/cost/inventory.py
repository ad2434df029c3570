"""A stack's inventory without a cloud: its config read the way Pulumi reads it, and the whole program run
under Pulumi mocks in preview mode (outputs the cloud would compute stay unknown), recording every resource
it would create with the inputs that size it."""

import contextlib
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pulumi.runtime import MockCallArgs, MockResourceArgs

from mlops_stack.program_under_mocks import ProgramRun, run_program

PROJECT_NAMESPACE = "mlops-stack"
# What the few data sources the program reads would answer. None of them changes what is created or its
# size (AWS: the program takes two zones of the three eu-west-1 has), so placeholders serve.
PLACEHOLDER_INVOKES: Mapping[str, Mapping[str, Any]] = {
    "aws:index/getCallerIdentity:getCallerIdentity": {
        "accountId": "000000000000",
        "arn": "arn:aws:iam::000000000000:user/estimate",
        "userId": "estimate",
        "id": "estimate",
    },
    "aws:index/getPartition:getPartition": {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"},
    "aws:index/getAvailabilityZones:getAvailabilityZones": {
        "names": ["zone-a", "zone-b", "zone-c"],
        "zoneIds": ["az1", "az2", "az3"],
        "id": "region",
    },
    "aws:ecr/getAuthorizationToken:getAuthorizationToken": {
        "proxyEndpoint": "https://registry.invalid",
        "userName": "AWS",
        "password": "estimate",
        "authorizationToken": "estimate",
        "expiresAt": "2030-01-01T00:00:00Z",
        "id": "estimate",
    },
    # The load balancing Express Mode made for a service (infra/aws/monitoring.py reads both target groups).
    "aws:ecs/getService:getService": {
        "loadBalancers": [
            {
                "targetGroupArn": "arn:aws:elasticloadbalancing:region:000000000000:targetgroup/estimate-a/0",
                "advancedConfigurations": [
                    {
                        "alternateTargetGroupArn": (
                            "arn:aws:elasticloadbalancing:region:000000000000:targetgroup/estimate-b/0"
                        )
                    }
                ],
            }
        ]
    },
    "aws:lb/getTargetGroup:getTargetGroup": {
        "loadBalancerArns": ["arn:aws:elasticloadbalancing:region:000000000000:loadbalancer/app/estimate/0"]
    },
    "azure-native:authorization:getClientConfig": {
        "subscriptionId": "00000000-0000-0000-0000-000000000000",
        "tenantId": "00000000-0000-0000-0000-000000000000",
        "clientId": "estimate",
        "objectId": "estimate",
    },
    "azure-native:resources:getResourceGroup": {
        "name": "estimate",
        "id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/estimate",
        "location": "estimate",
    },
    "azure-native:authorization:getClientToken": {"token": "estimate"},
    "gcp:organizations/getProject:getProject": {"projectId": "estimate", "number": "0"},
    "gcp:organizations/getClientOpenIdUserInfo:getClientOpenIdUserInfo": {"email": "estimate@invalid"},
    "gcp:organizations/getClientConfig:getClientConfig": {"accessToken": "estimate", "project": "estimate"},
}
# A stand-in for a stack with no model pinned yet: the API (what predictions cost) exists once one is.
PLACEHOLDER_MODEL_VERSION = "1"
PLACEHOLDER_MODEL_PATH = "mlflow/1/models/m-estimate/artifacts"
# The repository config refuses the examples' placeholder for; who CI trusts costs nothing.
PLACEHOLDER_REPOSITORY = "estimate/mlops-stack"
SANDBOX_EXPIRY = "2030-01-01T00:00:00Z"
SANDBOX_RESOURCE_GROUP = "estimate-sandboxes"


class StackNotFoundError(Exception):
    """The stack has no file in stacks/ and is not a sandbox of a cloud that has a dev stack file."""


@dataclass
class StackInventory:
    stack: str
    cloud: str
    environment: str
    config: dict[str, str]
    run: ProgramRun
    assumptions: list[str]


def read_stack_config(root: Path, stack: str) -> tuple[dict[str, str], list[str]]:
    """`stacks/Pulumi.<stack>.yaml` with Pulumi.yaml's defaults under it, every value a string as Pulumi
    hands it to a program. A sandbox (`<cloud>-sandbox-<id>`, made by scripts/sandbox.py from SANDBOX_CONFIG,
    so without a file here) is read as its cloud's dev stack file turned into a sandbox."""
    from infra.config import SANDBOX_STACK

    assumptions: list[str] = []
    path = root / "stacks" / f"Pulumi.{stack}.yaml"
    sandbox = SANDBOX_STACK.fullmatch(stack)
    if not path.exists() and sandbox is not None:
        path = root / "stacks" / f"Pulumi.{sandbox['cloud']}-dev.yaml"
        assumptions.append(
            f"no stack file for the sandbox: read {path.name} as a sandbox (what sandboxes copy)"
        )
    if not path.exists():
        known = sorted(
            p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (root / "stacks").glob("*.yaml")
        )
        raise StackNotFoundError(
            f"no stack file {path.relative_to(root)}: name one of {', '.join(known)}, or a sandbox "
            "<cloud>-sandbox-<id> of a cloud with a dev stack file"
        )
    project = yaml.safe_load((root / "Pulumi.yaml").read_text())
    config = {
        f"{PROJECT_NAMESPACE}:{key}": _as_pulumi_string(spec["default"])
        for key, spec in (project.get("config") or {}).items()
        if isinstance(spec, dict) and "default" in spec
    }
    config |= {
        key: _as_pulumi_string(value) for key, value in (yaml.safe_load(path.read_text())["config"]).items()
    }
    if sandbox is not None and config.get(f"{PROJECT_NAMESPACE}:environment") != "sandbox":
        config[f"{PROJECT_NAMESPACE}:environment"] = "sandbox"
        config.pop(f"{PROJECT_NAMESPACE}:sandboxes", None)
        config.setdefault(f"{PROJECT_NAMESPACE}:sandboxExpiresAt", SANDBOX_EXPIRY)
        if sandbox["cloud"] == "azure":
            config.setdefault(f"{PROJECT_NAMESPACE}:azureResourceGroup", SANDBOX_RESOURCE_GROUP)
        for key in (
            "stateBackend",
            "stateSecretsProvider",
            "sandboxStateBackend",
            "sandboxStateSecretsProvider",
        ):
            config.pop(f"{PROJECT_NAMESPACE}:{key}", None)
    return config, assumptions


def _as_pulumi_string(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def take_inventory(root: Path, stack: str) -> StackInventory:
    """Run `root`'s program for `stack` under mocks. Raises StackNotFoundError, or infra.config.ConfigError
    whose message lists every config problem and how to fix it."""
    config, assumptions = read_stack_config(root, stack)
    from infra.config import PLACEHOLDER_REPOSITORIES
    from infra.platform import load_stack_settings

    repository_key = f"{PROJECT_NAMESPACE}:githubRepository"
    if config.get(repository_key) in PLACEHOLDER_REPOSITORIES:
        config[repository_key] = PLACEHOLDER_REPOSITORY
        assumptions.append("the example's placeholder githubRepository replaced (it changes no cost)")
    settings = load_stack_settings(read=config.get, stack=stack)
    if settings.model is None:
        config[f"{PROJECT_NAMESPACE}:modelVersion"] = PLACEHOLDER_MODEL_VERSION
        config[f"{PROJECT_NAMESPACE}:modelSource"] = _placeholder_model_source(settings)
        assumptions.append("no model pinned: estimated as if one were, so the model API exists")
    run = _quietly(
        lambda: run_program(
            config, stack, outputs_for=_computed_outputs, calls=_placeholder_invoke, preview=True
        )
    )
    return StackInventory(stack, settings.cloud.value, settings.environment.value, config, run, assumptions)


def _placeholder_model_source(settings: Any) -> str:
    """A pin the program accepts: on GCP it must be under the stack's own bucket."""
    cloud = settings.cloud.value
    if cloud == "gcp":
        from infra.gcp.storage import artifact_bucket_name

        return f"gs://{artifact_bucket_name(settings)}/{PLACEHOLDER_MODEL_PATH}"
    if cloud == "aws":
        return f"s3://estimate/{PLACEHOLDER_MODEL_PATH}"
    return f"wasbs://mlflow@estimate.blob.core.windows.net/{PLACEHOLDER_MODEL_PATH}"


def _computed_outputs(args: MockResourceArgs) -> Mapping[str, Any]:
    """ARM answers a Container App's identity list as a map of identity id -> details; the program reads it
    as such, so the echoed list would not do."""
    if args.typ == "azure-native:app:ContainerApp":
        identity = args.inputs["identity"]
        return {
            "identity": {
                **identity,
                "userAssignedIdentities": {key: {} for key in identity["userAssignedIdentities"]},
            }
        }
    return {}


def _placeholder_invoke(args: MockCallArgs) -> Mapping[str, Any]:
    return PLACEHOLDER_INVOKES.get(args.token, {})


def _quietly(run: Callable[[], ProgramRun]) -> ProgramRun:
    """The program's warnings (state access not set, ids not pinned) are about deploying, not cost: kept off
    the estimate's output, which a workflow posts."""
    with contextlib.redirect_stderr(io.StringIO()):
        return run()
