"""One Container App with its own user-assigned identity: the shape the tracking server and the model API
share. Each app gets only the role assignments its caller lists, and its secrets as Container Apps
secrets referenced by name from the environment (never as plain values)."""

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.app as app
import pulumi_azure_native.managedidentity as managedidentity

from infra.azure.environment import CONSUMPTION_PROFILE
from infra.azure.roles import BuiltInRole, grant_role
from infra.config import ContainerSettings
from infra.workloads import ContainerEnvironment

# Probes: a cold start (image pull, MLflow's database migrations on first boot) may take minutes, so the
# startup probe allows 5 minutes before the liveness probe takes over.
STARTUP_PERIOD_SECONDS = 10
STARTUP_FAILURES = 30
LIVENESS_PERIOD_SECONDS = 30
LIVENESS_FAILURES = 3


@dataclass(frozen=True)
class RoleGrant:
    """A role the app's identity needs, and the narrowest scope it needs it at."""

    purpose: str  # names the role assignment resource, e.g. "artifacts"
    role: BuiltInRole
    scope: pulumi.Input[str]


@dataclass(frozen=True)
class Probes:
    startup_path: str
    liveness_path: str
    readiness_path: str | None = None


@dataclass(frozen=True)
class ServiceAppArgs:
    resource_group_name: pulumi.Input[str]
    app_name: str  # the physical name: part of the FQDN, so callers know it before the app exists
    fqdn: pulumi.Input[str]  # app_fqdn(app_name, environment's default domain)
    container_name: str
    environment_id: pulumi.Input[str]
    registry_server: pulumi.Input[str]
    image: pulumi.Input[str]
    port: int
    size: ContainerSettings
    probes: Probes
    tags: dict[str, str]
    environment: ContainerEnvironment


def app_fqdn(app_name: str, default_domain: pulumi.Input[str]) -> pulumi.Output[str]:
    """An app's stable ingress name, `<app name>.<environment default domain>`: known before the app is
    created, so the app's own environment can name it (MLflow's allowed hosts) without a cycle."""
    return pulumi.Output.concat(app_name, ".", default_domain)


def identity_environment(identity: managedidentity.UserAssignedIdentity) -> dict[str, pulumi.Input[str]]:
    """`AZURE_CLIENT_ID` tells DefaultAzureCredential which user-assigned identity to use."""
    return {"AZURE_CLIENT_ID": identity.client_id}


def secret_name(variable: str) -> str:
    """Container Apps secret names allow lowercase letters, digits and '-': DB_PASSWORD -> db-password."""
    return variable.lower().replace("_", "-")


def memory_quantity(memory_mib: int) -> str:
    """Container Apps wants memory as a Gi quantity: 1024 -> '1Gi', 512 -> '0.5Gi'."""
    return f"{memory_mib / 1024:g}Gi"


class AppIdentity(pulumi.ComponentResource):
    """A user-assigned identity and its role assignments. Created before the app: the app pulls its image
    with this identity, so AcrPull must exist when the first revision starts."""

    identity: managedidentity.UserAssignedIdentity
    assignments: list[pulumi.Resource]

    def __init__(
        self,
        name: str,
        resource_group_name: pulumi.Input[str],
        subscription_id: pulumi.Input[str],
        grants: list[RoleGrant],
        tags: dict[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops-stack:azure:AppIdentity", name, None, opts)
        # Same logical name as this component: the type in the URN tells them apart.
        self.identity = managedidentity.UserAssignedIdentity(
            name,
            resource_name_=name,
            resource_group_name=resource_group_name,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.assignments = [
            grant_role(
                f"{name}-{grant.purpose}",
                role=grant.role,
                scope=grant.scope,
                principal_id=self.identity.principal_id,
                subscription_id=subscription_id,
                parent=self,
            )
            for grant in grants
        ]
        self.register_outputs({"client_id": self.identity.client_id})


class ServiceApp(pulumi.ComponentResource):
    """External HTTPS-only ingress, scale from settings (to zero by default), probes, identity, secrets."""

    url: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: ServiceAppArgs,
        identity: AppIdentity,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops-stack:azure:ServiceApp", name, None, opts)
        env = args.environment
        secrets = [app.SecretArgs(name=secret_name(var), value=value) for var, value in env.secrets.items()]
        variables = [app.EnvironmentVarArgs(name=var, value=value) for var, value in env.plain.items()] + [
            app.EnvironmentVarArgs(name=var, secret_ref=secret_name(var)) for var in env.secrets
        ]
        identity_id = identity.identity.id
        container_app = app.ContainerApp(
            f"{name}-app",
            container_app_name=args.app_name,
            resource_group_name=args.resource_group_name,
            managed_environment_id=args.environment_id,
            workload_profile_name=CONSUMPTION_PROFILE,
            identity=app.ManagedServiceIdentityArgs(
                type=app.ManagedServiceIdentityType.USER_ASSIGNED, user_assigned_identities=[identity_id]
            ),
            configuration=app.ConfigurationArgs(
                active_revisions_mode=app.ActiveRevisionsMode.SINGLE,
                ingress=app.IngressArgs(
                    external=True,
                    allow_insecure=False,  # plain HTTP gets a redirect to HTTPS, never the app
                    target_port=args.port,
                    transport=app.IngressTransportMethod.HTTP,
                ),
                registries=[app.RegistryCredentialsArgs(server=args.registry_server, identity=identity_id)],
                secrets=secrets,
            ),
            template=app.TemplateArgs(
                containers=[
                    app.ContainerArgs(
                        name=args.container_name,
                        image=args.image,
                        env=variables,
                        resources=app.ContainerResourcesArgs(
                            cpu=args.size.cpu, memory=memory_quantity(args.size.memory_mib)
                        ),
                        probes=_probes(args.probes, args.port),
                    )
                ],
                scale=app.ScaleArgs(
                    min_replicas=args.size.min_instances, max_replicas=args.size.max_instances
                ),
            ),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=identity.assignments),
        )
        # Through the app's id, so whoever reads the URL waits until the app exists.
        self.url = pulumi.Output.all(container_app.id, args.fqdn).apply(lambda values: f"https://{values[1]}")
        self.register_outputs({"url": self.url})


def _probes(probes: Probes, port: int) -> list[app.ContainerAppProbeArgs]:
    def http(kind: app.Type, path: str, period: int, failures: int) -> app.ContainerAppProbeArgs:
        return app.ContainerAppProbeArgs(
            type=kind,
            http_get=app.ContainerAppProbeHttpGetArgs(path=path, port=port, scheme=app.Scheme.HTTP),
            period_seconds=period,
            failure_threshold=failures,
        )

    result = [
        http(app.Type.STARTUP, probes.startup_path, STARTUP_PERIOD_SECONDS, STARTUP_FAILURES),
        http(app.Type.LIVENESS, probes.liveness_path, LIVENESS_PERIOD_SECONDS, LIVENESS_FAILURES),
    ]
    if probes.readiness_path is not None:
        result.append(
            http(app.Type.READINESS, probes.readiness_path, STARTUP_PERIOD_SECONDS, LIVENESS_FAILURES)
        )
    return result
