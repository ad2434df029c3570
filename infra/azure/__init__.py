"""The platform on Azure: Container Apps (consumption) in a VNet, PostgreSQL Flexible Server with private
access only, a Storage account with Entra-ID-only blob access, ACR without an admin user, and
user-assigned identities with GitHub federated credentials for CI. Nothing holds a long-lived key."""

from typing import Protocol

import pulumi
import pulumi_azure_native.authorization as authorization
import pulumi_azure_native.resources as resources

from infra.azure.api import ModelApi, ModelApiArgs
from infra.azure.ci_identity import CiIdentity, CiIdentityArgs
from infra.azure.database import Database, DatabaseArgs
from infra.azure.environment import AppsEnvironment, AppsEnvironmentArgs
from infra.azure.network import Network, NetworkArgs
from infra.azure.registry import ContainerRegistry, ContainerRegistryArgs
from infra.azure.storage import ArtifactStore, ArtifactStoreArgs
from infra.azure.tracking import TrackingServer, TrackingServerArgs
from infra.config import StackSettings
from infra.generated_secrets import StackSecrets
from infra.images import build_images
from infra.naming import labels
from infra.platform import PlatformOutputs


def build_platform(settings: StackSettings) -> PlatformOutputs:
    """Everything one Azure stack owns, in a resource group named after the stack (a sandbox: in the dev
    stack's group for sandboxes), its CI identities in a group of their own. The model API appears once a
    model is pinned."""
    name = settings.stack
    tags = labels(settings)
    client = authorization.get_client_config_output()
    secrets = StackSecrets(f"{name}-secrets", settings)
    group = resource_group(name, settings, tags)
    network = Network(f"{name}-network", NetworkArgs(group.name, settings.stack, tags))
    artifacts = ArtifactStore(f"{name}-artifacts", ArtifactStoreArgs(group.name, settings, tags))
    registry = ContainerRegistry(f"{name}-registry", ContainerRegistryArgs(group.name, settings, tags))
    images = build_images(name, settings, registry.push_login(client.tenant_id), registry)
    database = Database(
        f"{name}-database",
        DatabaseArgs(
            resource_group_name=group.name,
            settings=settings,
            tags=tags,
            password=secrets.database_password,
            delegated_subnet_id=network.database_subnet_id,
            private_dns_zone_id=network.database_dns_zone_id,
            depends_on=[network.database_dns_link],
        ),
    )
    environment = AppsEnvironment(
        f"{name}-apps", AppsEnvironmentArgs(group.name, settings, tags, network.apps_subnet_id)
    )
    tracking = TrackingServer(
        f"{name}-tracking",
        TrackingServerArgs(
            settings=settings,
            secrets=secrets,
            resource_group_name=group.name,
            subscription_id=client.subscription_id,
            tags=tags,
            environment=environment,
            registry=registry,
            image=images.tracking,
            database=database,
            artifacts=artifacts,
        ),
    )
    api_url: pulumi.Input[str] = ""
    if settings.model is not None:
        api_url = ModelApi(
            f"{name}-api",
            ModelApiArgs(
                settings=settings,
                model=settings.model,
                secrets=secrets,
                resource_group_name=group.name,
                subscription_id=client.subscription_id,
                tags=tags,
                environment=environment,
                registry=registry,
                image=images.api,
                artifacts=artifacts,
            ),
        ).url
    ci = CiIdentity(
        f"{name}-ci",
        CiIdentityArgs(
            settings=settings,
            resource_group_id=group.id,
            subscription_id=client.subscription_id,
            tenant_id=client.tenant_id,
            tags=tags,
        ),
    )
    return PlatformOutputs(
        tracking_uri=tracking.url,
        artifact_root=artifacts.artifact_root,
        registry=registry.login_server,
        api_url=api_url,
        model_uri=settings.model.source if settings.model is not None else "",
        ci_identity=ci.outputs,
        tracking_admin_password=secrets.tracking_admin_password,
        api_key=secrets.api_key,
        sandbox_ci_identity=ci.sandbox_outputs,
    )


class ResourceGroup(Protocol):
    name: pulumi.Output[str]
    id: pulumi.Output[str]


def resource_group(name: str, settings: StackSettings, tags: dict[str, str]) -> ResourceGroup:
    """The stack's own group; a sandbox deploys into the group the dev stack made for sandboxes, the only
    one its CI identity may change (so destroying the sandbox removes its resources, not the group)."""
    if settings.is_sandbox:
        return resources.get_resource_group_output(resource_group_name=settings.azure_resource_group or "")
    # In prod the group is protected too: deleting it would delete everything in it.
    return resources.ResourceGroup(
        f"{name}-group",
        resource_group_name=f"{settings.project}-{settings.stack}",
        tags=tags,
        opts=pulumi.ResourceOptions(protect=settings.protect),
    )
