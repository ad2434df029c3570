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

The dashboard (infra/dashboards.py lists its panels) is a shared Azure portal dashboard
(`Microsoft.Portal/dashboards`, https://learn.microsoft.com/azure/azure-portal/azure-portal-dashboards-structure),
chosen over an Application Insights workbook because it is the cheapest honest option that shows the same
metrics the alerts read: dashboards are free, need no Application Insights component (the stack has none), and
are an ARM resource in the stack's resource group, so the deploy identity's Contributor role on that group
(infra/azure/ci_identity.py; Contributor allows every action but role assignments and a few others,
https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/privileged#contributor) covers
`Microsoft.Portal/dashboards/write` and `delete`, and the tag fence of the group applies as to any resource.
Each metric tile is the alert's own resource, namespace, metric, aggregation and 5xx filter
(`Extension/HubsExtension/PartType/MonitorChartPart`, in the format the portal exports: aggregationType 1
total, 3 maximum, 4 average). A metric tile draws no threshold line, so its title carries the alert's
threshold; the drift tile is the drift alert's own log query over the workspace
(`Extension/Microsoft_OperationsManagementSuite_Workspace/PartType/LogsDashboardPart`), charted with the
threshold as a second series. Whether the tiles render is settled only by opening the dashboard after the
first deploy (README first-deploy checklist).
"""

import uuid
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_azure_native.monitor as monitor
import pulumi_azure_native.portal as portal

from infra.alerts import DRIFT_EVENT, DRIFT_FIELD, Alert, AlertId, AlertPlan, alert_name
from infra.config import StackSettings
from infra.dashboards import Panel, dashboard_name, dashboard_panels, grid

CONTAINER_APPS = "Microsoft.App/containerApps"
POSTGRES = "Microsoft.DBforPostgreSQL/flexibleServers"
SINGLE_RESOURCE = "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"
# 5xx answers of the tracking server in 5 minutes that mean it is failing (Azure has no ratio alert).
TRACKING_5XX = 5
WARNING = 2  # Azure Monitor's severities: 0 critical ... 4 verbose
# A metric tile's aggregation, as the portal writes it in an exported dashboard.
AGGREGATION_TYPES = {"Total": 1, "Minimum": 2, "Maximum": 3, "Average": 4, "Count": 7}
METRIC_CHART_PART = "Extension/HubsExtension/PartType/MonitorChartPart"
LOG_QUERY_PART = "Extension/Microsoft_OperationsManagementSuite_Workspace/PartType/LogsDashboardPart"
# Tiles on the portal's grid: two a row.
TILE_COLUMNS, TILE_ROWS = 6, 4
# The portal shows a dashboard by this tag, its resource name otherwise.
TITLE_TAG = "hidden-title"


@dataclass(frozen=True)
class MetricChart:
    """What a metric alert reads and where it fires, for its dashboard tile."""

    scope: pulumi.Input[str]
    namespace: str
    metric: str
    aggregation: str
    threshold: float
    unit: str
    five_xx: bool


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
        self._charts: dict[AlertId, MetricChart] = {}
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
                    unit="5xx responses",
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
        self.dashboard = self._dashboard(name, dashboard_panels(plan)) if plan.alerts else None
        self.register_outputs({})

    def _dashboard(self, name: str, panels: tuple[Panel, ...]) -> portal.Dashboard:
        """One tile a panel, in the shared order."""
        settings, args = self._args.settings, self._args
        tiles: list[dict[str, Any]] = []
        for panel in panels:
            if panel.alert is None:
                if args.api_app_id is not None:
                    tiles.append(
                        _metric_tile(
                            panel.title,
                            MetricChart(
                                args.api_app_id, CONTAINER_APPS, "Requests", "Total", 0, "requests", False
                            ),
                        )
                    )
            elif panel.alert.id is AlertId.MODEL_DRIFT:
                query = drift_chart_query(args.api_app_name or "", panel.alert.threshold)
                tiles.append(
                    _log_tile(
                        panel.title, query, args.workspace_id, f"{settings.stack}-{panel.alert.id.value}"
                    )
                )
            elif (chart := self._charts.get(panel.alert.id)) is not None:
                label = panel.threshold_label(chart.threshold, chart.unit)
                tiles.append(_metric_tile(f"{panel.title} ({label})", chart))
        parts = [
            portal.DashboardPartsArgs(
                position=portal.DashboardPartsPositionArgs(
                    x=cell.column * TILE_COLUMNS,
                    y=cell.row * TILE_ROWS,
                    col_span=TILE_COLUMNS,
                    row_span=TILE_ROWS,
                ),
                metadata=portal.DashboardPartMetadataArgs(
                    type=tile["type"], inputs=tile["inputs"], settings=tile["settings"]
                ),
            )
            for cell, tile in zip(grid(len(tiles)), tiles, strict=True)
        ]
        return portal.Dashboard(
            f"{name}-dashboard",
            dashboard_name=dashboard_name(settings.stack),
            resource_group_name=args.resource_group_name,
            location=settings.region,
            properties=portal.DashboardPropertiesWithProvisioningStateArgs(
                lenses=[portal.DashboardLensArgs(order=0, parts=parts)]
            ),
            tags={TITLE_TAG: f"{settings.stack} mlops-stack"},
            opts=self._child,
        )

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
        unit: str | None = None,
        five_xx: bool = False,
    ) -> None:
        window = f"PT{alert.minutes}M"
        limit = alert.threshold if threshold is None else threshold
        self._charts[alert.id] = MetricChart(
            scope, namespace, metric, aggregation, limit, alert.unit if unit is None else unit, five_xx
        )
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
                        threshold=limit,
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


def drift_chart_query(app_name: str, threshold: float) -> str:
    """The drift alert's query, as a line a window and the alert's threshold beside it."""
    return (
        f"{drift_query(app_name)}\n"
        f"| summarize {DRIFT_FIELD} = max({DRIFT_FIELD}) by bin(TimeGenerated, 15m)\n"
        f"| extend threshold = {threshold:g}\n"
        "| render timechart"
    )


def _metric_tile(title: str, chart: MetricChart) -> dict[str, Any]:
    metric = {
        "resourceMetadata": {"id": chart.scope},
        "name": chart.metric,
        "aggregationType": AGGREGATION_TYPES[chart.aggregation],
        "namespace": chart.namespace.lower(),
        "metricVisualization": {"displayName": chart.metric},
    }
    options: dict[str, Any] = {
        "metrics": [metric],
        "title": title,
        "titleKind": 2,  # the title given here, not one the portal makes up
        "visualization": {"chartType": 2},  # a line chart
        "timespan": {"relative": {"duration": 24 * 3600 * 1000}, "showUTCTime": False, "grain": 1},
    }
    if chart.five_xx:
        options["filterCollection"] = {
            "filters": [{"key": "statusCodeCategory", "operator": 0, "values": ["5xx"]}]
        }
    return {
        "type": METRIC_CHART_PART,
        "inputs": [{"name": "options", "isOptional": True}, {"name": "sharedTimeRange", "isOptional": True}],
        "settings": {"content": {"options": {"chart": options}}},
    }


def _log_tile(title: str, query: str, workspace_id: pulumi.Input[str], part: str) -> dict[str, Any]:
    def value(key: str, content: Any) -> dict[str, Any]:
        return {"name": key, "value": content, "isOptional": True}

    return {
        "type": LOG_QUERY_PART,
        "inputs": [
            value("Scope", {"resourceIds": [workspace_id]}),
            value("PartId", str(uuid.uuid5(uuid.NAMESPACE_URL, part))),
            value("Version", "2.0"),
            value("TimeRange", "P1D"),
            value("Query", query),
            value("ControlType", "FrameControlChart"),
            value("SpecificChart", "Line"),
            value("PartTitle", title),
            value(
                "Dimensions",
                {
                    "xAxis": {"name": "TimeGenerated", "type": "datetime"},
                    "yAxis": [{"name": DRIFT_FIELD, "type": "real"}, {"name": "threshold", "type": "real"}],
                    "splitBy": [],
                    "aggregation": "Max",
                },
            ),
            value("IsQueryContainTimeRange", False),
        ],
        "settings": {},
    }


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
