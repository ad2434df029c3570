"""The stack's Azure Monitor alerts (the list itself is infra/alerts.py).

- The apps' requests, response time and restarts from Container Apps' own metrics (`Microsoft.App/
  containerApps`: `Requests` with the `statusCodeCategory` dimension, `ResponseTime` in ms (preview),
  `RestartCount`, the cumulative restarts of a replica:
  https://learn.microsoft.com/azure/azure-monitor/reference/supported-metrics/microsoft-app-containerapps-metrics).
  Azure metric alerts compare one metric with a threshold: no ratio and no percentile. So on Azure the
  latency alert watches the highest per-minute average response time (not the p99), and the tracking alert
  counts its 5xx answers (`TRACKING_5XX`, not a share of its requests).
- The database's `cpu_percent` and `storage_percent` (`Microsoft.DBforPostgreSQL/flexibleServers`:
  https://learn.microsoft.com/azure/postgresql/flexible-server/concepts-monitoring).
- Drift from the API's JSON line in the workspace's `ContainerAppConsoleLogs` table (the environment ships its
  console logs there: infra/azure/environment.py), through a scheduled log search alert evaluated every 15
  minutes (log alerts are billed by how often they run:
  https://learn.microsoft.com/azure/azure-monitor/alerts/alerts-create-log-alert-rule).

Metric alert rules are billed per monitored time series per month, log search alerts per rule by frequency
(Azure Monitor pricing). The action group with the email exists only when `alertEmail` is set.
"""

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.monitor as monitor

from infra.alerts import DRIFT_EVENT, DRIFT_FIELD, Alert, AlertId, AlertPlan, alert_name
from infra.config import StackSettings

CONTAINER_APPS = "Microsoft.App/containerApps"
POSTGRES = "Microsoft.DBforPostgreSQL/flexibleServers"
SINGLE_RESOURCE = "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"
# 5xx answers of the tracking server in 5 minutes that mean it is failing (Azure has no ratio alert).
TRACKING_5XX = 5
WARNING = 2  # Azure Monitor's severities: 0 critical ... 4 verbose


@dataclass(frozen=True, kw_only=True)
class StackMonitoringArgs:
    settings: StackSettings
    plan: AlertPlan
    resource_group_name: pulumi.Input[str]
    workspace_id: pulumi.Input[str]
    tracking_app_id: pulumi.Input[str]
    api_app_id: pulumi.Input[str] | None
    api_app_name: str | None
    database_id: pulumi.Input[str]


class StackMonitoring(pulumi.ComponentResource):
    rules: dict[AlertId, pulumi.CustomResource]

    def __init__(
        self, name: str, args: StackMonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops-stack:azure:StackMonitoring", name, None, opts)
        plan = args.plan
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self._groups: list[pulumi.Output[str]] = []
        if plan.email is not None:
            group = monitor.ActionGroup(
                f"{name}-email",
                action_group_name=f"{args.settings.stack} alerts",
                resource_group_name=args.resource_group_name,
                location="global",
                group_short_name="mlops-alert",  # at most 12 characters, shown in the email
                enabled=True,
                email_receivers=[
                    monitor.MicrosoftCommonEmailReceiverArgs(
                        name="email", email_address=plan.email, use_common_alert_schema=True
                    )
                ],
                opts=self._child,
            )
            self._groups.append(group.id)
        self.rules = {}
        for alert in plan.alerts:
            if alert.id is AlertId.TRACKING_UNAVAILABLE:
                self._metric_alert(
                    name,
                    alert,
                    args.tracking_app_id,
                    CONTAINER_APPS,
                    "Requests",
                    "Total",
                    TRACKING_5XX,
                    five_xx=True,
                )
            elif alert.id is AlertId.DATABASE_CPU:
                self._metric_alert(name, alert, args.database_id, POSTGRES, "cpu_percent", "Average")
            elif alert.id is AlertId.DATABASE_STORAGE:
                self._metric_alert(name, alert, args.database_id, POSTGRES, "storage_percent", "Average")
            elif args.api_app_id is None:
                continue
            elif alert.id is AlertId.API_5XX:
                self._metric_alert(
                    name, alert, args.api_app_id, CONTAINER_APPS, "Requests", "Total", five_xx=True
                )
            elif alert.id is AlertId.API_P99:
                self._metric_alert(name, alert, args.api_app_id, CONTAINER_APPS, "ResponseTime", "Maximum")
            elif alert.id is AlertId.API_RESTARTS:
                self._metric_alert(name, alert, args.api_app_id, CONTAINER_APPS, "RestartCount", "Maximum")
            elif alert.id is AlertId.MODEL_DRIFT:
                self._drift_alert(name, alert)
        self.register_outputs({})

    def _metric_alert(
        self,
        name: str,
        alert: Alert,
        scope: pulumi.Input[str],
        namespace: str,
        metric: str,
        aggregation: str,
        threshold: float | None = None,
        *,
        five_xx: bool = False,
    ) -> None:
        window = f"PT{alert.minutes}M"
        self.rules[alert.id] = monitor.MetricAlert(
            f"{name}-{alert.id.value}",
            rule_name=alert_name(self._args.settings, alert.id),
            resource_group_name=self._args.resource_group_name,
            location="global",
            description=f"{alert.meaning}. What to do: {alert.action}.",
            severity=WARNING,
            enabled=True,
            scopes=[scope],
            evaluation_frequency=window,
            window_size=window,
            criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
                odata_type=SINGLE_RESOURCE,
                all_of=[
                    monitor.MetricCriteriaArgs(
                        criterion_type="StaticThresholdCriterion",
                        name=alert.id.value,
                        metric_namespace=namespace,
                        metric_name=metric,
                        operator="GreaterThan",
                        threshold=alert.threshold if threshold is None else threshold,
                        time_aggregation=aggregation,
                        dimensions=[
                            monitor.MetricDimensionArgs(
                                name="statusCodeCategory", operator="Include", values=["5xx"]
                            )
                        ]
                        if five_xx
                        else None,
                    )
                ],
            ),
            actions=[monitor.MetricAlertActionArgs(action_group_id=group) for group in self._groups],
            tags={"alert": alert.id.value},
            opts=self._child,
        )

    def _drift_alert(self, name: str, alert: Alert) -> None:
        window = f"PT{alert.minutes}M"
        self.rules[alert.id] = monitor.ScheduledQueryRule(
            f"{name}-{alert.id.value}",
            rule_name=alert_name(self._args.settings, alert.id),
            resource_group_name=self._args.resource_group_name,
            location=self._args.settings.region,
            kind=monitor.Kind.LOG_ALERT,
            description=f"{alert.meaning}. What to do: {alert.action}.",
            severity=WARNING,
            enabled=True,
            scopes=[self._args.workspace_id],
            evaluation_frequency=window,
            window_size=window,
            criteria=monitor.ScheduledQueryRuleCriteriaArgs(
                all_of=[
                    monitor.ConditionArgs(
                        query=drift_query(self._args.api_app_name or ""),
                        time_aggregation="Maximum",
                        metric_measure_column=DRIFT_FIELD,
                        operator="GreaterThan",
                        threshold=alert.threshold,
                        failing_periods=monitor.ConditionFailingPeriodsArgs(
                            min_failing_periods_to_alert=1, number_of_evaluation_periods=1
                        ),
                    )
                ]
            ),
            actions=monitor.ActionsArgs(action_groups=self._groups),
            tags={"alert": alert.id.value},
            opts=self._child,
        )


def drift_query(app_name: str) -> str:
    """The API's drift lines in the window, with their `max_psi` (KQL over the console logs table)."""
    return (
        "ContainerAppConsoleLogs\n"
        f'| where ContainerAppName == "{app_name}" and Log has "{DRIFT_EVENT}"\n'
        "| extend line = parse_json(Log)\n"
        f'| where tostring(line.event) == "{DRIFT_EVENT}"\n'
        f"| extend {DRIFT_FIELD} = todouble(line.{DRIFT_FIELD})\n"
        f"| where isnotnull({DRIFT_FIELD})\n"
        f"| project TimeGenerated, {DRIFT_FIELD}"
    )
