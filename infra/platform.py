"""The cloud-neutral contract: what every cloud builds from the same settings, and exports by the same names.

Each of `infra.gcp`, `infra.aws` and `infra.azure` has `build_platform(settings) -> PlatformOutputs`.
Workflows, scripts and docs read only these outputs, so they never branch on the cloud.
"""

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import pulumi

from infra.config import Cloud, CloudRules, ConfigReader, StackSettings, load_settings, read_pulumi_config
from infra.naming import expiry_label
from infra.rollout import ROLLOUT_OUTPUT


@dataclass(frozen=True)
class PlatformOutputs:
    """What a cloud hands back. Secrets must already be `Output.secret`s."""

    tracking_uri: pulumi.Input[str]  # https URL of the MLflow tracking server
    artifact_root: pulumi.Input[str]  # where MLflow stores artifacts: gs://…, s3://…, wasbs://…
    registry: pulumi.Input[str]  # the container registry host/path images are pushed to
    api_url: pulumi.Input[str]  # https URL of the model API; "" until a model version is pinned
    model_uri: pulumi.Input[str]  # the artifact-store URI the API loads; "" until pinned
    # What a workflow needs to log in ({} on a sandbox), and the retrain identity's one secret (README
    # "Retraining on a schedule"): `trackingPasswordSecret`.
    ci_identity: pulumi.Input[Mapping[str, pulumi.Input[str]]]
    tracking_admin_password: pulumi.Output[str]
    api_key: pulumi.Output[str] | None  # None when the API is protected by the cloud's IAM instead
    # The sandboxes' deploy identity (a dev stack with `sandboxes: true`), what sandbox.yml logs in with.
    sandbox_ci_identity: pulumi.Input[Mapping[str, pulumi.Input[str]]] | None = None
    # The model API's rollout (infra/rollout.py): what it deployed, what served before, the state.
    # None: no model API.
    api_rollout: pulumi.Input[object] | None = None


class PlatformBuilder(Protocol):
    def __call__(self, settings: StackSettings) -> PlatformOutputs: ...


def cloud_rules(cloud: Cloud) -> CloudRules:
    """What `cloud` accepts of the stack config: `CONFIG_RULES` in its package's limits table (only the chosen
    cloud's package is imported)."""
    rules: CloudRules = importlib.import_module(f"infra.{cloud.value}.limits").CONFIG_RULES
    return rules


def load_stack_settings(read: ConfigReader = read_pulumi_config, stack: str | None = None) -> StackSettings:
    """The stack's validated settings, checked against its cloud's rules (`infra.config.load_settings`)."""
    return load_settings(cloud_rules, read, stack)


def builder_for(settings: StackSettings) -> PlatformBuilder:
    """Import only the chosen cloud's package: the providers' SDKs are large, and a stack uses one."""
    module = importlib.import_module(f"infra.{settings.cloud.value}.platform")
    builder: PlatformBuilder = module.build_platform
    return builder


def export_outputs(settings: StackSettings, outputs: PlatformOutputs) -> None:
    """Export the contract's outputs under the names every workflow and script reads."""
    pulumi.export("cloud", settings.cloud.value)
    pulumi.export("environment", settings.environment.value)
    pulumi.export("trackingUri", outputs.tracking_uri)
    pulumi.export("artifactRoot", outputs.artifact_root)
    pulumi.export("registry", outputs.registry)
    pulumi.export("apiUrl", outputs.api_url)
    pulumi.export("modelUri", outputs.model_uri)
    pulumi.export("ciIdentity", outputs.ci_identity)
    if outputs.api_rollout is not None:
        pulumi.export(ROLLOUT_OUTPUT, outputs.api_rollout)
    if outputs.sandbox_ci_identity is not None:
        pulumi.export("sandboxCiIdentity", outputs.sandbox_ci_identity)
    pulumi.export("trackingAdminUsername", TRACKING_ADMIN_USERNAME)
    pulumi.export("trackingAdminPassword", pulumi.Output.secret(outputs.tracking_admin_password))
    if outputs.api_key is not None:
        pulumi.export("apiKey", pulumi.Output.secret(outputs.api_key))
    if settings.sandbox_expires_at is not None:
        pulumi.export("sandboxExpiresAt", settings.sandbox_expires_at.isoformat())
        pulumi.export("sandboxExpiresLabel", expiry_label(settings))


TRACKING_ADMIN_USERNAME = "admin"
