"""The Cloud Run service both workloads run as (`CloudRunService`, the counterpart of AWS's ExpressService
and Azure's ServiceApp), and what it is built from: its deterministic URL, size, probes and public invoker."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp.cloudrunv2 as cloudrunv2

from infra.config import ContainerSettings, StackSettings
from infra.naming import short_name

INVOKER = "roles/run.invoker"
# Cloud Run gives a service its deterministic URL only while `[TAG---]<service>-<project number>` fits one
# 63-character DNS label (https://cloud.google.com/run/docs/triggering/https-request, "Deterministic URL").
# Project numbers are 12 digits today; 40 leaves room for a 13th and for a short traffic tag. (The API itself
# takes service ids below 50 characters: infra/gcp/limits.py.)
MAX_SERVICE_NAME = 40
# Port name that makes Cloud Run forward HTTP/2 end to end instead of downgrading to HTTP/1, which caps
# request bodies at 32 MiB (https://cloud.google.com/run/docs/configuring/http2, .../run/quotas).
HTTP2_END_TO_END = "h2c"


def service_name(settings: StackSettings, purpose: str) -> str:
    return short_name(settings.stack, purpose, max_length=MAX_SERVICE_NAME)


def service_host(name: str, project_number: pulumi.Input[str], region: str) -> pulumi.Output[str]:
    """The deterministic host Cloud Run gives a service: `<service>-<project number>.<region>.run.app`.

    It is known before the service exists, so the service can be told its own host (MLflow's host check)
    without waiting for the service's `uri` output, which would be a dependency cycle. Cloud Run serves the
    same service at `legacy_host_pattern` too.
    """
    return pulumi.Output.concat(name, "-", project_number, f".{region}.run.app")


def legacy_host_pattern(name: str) -> str:
    """Every service also keeps its hash-based URL, `https://<service>-<hash>-<region code>.a.run.app`
    (e.g. `hello-2iazkcj7pq-uc.a.run.app`; https://cloud.google.com/run/docs/triggering/https-request:
    "Cloud Run assigns a hash-based non-deterministic URL to all services"). The hash is known only once
    the service exists, so a host check names it by pattern; Google's front end routes a `*.a.run.app`
    host only to the service that owns it, so the pattern admits nothing the front end would not."""
    return f"{name}-*.a.run.app"


@dataclass(frozen=True, kw_only=True)
class CloudSqlMount:
    """Cloud Run's connection to Cloud SQL instances, mounted as a directory of unix sockets."""

    instance: pulumi.Input[str]  # the instance's connection name, project:region:instance
    path: str


@dataclass(frozen=True, kw_only=True)
class CloudRunServiceArgs:
    settings: StackSettings
    purpose: str  # "tracking" or "api": the service's name (service_name)
    image: pulumi.Input[str]  # by digest
    container: ContainerSettings
    port: int
    # HTTP2_END_TO_END for a service that speaks HTTP/2 (h2c); None for HTTP/1.
    port_name: str | None
    probes: Mapping[str, object]  # http_probes(...) or tcp_startup_probe(...)
    plain_env: Mapping[str, pulumi.Input[str]]
    secret_env: Sequence[cloudrunv2.ServiceTemplateContainerEnvArgs]  # ContainerSecrets.env
    service_account_email: pulumi.Input[str]
    project_number: pulumi.Input[str]
    public: bool  # anyone may invoke it (the application authenticates), or only IAM-granted callers
    request_timeout: str | None = None  # Cloud Run's default (300 s) when None
    cloud_sql: CloudSqlMount | None = None
    # Traffic targets (infra/gcp/traffic.py); None: Cloud Run's default, all traffic to the latest revision.
    traffic: pulumi.Input[Sequence[cloudrunv2.ServiceTrafficArgs]] | None = None
    # Cloud Run checks the service account's access when it deploys a revision: grants first.
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)


class CloudRunService(pulumi.ComponentResource):
    """A public-ingress Cloud Run service with its deterministic URL, sized and scaled from settings."""

    host: pulumi.Output[str]
    url: pulumi.Output[str]
    latest_revision: pulumi.Output[str]  # the name of the newest ready revision, after the update

    def __init__(
        self, name: str, args: CloudRunServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops-stack:gcp:CloudRunService", name, None, opts)
        settings = args.settings
        # These resources were once children of the workload's component itself: the alias keeps stacks
        # created then from replacing their services.
        moved = [pulumi.Alias(parent=opts.parent)] if opts is not None and opts.parent is not None else []
        service_id = service_name(settings, args.purpose)
        volumes, mounts = [], []
        if args.cloud_sql is not None:
            volumes.append(
                cloudrunv2.ServiceTemplateVolumeArgs(
                    name="cloudsql",
                    cloud_sql_instance=cloudrunv2.ServiceTemplateVolumeCloudSqlInstanceArgs(
                        instances=[args.cloud_sql.instance]
                    ),
                )
            )
            mounts.append(
                cloudrunv2.ServiceTemplateContainerVolumeMountArgs(
                    name="cloudsql", mount_path=args.cloud_sql.path
                )
            )
        service = cloudrunv2.Service(
            f"{name}-service",
            name=service_id,
            project=settings.gcp_project,
            location=settings.region,
            ingress="INGRESS_TRAFFIC_ALL",
            # A service holds no data: the stack's data lives in the protected bucket and database.
            deletion_protection=False,
            traffics=args.traffic,
            template=cloudrunv2.ServiceTemplateArgs(
                service_account=args.service_account_email,
                scaling=cloudrunv2.ServiceTemplateScalingArgs(
                    min_instance_count=args.container.min_instances,
                    max_instance_count=args.container.max_instances,
                ),
                timeout=args.request_timeout,
                volumes=volumes or None,
                containers=[
                    cloudrunv2.ServiceTemplateContainerArgs(
                        image=args.image,
                        ports=cloudrunv2.ServiceTemplateContainerPortsArgs(
                            name=args.port_name, container_port=args.port
                        ),
                        resources=cloudrunv2.ServiceTemplateContainerResourcesArgs(
                            limits={
                                "cpu": f"{args.container.cpu:g}",
                                "memory": f"{args.container.memory_mib}Mi",
                            },
                            # CPU only while serving requests (request-based billing): an idle instance
                            # costs memory only.
                            cpu_idle=True,
                            startup_cpu_boost=True,
                        ),
                        envs=[
                            cloudrunv2.ServiceTemplateContainerEnvArgs(name=key, value=value)
                            for key, value in args.plain_env.items()
                        ]
                        + list(args.secret_env),
                        volume_mounts=mounts or None,
                        **args.probes,
                    )
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on), aliases=moved),
        )
        if args.public:
            cloudrunv2.ServiceIamMember(
                f"{name}-public-invoker",
                name=service.name,
                location=service.location,
                project=service.project,
                role=INVOKER,
                member="allUsers",
                opts=pulumi.ResourceOptions(parent=self, aliases=moved),
            )
        self.latest_revision = service.latest_ready_revision
        self.host = service_host(service_id, args.project_number, settings.region)
        self.url = pulumi.Output.concat("https://", self.host)
        self.register_outputs({"url": self.url})


LIVENESS_PERIOD_SECONDS = 30
# A startup probe may give a container at most failureThreshold x periodSeconds = 240 s: the services page
# says so (https://cloud.google.com/run/docs/configuring/healthchecks), and the newer jobs page allows 600 s;
# 240 is what both accept. infra/gcp/limits.py checks every service against it.
STARTUP_PROBE_BUDGET_SECONDS = 240


def _within_startup_budget(period_seconds: int, failures: int) -> None:
    if period_seconds * failures > STARTUP_PROBE_BUDGET_SECONDS:
        raise ValueError(
            f"startup probe of {period_seconds} s x {failures} exceeds Cloud Run's "
            f"{STARTUP_PROBE_BUDGET_SECONDS} s"
        )


def http_probes(
    startup_path: str, liveness_path: str, startup_period_seconds: int, startup_failures: int
) -> dict[str, object]:
    """Startup and liveness HTTP probes, as keyword arguments for a container: no traffic until
    `startup_path` answers (for up to period x failures seconds), restarted if `liveness_path` stops.

    HTTP probes need an HTTP/1 service (healthchecks page: "your service must use HTTP/1 ..., not HTTP/2"):
    an `h2c` service takes `tcp_startup_probe` instead.
    """
    _within_startup_budget(startup_period_seconds, startup_failures)
    return {
        "startup_probe": cloudrunv2.ServiceTemplateContainerStartupProbeArgs(
            http_get=cloudrunv2.ServiceTemplateContainerStartupProbeHttpGetArgs(path=startup_path),
            period_seconds=startup_period_seconds,
            failure_threshold=startup_failures,
        ),
        "liveness_probe": cloudrunv2.ServiceTemplateContainerLivenessProbeArgs(
            http_get=cloudrunv2.ServiceTemplateContainerLivenessProbeHttpGetArgs(path=liveness_path),
            period_seconds=LIVENESS_PERIOD_SECONDS,
        ),
    }


def tcp_startup_probe(port: int, period_seconds: int, failures: int) -> dict[str, object]:
    """A TCP startup probe, for services that speak HTTP/2 end to end (no HTTP probe there, and Cloud Run has
    no TCP liveness probe): no traffic until the port accepts connections, for up to period x failures s."""
    _within_startup_budget(period_seconds, failures)
    return {
        "startup_probe": cloudrunv2.ServiceTemplateContainerStartupProbeArgs(
            tcp_socket=cloudrunv2.ServiceTemplateContainerStartupProbeTcpSocketArgs(port=port),
            period_seconds=period_seconds,
            # A connection attempt that takes a whole period has failed; the API wants timeout <= period.
            timeout_seconds=period_seconds,
            failure_threshold=failures,
        )
    }
