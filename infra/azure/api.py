"""The model API as a Container App: reads the pinned model straight from the blob container (Storage
Blob Data Reader on that container only) and pulls its image with AcrPull. It needs nothing else: not
the tracking server, not the database."""

from dataclasses import dataclass

import pulumi

from infra.azure.container_app import (
    AppIdentity,
    Probes,
    RoleGrant,
    ServiceApp,
    ServiceAppArgs,
    app_fqdn,
    identity_environment,
)
from infra.azure.environment import AppsEnvironment
from infra.azure.registry import ContainerRegistry
from infra.azure.revisions import revision_traffic
from infra.azure.roles import BuiltInRole
from infra.azure.storage import ArtifactStore
from infra.azure.tracking import APP_NAME_MAX_LENGTH
from infra.config import ModelPin, StackSettings
from infra.generated_secrets import StackSecrets
from infra.naming import short_name
from infra.rollout import CANARY_TAG, ApiRollout
from infra.workloads import API_LIVENESS_PATH, API_PORT, API_READINESS_PATH, api_environment


@dataclass(frozen=True, kw_only=True)
class ModelApiArgs:
    settings: StackSettings
    model: ModelPin
    secrets: StackSecrets
    resource_group_name: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    environment: AppsEnvironment
    registry: ContainerRegistry
    image: pulumi.Input[str]
    store: ArtifactStore


class ModelApi(pulumi.ComponentResource):
    url: pulumi.Output[str]
    rollout: pulumi.Output[object]  # the `apiRollout` stack output (infra/rollout.py)
    app_id: pulumi.Output[str]
    app_name: str

    def __init__(self, name: str, args: ModelApiArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-stack:azure:ModelApi", name, None, opts)
        rollout = ApiRollout(name, args.settings, args.model, self)
        app_name = short_name(args.settings.stack, "model-api", max_length=APP_NAME_MAX_LENGTH)
        identity = AppIdentity(
            f"{name}-identity",
            resource_group_name=args.resource_group_name,
            subscription_id=args.subscription_id,
            grants=[
                RoleGrant("artifacts", BuiltInRole.STORAGE_BLOB_DATA_READER, args.store.container_id),
                RoleGrant("pull", BuiltInRole.ACR_PULL, args.registry.id),
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        environment = api_environment(
            args.settings,
            args.secrets,
            args.model,
            image=args.image,
            extra=identity_environment(identity.identity),
        )
        service = ServiceApp(
            f"{name}-service",
            ServiceAppArgs(
                resource_group_name=args.resource_group_name,
                app_name=app_name,
                fqdn=app_fqdn(app_name, args.environment.default_domain),
                container_name="model-api",
                environment_id=args.environment.id,
                registry_server=args.registry.login_server,
                image=args.image,
                port=API_PORT,
                size=args.settings.api,
                probes=Probes(
                    startup_path=API_READINESS_PATH,
                    liveness_path=API_LIVENESS_PATH,
                    readiness_path=API_READINESS_PATH,
                ),
                environment=environment,
                traffic=revision_traffic(args.settings.canary, rollout.split),
            ),
            identity,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.url = service.url
        canary_url = pulumi.Output.concat(
            "https://", app_name, "---", CANARY_TAG, ".", args.environment.default_domain
        )
        self.rollout = rollout.output(args.image, service.latest_revision, canary_url)
        self.app_id = service.id  # for the stack's alerts (infra/azure/monitoring.py)
        self.app_name = app_name
        self.register_outputs({"url": self.url, "rollout": self.rollout})
