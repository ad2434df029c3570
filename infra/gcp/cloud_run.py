"""What both Cloud Run services share: their URL, size, plain environment and public invoker."""

from collections.abc import Mapping

import pulumi
import pulumi_gcp.cloudrunv2 as cloudrunv2

from infra.config import ContainerSettings, StackSettings
from infra.naming import short_name

INVOKER = "roles/run.invoker"
# A service name plus '-' plus the project number must fit one 63-character DNS label for Cloud Run to give
# the service its deterministic URL; project numbers have up to 13 digits.
MAX_SERVICE_NAME = 40


def service_name(settings: StackSettings, purpose: str) -> str:
    return short_name(settings.stack, purpose, max_length=MAX_SERVICE_NAME)


def service_host(name: str, project_number: pulumi.Input[str], region: str) -> pulumi.Output[str]:
    """The host Cloud Run gives a service: `<service>-<project number>.<region>.run.app`.

    It is known before the service exists, so the service can be told its own host (MLflow's host check)
    without waiting for the service's `uri` output, which would be a dependency cycle.
    """
    return pulumi.Output.concat(name, "-", project_number, f".{region}.run.app")


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


def probes(
    startup_path: str, liveness_path: str, startup_period_seconds: int, startup_failures: int
) -> dict[str, object]:
    """Startup and liveness HTTP probes, as keyword arguments for a container: no traffic until
    `startup_path` answers (for up to period x failures seconds), restarted if `liveness_path` stops."""
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
