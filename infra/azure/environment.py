"""The Container Apps environment (consumption) in the stack's VNet, with its logs in Log Analytics.

Logs go through a diagnostic setting ("azure-monitor" destination) rather than the environment's
"log-analytics" destination: that one needs the workspace's shared key, which would then sit in state
and would need a key-listing permission even for a read-only preview.

The workspace keeps logs at least 30 days whatever the environment table says (dev 14, sandbox 3): a
PerGB2018 workspace takes 30 to 730 days, and the first 31 are included in the ingestion price, so the floor
costs nothing (infra/azure/limits.py, `LOG_RETENTION_DAYS`).
"""

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.app as app
import pulumi_azure_native.monitor as monitor
import pulumi_azure_native.operationalinsights as operationalinsights

from infra.azure.limits import LOG_RETENTION_DAYS, MANAGED_ENVIRONMENT, WORKSPACE, name_limit
from infra.config import StackSettings
from infra.naming import short_name

# Serverless, per-second billing, scale to zero; apps name it in `workload_profile_name`.
CONSUMPTION_PROFILE = "Consumption"
DIAGNOSTIC_SETTING_NAME = "logs-to-workspace"


def log_retention_days(settings: StackSettings) -> int:
    """The environment's log retention, within what a PerGB2018 workspace accepts."""
    low, high = LOG_RETENTION_DAYS
    return min(max(settings.log_retention_days, low), high)


@dataclass(frozen=True, kw_only=True)
class AppsEnvironmentArgs:
    resource_group_name: pulumi.Input[str]
    settings: StackSettings
    subnet_id: pulumi.Input[str]


class AppsEnvironment(pulumi.ComponentResource):
    """Log Analytics workspace, the managed environment, and the setting that ships its logs."""

    id: pulumi.Output[str]
    default_domain: pulumi.Output[str]
    workspace_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: AppsEnvironmentArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops-stack:azure:AppsEnvironment", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stack = args.settings.stack
        workspace = operationalinsights.Workspace(
            f"{name}-logs",
            workspace_name=short_name(stack, "logs", max_length=name_limit(WORKSPACE)),
            resource_group_name=args.resource_group_name,
            sku=operationalinsights.WorkspaceSkuArgs(
                name=operationalinsights.WorkspaceSkuNameEnum.PER_GB2018
            ),
            retention_in_days=log_retention_days(args.settings),
            opts=child,
        )
        environment = app.ManagedEnvironment(
            f"{name}-environment",
            environment_name=short_name(stack, "apps", max_length=name_limit(MANAGED_ENVIRONMENT)),
            resource_group_name=args.resource_group_name,
            workload_profiles=[
                app.WorkloadProfileArgs(name=CONSUMPTION_PROFILE, workload_profile_type=CONSUMPTION_PROFILE)
            ],
            # Not internal: the apps' ingress is public HTTPS (their own auth guards them); the VNet is
            # what gives them a private path to the database.
            vnet_configuration=app.VnetConfigurationArgs(
                infrastructure_subnet_id=args.subnet_id, internal=False
            ),
            app_logs_configuration=app.AppLogsConfigurationArgs(destination="azure-monitor"),
            opts=child,
        )
        monitor.DiagnosticSetting(
            f"{name}-diagnostics",
            name=DIAGNOSTIC_SETTING_NAME,  # one per environment: its scope is the environment
            resource_uri=environment.id,
            workspace_id=workspace.id,
            logs=[monitor.DiagnosticsLogSettingsArgs(category_group="allLogs", enabled=True)],
            opts=child,
        )
        self.id = environment.id
        self.workspace_id = workspace.id  # where the apps' console logs land (the drift alert's query)
        self.default_domain = environment.default_domain
        self.register_outputs({"id": environment.id, "default_domain": environment.default_domain})
