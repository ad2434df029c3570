"""One Container App with its own user-assigned identity: the shape the tracking server and the model API
share. Each app gets only the role assignments its caller lists, and its secrets as Container Apps
secrets referenced by name from the environment (never as plain values).

Role assignments take effect after a delay, "up to 10 minutes"
(https://learn.microsoft.com/azure/role-based-access-control/troubleshooting), while Container Apps pulls the
image when it creates the first revision and fails the create with `UNAUTHORIZED` if AcrPull is not yet in
force (and the model API reads its model at start). Microsoft's order for infrastructure as code is identity,
AcrPull, app ("Create a container app with a private image" in
https://learn.microsoft.com/azure/container-apps/managed-identity-image-pull); we add the wait that order
needs: the app waits for a `pulumiverse_time.Sleep` that starts once all of its identity's assignments exist
and runs again only when one of them is replaced. It costs `ROLE_PROPAGATION` once, when an app's identity is
new (the tracking server's is usually hidden behind the database, which takes longer to create; the model
API's, made on the `up` after a model is pinned, is not).
"""

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.app as app
import pulumi_azure_native.authorization as authorization
import pulumi_azure_native.managedidentity as managedidentity
import pulumiverse_time

from infra.azure.environment import CONSUMPTION_PROFILE
from infra.azure.revisions import RevisionTraffic
from infra.azure.roles import BuiltInRole, grant_role
from infra.config import ContainerSettings
from infra.workloads import ContainerEnvironment

# Probes: the startup probe gives a new replica 150 s from container start (MLflow's database migrations
# on first boot, the API's model download) before the liveness probe takes over; Container Apps takes at most
# 10 failures (infra/azure/limits.py), so the budget comes from the period, which is also the longest a
# ready replica waits to be marked started (a cold start from zero pays up to that much).
STARTUP_PERIOD_SECONDS = 15
STARTUP_FAILURES = 10
LIVENESS_PERIOD_SECONDS = 30
LIVENESS_FAILURES = 3
READINESS_PERIOD_SECONDS = 10
# How long an app waits after its identity's role assignments are created before Azure is asked to run it.
ROLE_PROPAGATION = "120s"


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


@dataclass(frozen=True, kw_only=True)
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
    environment: ContainerEnvironment
    # Revision mode and traffic weights (infra/azure/revisions.py); None: single revision mode.
    traffic: RevisionTraffic | None = None


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
    """A user-assigned identity, its role assignments, and the wait for them to take effect. The app pulls
    its image with this identity, so it depends on `ready`, not merely on the assignments existing."""

    identity: managedidentity.UserAssignedIdentity
    assignments: list[authorization.RoleAssignment]
    ready: pulumiverse_time.Sleep

    def __init__(
        self,
        name: str,
        resource_group_name: pulumi.Input[str],
        subscription_id: pulumi.Input[str],
        grants: list[RoleGrant],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops-stack:azure:AppIdentity", name, None, opts)
        # Same logical name as this component: the type in the URN tells them apart.
        self.identity = managedidentity.UserAssignedIdentity(
            name,
            resource_name_=name,  # the stack's name is its first part, so sandboxes sharing a group differ
            resource_group_name=resource_group_name,
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
        self.ready = pulumiverse_time.Sleep(
            f"{name}-propagation",
            create_duration=ROLE_PROPAGATION,
            # A replaced assignment (new identity, new scope) waits again; an unchanged one never does.
            triggers={grant.purpose: a.id for grant, a in zip(grants, self.assignments, strict=True)},
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.assignments),
        )
        self.register_outputs({"client_id": self.identity.client_id})


class ServiceApp(pulumi.ComponentResource):
    """External HTTPS-only ingress, scale from settings (to zero by default), probes, identity, secrets."""

    url: pulumi.Output[str]
    latest_revision: pulumi.Output[str]  # the name of the newest ready revision, after the update
    id: pulumi.Output[str]  # the container app's resource id (what its metric alerts are scoped to)

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
        traffic = args.traffic or RevisionTraffic(app.ActiveRevisionsMode.SINGLE, None)
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
                active_revisions_mode=traffic.mode,
                ingress=app.IngressArgs(
                    external=True,
                    allow_insecure=False,  # plain HTTP gets a redirect to HTTPS, never the app
                    target_port=args.port,
                    transport=app.IngressTransportMethod.HTTP,
                    traffic=traffic.weights,
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
            opts=pulumi.ResourceOptions(parent=self, depends_on=[identity.ready]),
        )
        self.latest_revision = container_app.latest_ready_revision_name
        # Through the app's id, so whoever reads the URL waits until the app exists.
        self.url = pulumi.Output.all(container_app.id, args.fqdn).apply(lambda values: f"https://{values[1]}")
        self.id = container_app.id
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
            http(app.Type.READINESS, probes.readiness_path, READINESS_PERIOD_SECONDS, LIVENESS_FAILURES)
        )
    return result
