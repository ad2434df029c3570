"""The MLflow tracking server as a Container App: writes artifacts to the blob container (Storage Blob Data
Contributor on that container only), pulls its image with AcrPull, talks to PostgreSQL inside the VNet."""

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
from infra.azure.database import TrackingDatabase
from infra.azure.environment import AppsEnvironment
from infra.azure.registry import ContainerRegistry
from infra.azure.roles import BuiltInRole
from infra.azure.storage import ArtifactStore
from infra.config import StackSettings
from infra.generated_secrets import StackSecrets
from infra.naming import short_name
from infra.workloads import TRACKING_HEALTH_PATH, TRACKING_PORT, tracking_environment

APP_NAME_MAX_LENGTH = 32  # Container Apps names: 2-32 lowercase letters, digits and '-'


@dataclass(frozen=True, kw_only=True)
class TrackingServerArgs:
    settings: StackSettings
    secrets: StackSecrets
    resource_group_name: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    environment: AppsEnvironment
    registry: ContainerRegistry
    image: pulumi.Input[str]
    database: TrackingDatabase
    store: ArtifactStore


class TrackingServer(pulumi.ComponentResource):
    url: pulumi.Output[str]
    app_id: pulumi.Output[str]
    app_name: str

    def __init__(
        self, name: str, args: TrackingServerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops-stack:azure:TrackingServer", name, None, opts)
        settings = args.settings
        app_name = short_name(settings.stack, "mlflow", max_length=APP_NAME_MAX_LENGTH)
        fqdn = app_fqdn(app_name, args.environment.default_domain)
        identity = AppIdentity(
            f"{name}-identity",
            resource_group_name=args.resource_group_name,
            subscription_id=args.subscription_id,
            grants=[
                RoleGrant("artifacts", BuiltInRole.STORAGE_BLOB_DATA_CONTRIBUTOR, args.store.container_id),
                # MLflow signs multipart-upload URLs with a user delegation key (shared keys are off), so
                # clients upload large models straight to the container; the key is an account-level
                # action, and this role grants only that (data access stays on the container above).
                RoleGrant("sign-uploads", BuiltInRole.STORAGE_BLOB_DELEGATOR, args.store.account_id),
                RoleGrant("pull", BuiltInRole.ACR_PULL, args.registry.id),
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        environment = tracking_environment(
            settings,
            args.secrets,
            database_host=args.database.host,
            database_name=args.database.name,
            database_user=args.database.user,
            artifacts_destination=args.store.artifact_root,
            allowed_hosts=fqdn,
            extra=identity_environment(identity.identity),
        )
        service = ServiceApp(
            f"{name}-service",
            ServiceAppArgs(
                resource_group_name=args.resource_group_name,
                app_name=app_name,
                fqdn=fqdn,
                container_name="mlflow",
                environment_id=args.environment.id,
                registry_server=args.registry.login_server,
                image=args.image,
                port=TRACKING_PORT,
                size=settings.tracking,
                # MLflow's /health is exempt from its auth and host check: right for every probe.
                probes=Probes(startup_path=TRACKING_HEALTH_PATH, liveness_path=TRACKING_HEALTH_PATH),
                environment=environment,
            ),
            identity,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.url = service.url
        self.app_id = service.id  # for the stack's alerts (infra/azure/monitoring.py)
        self.app_name = app_name
        self.register_outputs({"url": self.url})
