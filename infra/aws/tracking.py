"""The MLflow tracking server on ECS Express Mode: artifacts proxied to the bucket, metadata in PostgreSQL."""

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from infra.aws.account import Account
from infra.aws.database import RDS_CA_BUNDLE_PATH
from infra.aws.express import (
    TARGET_KEEP_ALIVE_SECONDS,
    ExpressService,
    ExpressServiceArgs,
    express_host_pattern,
    reserve_service_name,
)
from infra.aws.storage import ArtifactStore
from infra.config import StackSettings
from infra.generated_secrets import StackSecrets
from infra.workloads import (
    ADMIN_PASSWORD_VARIABLE,
    DATABASE_NAME,
    DATABASE_USER,
    TRACKING_HEALTH_PATH,
    TRACKING_PORT,
    ContainerEnvironment,
    tracking_environment,
)


@dataclass(frozen=True, kw_only=True)
class TrackingServerArgs:
    settings: StackSettings
    account: Account
    secrets: StackSecrets
    image: pulumi.Input[str]
    store: ArtifactStore
    database_host: pulumi.Input[str]
    serverless_database: bool
    cluster_name: pulumi.Input[str]
    infrastructure_role_arn: pulumi.Input[str]
    repository_arns: list[pulumi.Output[str]]
    subnet_ids: list[pulumi.Output[str]]
    security_group_id: pulumi.Input[str]
    depends_on: Sequence[pulumi.Resource]


class TrackingServer(pulumi.ComponentResource):
    url: pulumi.Output[str]
    service: ExpressService
    environment: ContainerEnvironment  # what the container gets (tests run the entrypoint with it)
    admin_password_secret_arn: pulumi.Output[str]  # what the retrain role may read (ci_identity.py)

    def __init__(
        self, name: str, args: TrackingServerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops-stack:aws:TrackingServer", name, None, opts)
        settings = args.settings
        extra: dict[str, pulumi.Input[str]] = {
            "PORT": str(TRACKING_PORT),
            "AWS_DEFAULT_REGION": settings.region,
            # libpq's own variable: with sslmode=verify-full it checks the server's certificate against the
            # RDS CA bundle the image carries (infra/mlflow_server/Dockerfile) and the host name against it.
            "PGSSLROOTCERT": RDS_CA_BUNDLE_PATH,
            "MLFLOW_KEEP_ALIVE_SECONDS": str(TARGET_KEEP_ALIVE_SECONDS),
        }
        if args.serverless_database:
            # A pooled idle connection keeps Aurora Serverless v2 from pausing at 0 ACU: open one per request.
            extra["MLFLOW_SQLALCHEMYSTORE_POOLCLASS"] = "NullPool"
        self.environment = tracking_environment(
            settings,
            args.secrets,
            database_host=args.database_host,
            database_name=DATABASE_NAME,
            database_user=DATABASE_USER,
            artifacts_destination=args.store.artifact_root,
            # AWS assigns the endpoint when it creates the service (see infra/aws/express.py). ALB health
            # checks send the task's IP as Host, which MLflow accepts on /health only (exempt from the check).
            allowed_hosts=express_host_pattern(settings.region),
            database_sslmode="verify-full",
            extra=extra,
        )
        service = ExpressService(
            f"{name}-service",
            ExpressServiceArgs(
                settings=settings,
                account=args.account,
                purpose="tracking",
                service_name=reserve_service_name(f"{name}-name", settings, "mlflow", self),
                image=args.image,
                container=settings.tracking,
                port=TRACKING_PORT,
                health_check_path=TRACKING_HEALTH_PATH,
                environment=self.environment,
                task_statements=args.store.access_statements(write=True),
                cluster_name=args.cluster_name,
                infrastructure_role_arn=args.infrastructure_role_arn,
                repository_arns=args.repository_arns,
                subnet_ids=args.subnet_ids,
                security_group_id=args.security_group_id,
                depends_on=args.depends_on,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.url = service.url
        self.service = service  # its names, for the stack's alarms (infra/aws/monitoring.py)
        self.admin_password_secret_arn = service.secret_arns[ADMIN_PASSWORD_VARIABLE]
        self.register_outputs({"url": self.url})
