"""Secrets Manager entries for a container's secret variables, referenced by ARN from the task definition.

ECS resolves the references when it starts a task (with the service's execution role), so the values never
appear in the service definition, its revisions or the console.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
from pulumi_aws import secretsmanager

from infra.config import StackSettings


@dataclass(frozen=True)
class SecretReference:
    """An environment variable, the ARN of the secret holding its value, and the version that stores it (a
    service must depend on it: a task cannot start on a secret without a value)."""

    variable: str
    arn: pulumi.Output[str]
    version: secretsmanager.SecretVersion


def store_secrets(
    name: str, settings: StackSettings, values: Mapping[str, pulumi.Output[str]], parent: pulumi.Resource
) -> list[SecretReference]:
    """One secret per variable (a task reads exactly the secrets of its own service)."""
    references = []
    for variable, value in sorted(values.items()):
        slug = variable.lower().replace("_", "-")
        secret = secretsmanager.Secret(
            f"{name}-{slug}",
            # A prefix, not a fixed name: Secrets Manager keeps deleted names through the recovery window.
            name_prefix=f"mlops-stack/{settings.stack}/{slug}-",
            description=f"{variable} of {settings.stack}",
            # Sandboxes are destroyed in one step and leave nothing behind; elsewhere a deleted secret can
            # be restored for a week.
            recovery_window_in_days=0 if settings.is_sandbox else 7,
            opts=pulumi.ResourceOptions(parent=parent),
        )
        version = secretsmanager.SecretVersion(
            f"{name}-{slug}-value",
            secret_id=secret.id,
            # Values come from StackSecrets (RandomPassword results): secret outputs, kept secret in state.
            secret_string=value,
            opts=pulumi.ResourceOptions(parent=parent),
        )
        references.append(SecretReference(variable=variable, arn=secret.arn, version=version))
    return references
