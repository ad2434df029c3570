"""The platform on Google Cloud: Cloud Run, Cloud SQL for PostgreSQL, GCS, Artifact Registry, Secret
Manager, and Workload Identity Federation for GitHub Actions."""

from urllib.parse import urlsplit

import pulumi
import pulumi_gcp.organizations as organizations

from infra.config import PROJECT, ConfigError, StackSettings
from infra.gcp.api import ModelApi, ModelApiArgs
from infra.gcp.apis import Api, RequiredApis
from infra.gcp.ci_identity import ci_access
from infra.gcp.database import TrackingDatabase, TrackingDatabaseArgs
from infra.gcp.registry import ContainerRegistry, ContainerRegistryArgs
from infra.gcp.storage import ARTIFACT_PREFIX, ArtifactBucket, ArtifactBucketArgs, artifact_bucket_name
from infra.gcp.tracking import TrackingService, TrackingServiceArgs
from infra.generated_secrets import StackSecrets
from infra.images import build_images
from infra.platform import PlatformOutputs


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
    """Everything one GCP stack owns, named after the stack. The model API appears once a model is pinned."""
    check_model_source(settings)
    name = settings.stack
    project = settings.gcp_project or ""
    apis = RequiredApis(f"{name}-apis", project)
    secrets = StackSecrets(f"{name}-secrets", settings)
    # The project number is part of the services' deterministic URLs (see cloud_run.service_host).
    project_number = organizations.get_project_output(project_id=project).number
    bucket = ArtifactBucket(f"{name}-artifacts", ArtifactBucketArgs(settings, apis.needed_by([Api.STORAGE])))
    registry = ContainerRegistry(
        f"{name}-registry", ContainerRegistryArgs(settings, apis.needed_by([Api.ARTIFACT_REGISTRY]))
    )
    images = build_images(name, settings, registry.login(), registry)
    database = TrackingDatabase(
        f"{name}-database",
        TrackingDatabaseArgs(settings, secrets.database_password, apis.needed_by([Api.SQL_ADMIN])),
    )
    ci = ci_access(f"{name}-ci", settings, apis)
    tracking = TrackingService(
        f"{name}-tracking",
        TrackingServiceArgs(
            settings, secrets, bucket, database, images.tracking, project_number, ci.deploy_member, apis
        ),
    )
    api_url: pulumi.Input[str] = ""
    if settings.model is not None:
        api_url = ModelApi(
            f"{name}-api",
            ModelApiArgs(
                settings, settings.model, secrets, bucket, images.api, project_number, ci.deploy_member, apis
            ),
        ).url
    return PlatformOutputs(
        tracking_uri=tracking.url,
        artifact_root=bucket.artifact_root,
        registry=registry.path,
        api_url=api_url,
        model_uri=settings.model.source if settings.model is not None else "",
        ci_identity=ci.outputs,
        sandbox_ci_identity=ci.sandbox_outputs,
        tracking_admin_password=secrets.tracking_admin_password,
        api_key=secrets.api_key,
    )
