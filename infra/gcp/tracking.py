"""The MLflow tracking server on Cloud Run, with its own service account and least-privilege grants."""

from dataclasses import dataclass

import pulumi
import pulumi_gcp.projects as projects
import pulumi_gcp.secretmanager as secretmanager
import pulumi_gcp.serviceaccount as serviceaccount

from infra.config import StackSettings
from infra.gcp import cloud_run
from infra.gcp.apis import Api, RequiredApis
from infra.gcp.database import TrackingDatabase
from infra.gcp.secrets import ContainerSecrets, ContainerSecretsArgs
from infra.gcp.service_accounts import runtime_identity
from infra.gcp.storage import ArtifactStore
from infra.generated_secrets import StackSecrets
from infra.workloads import ADMIN_PASSWORD_VARIABLE, TRACKING_PORT, tracking_environment

CLOUD_SQL_SOCKETS = "/cloudsql"  # where Cloud Run mounts the Cloud SQL connection's unix sockets
BUCKET_WRITER = "roles/storage.objectAdmin"
CLOUD_SQL_CLIENT = "roles/cloudsql.client"
URL_SIGNER = "roles/iam.serviceAccountTokenCreator"
# MLflow upgrades its schema on first start before uvicorn opens the port, which can take minutes on the
# smallest tier: the whole 240 s Cloud Run allows a startup probe (cloud_run.STARTUP_PROBE_BUDGET_SECONDS).
STARTUP_PROBE_PERIOD_SECONDS = 10
STARTUP_PROBE_FAILURES = 24
# Long requests: proxied artifact uploads and downloads stream through the server (HTTP/2 end to end; a
# 500 MB upload at 1 MB/s still fits).
REQUEST_TIMEOUT = "900s"


@dataclass(frozen=True, kw_only=True)
class TrackingServerArgs:
    settings: StackSettings
    secrets: StackSecrets
    store: ArtifactStore
    database: TrackingDatabase
    image: pulumi.Input[str]  # by digest
    project_number: pulumi.Input[str]
    deployer: pulumi.Input[str]  # IAM member of the CI deploy account, which needs actAs on ours
    apis: RequiredApis


class TrackingServer(pulumi.ComponentResource):
    """MLflow with basic auth, PostgreSQL through Cloud Run's Cloud SQL connection, artifacts proxied to the
    bucket over HTTP/2 end to end, large uploads straight to the bucket through part URLs it signs with IAM.
    Its account may write objects in this bucket, read its own three secrets, connect to this database
    instance and sign as itself, and nothing else."""

    url: pulumi.Output[str]
    admin_password_secret: secretmanager.Secret  # what the retrain identity may read (ci_identity.py)

    def __init__(
        self, name: str, args: TrackingServerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops-stack:gcp:TrackingServer", name, None, opts)
        settings = args.settings
        identity = runtime_identity(
            name, settings, "tracking", args.deployer, self, args.apis.needed_by([Api.IAM])
        )
        bucket_access = args.store.grant(f"{name}-bucket-writer", BUCKET_WRITER, identity.member, self)
        # Cloud SQL has no instance-level IAM policy: the project binding is narrowed to this instance by a
        # condition, so the account cannot connect to other instances in the project.
        instance_path = pulumi.Output.concat(
            "projects/", args.database.instance.project, "/instances/", args.database.instance.name
        )
        sql_access = projects.IAMMember(
            f"{name}-cloudsql-client",
            project=settings.gcp_project or "",
            role=CLOUD_SQL_CLIENT,
            member=identity.member,
            condition=projects.IAMMemberConditionArgs(
                title="this-stack-instance-only",
                description="Connect only to the stack's own tracking database",
                expression=instance_path.apply(
                    lambda path: (
                        f"resource.name == '{path}' && resource.type == 'sqladmin.googleapis.com/Instance'"
                    )
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.apis.needed_by([Api.RESOURCE_MANAGER])),
        )

        # Large artifacts (from MLflow's 500 MB multipart threshold up) go from the client straight to the
        # bucket through part URLs the server signs. On Cloud Run there is no key to sign with: the server
        # signs through the IAM signBlob API as this account (infra/mlflow_server/gcs_signing.py), which
        # needs this role on itself alone. Smaller ones stream through the server over HTTP/2 (below).
        url_signing = serviceaccount.IAMMember(
            f"{name}-signs-upload-urls",
            service_account_id=identity.account.name,
            role=URL_SIGNER,
            member=identity.member,
            opts=pulumi.ResourceOptions(parent=self),
        )

        service_name = cloud_run.service_name(settings, "tracking")
        host = cloud_run.service_host(service_name, args.project_number, settings.region)
        hosts = pulumi.Output.concat(host, ",", cloud_run.legacy_host_pattern(service_name))
        environment = tracking_environment(
            settings,
            args.secrets,
            database_host=pulumi.Output.concat(f"{CLOUD_SQL_SOCKETS}/", args.database.connection_name),
            database_name=args.database.database_name,
            database_user=args.database.user_name,
            artifacts_destination=args.store.artifact_root,
            allowed_hosts=hosts,
            # A unix socket to Cloud Run's Cloud SQL connection, which encrypts the hop to the instance
            # itself (mutual TLS); libpq has no TLS to negotiate on a socket.
            database_sslmode="disable",
            # Cloud Run forwards HTTP/2 to the h2c port below: the server must speak it.
            extra={"MLFLOW_HTTP2": "true"},
        )
        secrets = ContainerSecrets(
            f"{name}-secrets",
            ContainerSecretsArgs(
                settings=settings,
                values=environment.secrets,
                reader=identity.member,
                depends_on=args.apis.needed_by([Api.SECRET_MANAGER]),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        service = cloud_run.CloudRunService(
            name,
            cloud_run.CloudRunServiceArgs(
                settings=settings,
                purpose="tracking",
                image=args.image,
                container=settings.tracking,
                port=TRACKING_PORT,
                # HTTP/2 end to end: no 32 MiB cap on proxied artifact uploads and downloads.
                port_name=cloud_run.HTTP2_END_TO_END,
                # `mlflow server` migrates the database and creates the admin before it starts uvicorn, so an
                # open port means a migrated server. HTTP probes are for HTTP/1 services only, and Cloud Run
                # has no TCP liveness probe.
                probes=cloud_run.tcp_startup_probe(
                    TRACKING_PORT, STARTUP_PROBE_PERIOD_SECONDS, STARTUP_PROBE_FAILURES
                ),
                plain_env=environment.plain,
                secret_env=secrets.env,
                service_account_email=identity.account.email,
                project_number=args.project_number,
                # Public: MLflow's basic auth guards every request except /health.
                public=True,
                request_timeout=REQUEST_TIMEOUT,
                cloud_sql=cloud_run.CloudSqlMount(
                    instance=args.database.connection_name, path=CLOUD_SQL_SOCKETS
                ),
                depends_on=[
                    *args.apis.needed_by([Api.RUN]),
                    bucket_access,
                    sql_access,
                    url_signing,
                    identity.deployable,
                    *secrets.access,
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.url = service.url
        self.admin_password_secret = secrets.secrets[ADMIN_PASSWORD_VARIABLE]
        self.register_outputs({"url": self.url})
