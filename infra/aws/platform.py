"""The platform on AWS: S3 + KMS for artifacts, ECR, Aurora/RDS PostgreSQL, ECS Express Mode services for
MLflow and the model API, Secrets Manager, and GitHub OIDC roles for CI.

Every resource is a child of one `AwsPlatform` component whose explicit provider carries the stack's tags
(`infra.naming.labels`) as `default_tags`, so nothing is left untagged and the sandbox sweeper can find
everything by its `expires-at` tag.
"""

import pulumi
import pulumi_aws as aws

from infra.alerts import alert_plan
from infra.aws.account import lookup_account
from infra.aws.api import ModelApi, ModelApiArgs
from infra.aws.ci_identity import CiIdentity, CiIdentityArgs
from infra.aws.cluster import ServiceCluster, ServiceClusterArgs
from infra.aws.database import TrackingDatabase, TrackingDatabaseArgs
from infra.aws.fence import fence_workloads
from infra.aws.monitoring import StackMonitoring, StackMonitoringArgs
from infra.aws.network import Network, NetworkArgs
from infra.aws.registry import ContainerRegistry, ContainerRegistryArgs
from infra.aws.storage import ArtifactStore, ArtifactStoreArgs
from infra.aws.tracking import TrackingServer, TrackingServerArgs
from infra.config import StackSettings
from infra.generated_secrets import StackSecrets
from infra.images import build_images
from infra.naming import labels
from infra.platform import PlatformOutputs


class AwsPlatform(pulumi.ComponentResource):
    """Root of the stack's AWS resources. The model API appears once a model is pinned."""

    outputs: PlatformOutputs

    def __init__(self, name: str, settings: StackSettings) -> None:
        provider = aws.Provider(
            "aws",
            region=settings.region,
            default_tags=aws.ProviderDefaultTagsArgs(tags=labels(settings)),
            # aws:allowedAccountIds in the stack file: refuse to touch any other account (an explicit provider
            # does not read the aws: config namespace itself).
            allowed_account_ids=list(settings.aws_allowed_account_ids) or None,
        )
        super().__init__("mlops-stack:aws:Platform", name, None, pulumi.ResourceOptions(providers=[provider]))
        child = pulumi.ResourceOptions(parent=self)
        account = lookup_account(settings.region, self)
        secrets = StackSecrets(f"{name}-secrets", settings, opts=child)
        network = Network(f"{name}-network", NetworkArgs(settings=settings), opts=child)
        store = ArtifactStore(f"{name}-artifacts", ArtifactStoreArgs(settings=settings), opts=child)
        # Every role from here on carries the stack's permissions boundaries (infra/aws/fence.py).
        account, fence = fence_workloads(name, settings, account, store.bucket_arn, store.key_arn, self)
        registry = ContainerRegistry(f"{name}-registry", ContainerRegistryArgs(settings=settings), opts=child)
        images = build_images(name, settings, registry.login(), parent=self)
        database = TrackingDatabase(
            f"{name}-database",
            TrackingDatabaseArgs(
                settings=settings,
                subnet_ids=network.database_subnet_ids,
                security_group_id=network.database_security_group_id,
                password=secrets.database_password,
            ),
            opts=child,
        )
        cluster = ServiceCluster(
            f"{name}-ecs", ServiceClusterArgs(settings=settings, account=account), opts=child
        )
        # What each service must outlive on destroy (or it hangs draining): see infra/aws/express.py.
        service_dependencies = [cluster.infrastructure_policy, *network.service_dependencies]
        tracking = TrackingServer(
            f"{name}-tracking",
            TrackingServerArgs(
                settings=settings,
                account=account,
                secrets=secrets,
                image=images.tracking,
                store=store,
                database_host=database.host,
                serverless_database=database.is_serverless,
                cluster_name=cluster.cluster_name,
                infrastructure_role_arn=cluster.infrastructure_role_arn,
                repository_arns=registry.repository_arns,
                subnet_ids=network.public_subnet_ids,
                security_group_id=network.tracking_security_group_id,
                depends_on=service_dependencies,
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
                    account=account,
                    secrets=secrets,
                    model=settings.model,
                    image=images.api,
                    store=store,
                    cluster_name=cluster.cluster_name,
                    infrastructure_role_arn=cluster.infrastructure_role_arn,
                    repository_arns=registry.repository_arns,
                    subnet_ids=network.public_subnet_ids,
                    security_group_id=network.api_security_group_id,
                    depends_on=service_dependencies,
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
                    cluster_name=cluster.cluster_name,
                    tracking=tracking.service,
                    api=api.service if api is not None else None,
                    database=database,
                ),
                opts=child,
            )
        # Sandbox stacks make no CI identity: the dev stack's sandbox role deploys them.
        ci = (
            None
            if settings.is_sandbox
            else CiIdentity(
                f"{name}-ci",
                CiIdentityArgs(
                    settings=settings,
                    account=account,
                    scope=fence,
                    tracking_password_secret_arn=tracking.admin_password_secret_arn,
                ),
                opts=child,
            )
        )
        self.outputs = PlatformOutputs(
            tracking_uri=tracking.url,
            artifact_root=store.artifact_root,
            registry=registry.repository_prefix,
            api_url=api_url,
            api_rollout=api_rollout,
            model_uri=settings.model.source if settings.model else "",
            ci_identity=ci.identity() if ci else {},
            sandbox_ci_identity=ci.sandbox_identity() if ci else None,
            tracking_admin_password=secrets.tracking_admin_password,
            api_key=secrets.api_key,
        )
        self.register_outputs({"trackingUri": tracking.url})


def build_platform(settings: StackSettings) -> PlatformOutputs:
    """Build the AWS platform for this stack (the contract in infra/platform.py)."""
    return AwsPlatform(settings.stack, settings).outputs
