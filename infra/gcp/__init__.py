"""The platform on Google Cloud: Cloud Run, Cloud SQL for PostgreSQL, GCS, Artifact Registry, Secret
Manager, and Workload Identity Federation for GitHub Actions."""

import pulumi
import pulumi_gcp.organizations as organizations

from infra.config import StackSettings
from infra.gcp.api import ModelApi, ModelApiArgs
from infra.gcp.apis import Api, RequiredApis
from infra.gcp.ci_identity import CiIdentity, CiIdentityArgs
from infra.gcp.database import TrackingDatabase, TrackingDatabaseArgs
from infra.gcp.registry import ContainerRegistry, ContainerRegistryArgs
from infra.gcp.storage import ArtifactBucket, ArtifactBucketArgs
from infra.gcp.tracking import TrackingService, TrackingServiceArgs
from infra.generated_secrets import StackSecrets
from infra.github import CiRole
from infra.images import build_images
from infra.platform import PlatformOutputs


def build_platform(settings: StackSettings) -> PlatformOutputs:
    """Everything one GCP stack owns, named after the stack. The model API appears once a model is pinned."""
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
    ci = CiIdentity(f"{name}-ci", CiIdentityArgs(settings, apis))
    deployer = deployer_member(settings, ci)
    tracking = TrackingService(
        f"{name}-tracking",
        TrackingServiceArgs(
            settings, secrets, bucket, database, images.tracking, project_number, deployer, apis
        ),
    )
    api_url: pulumi.Input[str] = ""
    if settings.model is not None:
        api_url = ModelApi(
            f"{name}-api",
            ModelApiArgs(
                settings, settings.model, secrets, bucket, images.api, project_number, deployer, apis
            ),
        ).url
    return PlatformOutputs(
        tracking_uri=tracking.url,
        artifact_root=bucket.artifact_root,
        registry=registry.path,
        api_url=api_url,
        model_uri=settings.model.source if settings.model is not None else "",
        ci_identity=ci.outputs,
        tracking_admin_password=secrets.tracking_admin_password,
        api_key=secrets.api_key,
        sandbox_ci_identity=ci.sandbox_outputs,
    )


def deployer_member(settings: StackSettings, ci: CiIdentity) -> pulumi.Output[str]:
    """Who deploys this stack's services, and so needs actAs on their runtime accounts.

    A stack's own deploy account; a sandbox has none, so it is whoever runs the sandbox's `pulumi up` (the
    sandboxes' CI account, or a person), as Google reports the caller.
    """
    if CiRole.DEPLOY in ci.accounts:
        return ci.accounts[CiRole.DEPLOY].email.apply(lambda email: f"serviceAccount:{email}")
    caller = organizations.get_client_open_id_user_info_output().email
    return caller.apply(
        lambda email: f"{'serviceAccount' if email.endswith('.gserviceaccount.com') else 'user'}:{email}"
    )
