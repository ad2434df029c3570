"""The platform on Azure: Container Apps (consumption) in a VNet, PostgreSQL Flexible Server with private
access only, a Storage account with Entra-ID-only blob access, ACR without an admin user, and
user-assigned identities with GitHub federated credentials for CI. Nothing holds a long-lived key.

Every resource is a child of one `AzurePlatform` component, which puts the stack's tags
(`infra.naming.labels`) on every child whose type takes tags. azure-native's provider has no default tags,
so a transformation on the root is that one place. It is the SDK-side kind (`transformations`): it runs in
the program, so the mocked tests see it; the engine-side `transforms` do not run under mocks.
"""

from typing import Any, Protocol

import pulumi
import pulumi_azure_native.authorization as authorization
import pulumi_azure_native.resources as resources

from infra.alerts import alert_plan
from infra.azure.api import ModelApi, ModelApiArgs
from infra.azure.ci_identity import CiIdentity, CiIdentityArgs
from infra.azure.database import TrackingDatabase, TrackingDatabaseArgs
from infra.azure.environment import AppsEnvironment, AppsEnvironmentArgs
from infra.azure.monitoring import StackMonitoring, StackMonitoringArgs
from infra.azure.network import Network, NetworkArgs
from infra.azure.registry import ContainerRegistry, ContainerRegistryArgs
from infra.azure.storage import ArtifactStore, ArtifactStoreArgs
from infra.azure.tracking import TrackingServer, TrackingServerArgs
from infra.azure.vault import TrackingPasswordVault, TrackingPasswordVaultArgs
from infra.config import StackSettings
from infra.generated_secrets import StackSecrets
from infra.images import build_images
from infra.naming import labels
from infra.platform import PlatformOutputs

# The resource types of this program that take tags (ARM accepts `tags` on tracked resources only: role
# assignments, subnets, databases, credentials, diagnostic settings and locks have none).
TAGGED_TYPES = frozenset(
    {
        "azure-native:resources:ResourceGroup",
        "azure-native:storage:StorageAccount",
        "azure-native:containerregistry:Registry",
        "azure-native:dbforpostgresql:Server",
        "azure-native:app:ManagedEnvironment",
        "azure-native:app:ContainerApp",
        "azure-native:operationalinsights:Workspace",
        "azure-native:network:VirtualNetwork",
        "azure-native:privatedns:PrivateZone",
        "azure-native:privatedns:VirtualNetworkLink",
        "azure-native:managedidentity:UserAssignedIdentity",
        "azure-native:monitor:MetricAlert",
        "azure-native:monitor:ScheduledQueryRule",
        "azure-native:monitor:ActionGroup",
        "azure-native:portal:Dashboard",
        "azure-native:keyvault:Vault",
    }
)


def stack_tags(settings: StackSettings) -> pulumi.ResourceTransformation:
    """Tag every child that takes tags with the stack's labels (a resource's own tags win on a clash)."""
    tags = labels(settings)

    def tag(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ not in TAGGED_TYPES:
            return None
        own: dict[str, Any] = args.props.get("tags") or {}  # type: ignore[assignment]
        props: dict[str, Any] = {**args.props, "tags": {**tags, **own}}
        return pulumi.ResourceTransformationResult(props=props, opts=args.opts)

    return tag


class AzurePlatform(pulumi.ComponentResource):
    """Root of the stack's Azure resources, in a resource group named after the stack (a sandbox: in the
    dev stack's group for sandboxes), its CI identities in a group of their own. The model API appears once
    a model is pinned."""

    outputs: PlatformOutputs

    def __init__(self, name: str, settings: StackSettings) -> None:
        super().__init__(
            "mlops-stack:azure:Platform",
            name,
            None,
            pulumi.ResourceOptions(transformations=[stack_tags(settings)]),
        )
        child = pulumi.ResourceOptions(parent=self)
        client = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        secrets = StackSecrets(f"{name}-secrets", settings, opts=child)
        group = resource_group(name, settings, self)
        network = Network(
            f"{name}-network", NetworkArgs(resource_group_name=group.name, stack=settings.stack), opts=child
        )
        store = ArtifactStore(
            f"{name}-artifacts",
            ArtifactStoreArgs(resource_group_name=group.name, settings=settings),
            opts=child,
        )
        registry = ContainerRegistry(
            f"{name}-registry",
            ContainerRegistryArgs(resource_group_name=group.name, settings=settings),
            opts=child,
        )
        images = build_images(name, settings, registry.login(), parent=self)
        database = TrackingDatabase(
            f"{name}-database",
            TrackingDatabaseArgs(
                resource_group_name=group.name,
                settings=settings,
                password=secrets.database_password,
                delegated_subnet_id=network.database_subnet_id,
                private_dns_zone_id=network.database_dns_zone_id,
                depends_on=[network.database_dns_link],
            ),
            opts=child,
        )
        environment = AppsEnvironment(
            f"{name}-apps",
            AppsEnvironmentArgs(
                resource_group_name=group.name, settings=settings, subnet_id=network.apps_subnet_id
            ),
            opts=child,
        )
        tracking = TrackingServer(
            f"{name}-tracking",
            TrackingServerArgs(
                settings=settings,
                secrets=secrets,
                resource_group_name=group.name,
                subscription_id=client.subscription_id,
                environment=environment,
                registry=registry,
                image=images.tracking,
                database=database,
                store=store,
            ),
            opts=child,
        )
        api_url: pulumi.Input[str] = ""
        api: ModelApi | None = None
        api_rollout: pulumi.Input[object] | None = None
        if settings.model is not None and images.api is not None:
            api = ModelApi(
                f"{name}-api",
                ModelApiArgs(
                    settings=settings,
                    model=settings.model,
                    secrets=secrets,
                    resource_group_name=group.name,
                    subscription_id=client.subscription_id,
                    environment=environment,
                    registry=registry,
                    image=images.api,
                    store=store,
                ),
                opts=child,
            )
            api_url, api_rollout = api.url, api.rollout
        plan = alert_plan(settings)
        if plan.alerts:
            StackMonitoring(
                f"{name}-monitoring",
                StackMonitoringArgs(
                    settings=settings,
                    plan=plan,
                    resource_group_name=group.name,
                    workspace_id=environment.workspace_id,
                    tracking_app_id=tracking.app_id,
                    api_app_id=api.app_id if api is not None else None,
                    api_app_name=api.app_name if api is not None else None,
                    database_id=database.id,
                ),
                opts=child,
            )
        # The retrain identity's copy of the MLflow admin password (sandboxes make no CI identity).
        tracking_password = (
            None
            if settings.is_sandbox
            else TrackingPasswordVault(
                f"{name}-vault",
                TrackingPasswordVaultArgs(
                    settings=settings,
                    resource_group_name=group.name,
                    tenant_id=client.tenant_id,
                    password=secrets.tracking_admin_password,
                ),
                opts=child,
            )
        )
        ci = CiIdentity(
            f"{name}-ci",
            CiIdentityArgs(
                settings=settings,
                resource_group_id=group.id,
                subscription_id=client.subscription_id,
                tenant_id=client.tenant_id,
                tracking_password=tracking_password,
            ),
            opts=child,
        )
        self.outputs = PlatformOutputs(
            tracking_uri=tracking.url,
            artifact_root=store.artifact_root,
            registry=registry.login_server,
            api_url=api_url,
            api_rollout=api_rollout,
            model_uri=settings.model.source if settings.model is not None else "",
            ci_identity=ci.outputs,
            sandbox_ci_identity=ci.sandbox_outputs,
            tracking_admin_password=secrets.tracking_admin_password,
            api_key=secrets.api_key,
        )
        self.register_outputs({"trackingUri": tracking.url})


class ResourceGroup(Protocol):
    name: pulumi.Output[str]
    id: pulumi.Output[str]


def resource_group(name: str, settings: StackSettings, parent: pulumi.Resource) -> ResourceGroup:
    """The stack's own group; a sandbox deploys into the group the dev stack made for sandboxes, the only
    one its CI identity may change (so destroying the sandbox removes its resources, not the group)."""
    if settings.is_sandbox:
        return resources.get_resource_group_output(
            resource_group_name=settings.azure_resource_group or "",
            opts=pulumi.InvokeOutputOptions(parent=parent),
        )
    # In prod the group is protected too: deleting it would delete everything in it.
    return resources.ResourceGroup(
        f"{name}-group",
        resource_group_name=f"{settings.project}-{settings.stack}",
        opts=pulumi.ResourceOptions(parent=parent, protect=settings.protect),
    )


def build_platform(settings: StackSettings) -> PlatformOutputs:
    """Build the Azure platform for this stack (the contract in infra/platform.py)."""
    return AzurePlatform(settings.stack, settings).outputs
