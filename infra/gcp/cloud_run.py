"""What both Cloud Run services share: their URL, size, plain environment and public invoker."""

from collections.abc import Mapping

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


def resources(container: ContainerSettings) -> cloudrunv2.ServiceTemplateContainerResourcesArgs:
    return cloudrunv2.ServiceTemplateContainerResourcesArgs(
        limits={"cpu": f"{container.cpu:g}", "memory": f"{container.memory_mib}Mi"},
        # CPU only while serving requests (request-based billing): an idle instance costs memory only.
        cpu_idle=True,
        startup_cpu_boost=True,
    )


def scaling(container: ContainerSettings) -> cloudrunv2.ServiceTemplateScalingArgs:
    return cloudrunv2.ServiceTemplateScalingArgs(
        min_instance_count=container.min_instances, max_instance_count=container.max_instances
    )


def plain_env(values: Mapping[str, pulumi.Input[str]]) -> list[cloudrunv2.ServiceTemplateContainerEnvArgs]:
    return [
        cloudrunv2.ServiceTemplateContainerEnvArgs(name=key, value=value) for key, value in values.items()
    ]


def allow_public_invocation(
    name: str, service: cloudrunv2.Service, parent: pulumi.Resource
) -> cloudrunv2.ServiceIamMember:
    """Anyone may reach the service; the application authenticates (MLflow basic auth, the API key)."""
    return cloudrunv2.ServiceIamMember(
        f"{name}-public-invoker",
        name=service.name,
        location=service.location,
        project=service.project,
        role=INVOKER,
        member="allUsers",
        opts=pulumi.ResourceOptions(parent=parent),
    )


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
