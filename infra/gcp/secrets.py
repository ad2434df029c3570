"""Secret Manager secrets for one container's secret environment variables, readable by that container's
service account only (a binding on each secret, never project-wide secretAccessor)."""

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_gcp.cloudrunv2 as cloudrunv2
import pulumi_gcp.secretmanager as secretmanager

from infra.config import StackSettings
from infra.naming import short_name

SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"  # noqa: S105 (a role name)


@dataclass(frozen=True, kw_only=True)
class ContainerSecretsArgs:
    settings: StackSettings
    values: Mapping[str, pulumi.Output[str]]  # env var name -> secret value (from StackSecrets)
    reader: pulumi.Input[str]  # IAM member of the service account that runs the container
    depends_on: list[pulumi.Resource]  # the Secret Manager API


class ContainerSecrets(pulumi.ComponentResource):
    """One secret per variable, its current value as a version, and an accessor binding for the reader."""

    env: list[cloudrunv2.ServiceTemplateContainerEnvArgs]  # references to the versions, no values
    secrets: dict[str, secretmanager.Secret]  # by variable: whom else to let read one (the retrain identity)
    access: list[pulumi.Resource]  # the bindings: a service must wait for them, Cloud Run checks on deploy

    def __init__(
        self, name: str, args: ContainerSecretsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops-stack:gcp:ContainerSecrets", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)
        self.env = []
        self.access = []
        self.secrets = {}
        for variable, value in args.values.items():
            purpose = variable.lower().replace("_", "-")
            secret = secretmanager.Secret(
                f"{name}-{purpose}",
                secret_id=short_name(settings.stack, purpose, max_length=255),
                project=settings.gcp_project,
                replication=secretmanager.SecretReplicationArgs(
                    auto=secretmanager.SecretReplicationAutoArgs()
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
            )
            self.secrets[variable] = secret
            data: pulumi.Output[str] = pulumi.Output.secret(value)
            version = secretmanager.SecretVersion(
                f"{name}-{purpose}-version",
                secret=secret.id,
                secret_data=data,
                opts=child,
            )
            self.access.append(
                secretmanager.SecretIamMember(
                    f"{name}-{purpose}-accessor",
                    secret_id=secret.id,
                    project=settings.gcp_project,
                    role=SECRET_ACCESSOR,
                    member=args.reader,
                    opts=child,
                )
            )
            # Pinned to this version, not "latest": a new value rolls out as a new revision, visibly.
            self.env.append(
                cloudrunv2.ServiceTemplateContainerEnvArgs(
                    name=variable,
                    value_source=cloudrunv2.ServiceTemplateContainerEnvValueSourceArgs(
                        secret_key_ref=cloudrunv2.ServiceTemplateContainerEnvValueSourceSecretKeyRefArgs(
                            secret=secret.secret_id, version=version.version
                        )
                    ),
                )
            )
        self.register_outputs({})
