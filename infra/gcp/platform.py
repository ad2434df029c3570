"""The platform on Google Cloud: Cloud Run, Cloud SQL for PostgreSQL, GCS, Artifact Registry, Secret
Manager, and Workload Identity Federation for GitHub Actions.

Every resource is a child of one `GcpPlatform` component whose explicit provider carries the stack's project,
region and labels (`infra.naming.labels`, as `default_labels`), so nothing is left unlabelled and the
sandbox sweeper can find everything by its `expires-at` label.
"""

from urllib.parse import urlsplit

import pulumi
import pulumi_gcp as gcp
import pulumi_gcp.organizations as organizations

from infra.alerts import alert_plan
from infra.config import PROJECT, ConfigError, StackSettings
from infra.gcp.api import ModelApi, ModelApiArgs
from infra.gcp.apis import Api, RequiredApis
from infra.gcp.ci_identity import ci_access
from infra.gcp.database import TrackingDatabase, TrackingDatabaseArgs
from infra.gcp.monitoring import StackMonitoring, StackMonitoringArgs
from infra.gcp.registry import ContainerRegistry, ContainerRegistryArgs
from infra.gcp.storage import ArtifactStore, ArtifactStoreArgs, artifact_bucket_name
from infra.gcp.tracking import TrackingServer, TrackingServerArgs
from infra.generated_secrets import StackSecrets
from infra.images import build_images
from infra.naming import labels
from infra.platform import PlatformOutputs
from infra.workloads import ARTIFACT_PREFIX


class GcpPlatform(pulumi.ComponentResource):
    """Root of the stack's GCP resources. The model API appears once a model is pinned."""

    outputs: PlatformOutputs

    def __init__(self, name: str, settings: StackSettings) -> None:
        check_model_source(settings)
        project = settings.gcp_project or ""
        provider = gcp.Provider(
            "gcp", project=project, region=settings.region, default_labels=labels(settings)
        )
        super().__init__("mlops-stack:gcp:Platform", name, None, pulumi.ResourceOptions(providers=[provider]))
        child = pulumi.ResourceOptions(parent=self)
        apis = RequiredApis(f"{name}-apis", project, opts=child)
        secrets = StackSecrets(f"{name}-secrets", settings, opts=child)
        # The project number is part of the services' deterministic URLs (see cloud_run.service_host).
        project_number = organizations.get_project_output(
            project_id=project, opts=pulumi.InvokeOutputOptions(parent=self)
        ).number
        store = ArtifactStore(
            f"{name}-artifacts",
            ArtifactStoreArgs(settings=settings, depends_on=apis.needed_by([Api.STORAGE])),
            opts=child,
        )
        registry = ContainerRegistry(
            f"{name}-registry",
            ContainerRegistryArgs(settings=settings, depends_on=apis.needed_by([Api.ARTIFACT_REGISTRY])),
            opts=child,
        )
        images = build_images(name, settings, registry.login(), parent=self)
        database = TrackingDatabase(
            f"{name}-database",
            TrackingDatabaseArgs(
                settings=settings,
                password=secrets.database_password,
                depends_on=apis.needed_by([Api.SQL_ADMIN]),
            ),
            opts=child,
        )
        ci = ci_access(f"{name}-ci", settings, apis, parent=self)
        tracking = TrackingServer(
            f"{name}-tracking",
            TrackingServerArgs(
                settings=settings,
                secrets=secrets,
                store=store,
                database=database,
                image=images.tracking,
                project_number=project_number,
                deployer=ci.deploy_member,
                apis=apis,
            ),
            opts=child,
        )
        ci = ci.with_retrain_reading(tracking.admin_password_secret)
        api_url: pulumi.Input[str] = ""
        api_rollout: pulumi.Input[object] | None = None
        if settings.model is not None and images.api is not None:
            api = ModelApi(
                f"{name}-api",
                ModelApiArgs(
                    settings=settings,
                    model=settings.model,
                    secrets=secrets,
                    store=store,
                    image=images.api,
                    project_number=project_number,
                    deployer=ci.deploy_member,
                    apis=apis,
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
                    database_instance=database.instance.name,
                    depends_on=apis.needed_by([Api.MONITORING, Api.LOGGING]),
                ),
                opts=child,
            )
        self.outputs = PlatformOutputs(
            tracking_uri=tracking.url,
            artifact_root=store.artifact_root,
            registry=registry.path,
            api_url=api_url,
            api_rollout=api_rollout,
            model_uri=settings.model.source if settings.model is not None else "",
            ci_identity=ci.outputs,
            sandbox_ci_identity=ci.sandbox_outputs,
            tracking_admin_password=secrets.tracking_admin_password,
            api_key=secrets.api_key,
        )
        self.register_outputs({"trackingUri": tracking.url})


def check_model_source(settings: StackSettings) -> None:
    """The API reads its model from this stack's bucket only (its grant is on that bucket's model prefix), so
    a pin elsewhere is refused before any resource is registered, not found out at the API's first start."""
    if settings.model is None:
        return
    source = urlsplit(settings.model.source)
    bucket = artifact_bucket_name(settings)
    if source.netloc != bucket or not source.path.strip("/").startswith(f"{ARTIFACT_PREFIX}/"):
        problem = (
            f"{PROJECT}:modelSource: {settings.model.source!r} is not under this stack's artifact root "
            f"gs://{bucket}/{ARTIFACT_PREFIX}; pin a version registered on this stack's tracking server: "
            'scripts/promote.py --print-pin --artifacts-destination "$(pulumi stack output artifactRoot)"'
        )
        # RunError: Pulumi prints the message alone, as infra/__main__.py does for config problems.
        raise pulumi.RunError(str(ConfigError(settings.stack, [problem])))


def build_platform(settings: StackSettings) -> PlatformOutputs:
    """Build the GCP platform for this stack (the contract in infra/platform.py)."""
    return GcpPlatform(settings.stack, settings).outputs
