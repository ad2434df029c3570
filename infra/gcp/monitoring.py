"""The stack's alerts and dashboard on Cloud Monitoring (the list itself is infra/alerts.py).

- The API's 5xx and p99 latency, and the tracking server's failure rate, from Cloud Run's own request metrics
  `run.googleapis.com/request_count` (label `response_code_class`) and `request_latencies` (a distribution
  in ms): https://cloud.google.com/monitoring/api/metrics_gcp_p_z#gcp-run
- The database's CPU and disk use from Cloud SQL's `cloudsql.googleapis.com/database/cpu/utilization` and
  `disk/utilization` (fractions 0-1), on the `cloudsql_database` resource whose `database_id` is
  `<project>:<instance>`: https://cloud.google.com/monitoring/api/metrics_gcp_c#gcp-cloudsql
- Crash loops and drift from log lines turned into counter metrics (log-based metrics,
  https://cloud.google.com/logging/docs/logs-based-metrics): Cloud Run writes a failed start, a probe
  failure or a container exit to the service's system log (`run.googleapis.com/varlog/system`) at ERROR; the
  API writes one JSON line per drift window, which Cloud Logging parses into `jsonPayload` (only numeric
  comparison in the filter: https://cloud.google.com/logging/docs/view/logging-query-language#comparisons).
  User-defined log-based metrics are billed as custom metrics by samples ingested: a quiet API writes none.

Alert policies are billed per condition and per time series they return (Google Cloud Observability
pricing); the price sheet says what is known. The email channel exists only when `alertEmail` is set.

The dashboard (infra/dashboards.py lists its panels) charts each policy's own filter and aggregation with the
policy's threshold as a line (https://cloud.google.com/monitoring/api/ref_v3/rest/v1/projects.dashboards#xychart),
and the API's request rate. The drift policy counts windows over the threshold, which is no PSI to look at; so
a second log-based metric, a distribution of the drift lines' `max_psi` (a value extractor,
https://cloud.google.com/logging/docs/logs-based-metrics/distribution-metrics), is drawn against the
threshold. Its buckets are 0.01 wide up to a PSI of 1, so the chart is within 0.01 of the logged value; it is
billed like the counter, by the samples the drift lines bring in (one a window).
"""

import json
from dataclasses import dataclass

import pulumi
import pulumi_gcp.logging as logging
import pulumi_gcp.monitoring as monitoring
import pulumiverse_time

from infra.alerts import DRIFT_EVENT, DRIFT_FIELD, Alert, AlertId, AlertPlan, alert_name
from infra.config import StackSettings
from infra.dashboards import Panel, dashboard_name, dashboard_panels, grid
from infra.gcp.cloud_run import service_name

RUN_RESOURCE = 'resource.type="cloud_run_revision"'
REQUESTS = 'metric.type="run.googleapis.com/request_count"'
LATENCIES = 'metric.type="run.googleapis.com/request_latencies"'
SYSTEM_LOG = 'logName:"run.googleapis.com%2Fvarlog%2Fsystem"'
METRIC_PROPAGATION = "10m"  # how long a new log-based metric may take to reach Cloud Monitoring
# The drift distribution's buckets: 0.01 wide from 0 to 1 (larger PSIs fall in the overflow bucket).
PSI_BUCKETS = logging.MetricBucketOptionsLinearBucketsArgs(num_finite_buckets=100, width=0.01, offset=0)
# Tiles on the dashboard's 12-column mosaic: two a row.
MOSAIC_COLUMNS, TILE_WIDTH, TILE_HEIGHT = 12, 6, 4


@dataclass(frozen=True)
class Chart:
    """What a policy reads and where it fires, for its dashboard panel."""

    metric_filter: pulumi.Input[str]
    aligner: str
    reducer: str | None
    threshold: float
    unit: str
    period: str
    denominator: str | None = None


@dataclass(frozen=True, kw_only=True)
class StackMonitoringArgs:
    settings: StackSettings
    plan: AlertPlan
    database_instance: pulumi.Input[str]  # the Cloud SQL instance's name
    depends_on: list[pulumi.Resource]  # the Monitoring and Logging APIs


class StackMonitoring(pulumi.ComponentResource):
    """One alert policy per entry of the plan, the log-based metrics two of them read, an email channel when
    configured, and one dashboard with the same signals."""

    policies: dict[AlertId, monitoring.AlertPolicy]

    def __init__(
        self, name: str, args: StackMonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops-stack:gcp:StackMonitoring", name, None, opts)
        settings, plan = args.settings, args.plan
        self._child = pulumi.ResourceOptions(parent=self, depends_on=args.depends_on)
        self._settings = settings
        self._charts: dict[AlertId, Chart] = {}
        api, tracking = service_name(settings, "api"), service_name(settings, "tracking")
        api_runs = f'{RUN_RESOURCE} AND resource.label.service_name="{api}"'
        # Log filters spell the resource's labels `resource.labels.` (metric filters take either).
        api_logs = f'{RUN_RESOURCE} AND resource.labels.service_name="{api}"'
        channels: list[pulumi.Output[str]] = []
        if plan.email is not None:
            channel = monitoring.NotificationChannel(
                f"{name}-email",
                display_name=f"{settings.stack} alerts",
                type="email",
                labels={"email_address": plan.email},
                opts=self._child,
            )
            channels.append(channel.name)
        self._channels = channels
        database_id = pulumi.Output.concat(settings.gcp_project or "", ":", args.database_instance)
        sql = pulumi.Output.concat(
            'resource.type="cloudsql_database" AND resource.label.database_id="', database_id, '"'
        )

        self.policies = {}
        for alert in plan.alerts:
            if alert.id is AlertId.API_5XX:
                self._policy(
                    name,
                    alert,
                    f'{REQUESTS} AND {api_runs} AND metric.label.response_code_class="5xx"',
                    alert.threshold,
                    "ALIGN_DELTA",
                    "REDUCE_SUM",
                )
            elif alert.id is AlertId.API_P99:
                self._policy(
                    name,
                    alert,
                    f"{LATENCIES} AND {api_runs}",
                    alert.threshold,
                    "ALIGN_PERCENTILE_99",
                    "REDUCE_MAX",
                )
            elif alert.id is AlertId.API_RESTARTS:
                metric = self._log_metric(
                    name,
                    "api-restarts",
                    f"{api_logs} AND {SYSTEM_LOG} AND severity>=ERROR",
                    "Cloud Run's errors starting or running the model API (failed starts, probes, exits)",
                )
                self._policy(
                    name, alert, metric.apply(_user_metric), alert.threshold, "ALIGN_DELTA", "REDUCE_SUM"
                )
            elif alert.id is AlertId.MODEL_DRIFT:
                metric = self._log_metric(
                    name,
                    "model-drift",
                    f'{api_logs} AND jsonPayload.event="{DRIFT_EVENT}" '
                    f"AND jsonPayload.{DRIFT_FIELD}>{alert.threshold:g}",
                    f"drift windows of the model API whose {DRIFT_FIELD} is above {alert.threshold:g}",
                )
                # Any such window in the period fires: the threshold is in the metric's filter.
                self._policy(name, alert, metric.apply(_user_metric), 0, "ALIGN_DELTA", "REDUCE_SUM")
                psi = logging.Metric(
                    f"{name}-model-drift-psi-metric",
                    name=f"mlops-stack/{settings.stack}/model-drift-psi",
                    description=f"the {DRIFT_FIELD} of each drift window of the model API, for the dashboard",
                    filter=f'{api_logs} AND jsonPayload.event="{DRIFT_EVENT}"',
                    value_extractor=f"EXTRACT(jsonPayload.{DRIFT_FIELD})",
                    metric_descriptor=logging.MetricMetricDescriptorArgs(
                        metric_kind="DELTA", value_type="DISTRIBUTION"
                    ),
                    bucket_options=logging.MetricBucketOptionsArgs(linear_buckets=PSI_BUCKETS),
                    opts=self._child,
                )
                # The dashboard draws the PSI itself against the alert's threshold (module docstring).
                self._charts[alert.id] = Chart(
                    psi.name.apply(_user_metric),
                    "ALIGN_PERCENTILE_99",
                    "REDUCE_MAX",
                    alert.threshold,
                    alert.unit,
                    f"{alert.minutes * 60}s",
                )
            elif alert.id is AlertId.TRACKING_UNAVAILABLE:
                tracking_runs = f'{REQUESTS} AND {RUN_RESOURCE} AND resource.label.service_name="{tracking}"'
                self._policy(
                    name,
                    alert,
                    f'{tracking_runs} AND metric.label.response_code_class="5xx"',
                    alert.threshold / 100,
                    "ALIGN_DELTA",
                    "REDUCE_SUM",
                    denominator=tracking_runs,
                    unit=_fraction(alert),
                )
            elif alert.id is AlertId.DATABASE_CPU:
                cpu = pulumi.Output.concat(
                    'metric.type="cloudsql.googleapis.com/database/cpu/utilization" AND ', sql
                )
                self._policy(
                    name, alert, cpu, alert.threshold / 100, "ALIGN_MEAN", None, unit=_fraction(alert)
                )
            elif alert.id is AlertId.DATABASE_STORAGE:
                disk = pulumi.Output.concat(
                    'metric.type="cloudsql.googleapis.com/database/disk/utilization" AND ', sql
                )
                self._policy(
                    name, alert, disk, alert.threshold / 100, "ALIGN_MEAN", None, unit=_fraction(alert)
                )
        if plan.alerts:
            requests = Chart(f"{REQUESTS} AND {api_runs}", "ALIGN_RATE", "REDUCE_SUM", 0, "requests/s", "60s")
            self._dashboard(name, dashboard_panels(plan), requests)
        self.register_outputs({})

    def _policy(
        self,
        name: str,
        alert: Alert,
        metric_filter: pulumi.Input[str],
        threshold: float,
        aligner: str,
        reducer: str | None,
        denominator: str | None = None,
        unit: str | None = None,
    ) -> None:
        period = f"{alert.minutes * 60}s"
        self._charts[alert.id] = Chart(
            metric_filter,
            aligner,
            reducer,
            threshold,
            alert.unit if unit is None else unit,
            period,
            denominator,
        )
        aggregation = monitoring.AlertPolicyConditionConditionThresholdAggregationArgs(
            alignment_period=period, per_series_aligner=aligner, cross_series_reducer=reducer
        )
        self.policies[alert.id] = monitoring.AlertPolicy(
            f"{name}-{alert.id.value}",
            display_name=alert_name(self._settings, alert.id),
            combiner="OR",
            conditions=[
                monitoring.AlertPolicyConditionArgs(
                    display_name=f"{alert.id.value} above {alert.threshold:g} {alert.unit}",
                    condition_threshold=monitoring.AlertPolicyConditionConditionThresholdArgs(
                        filter=metric_filter,
                        comparison="COMPARISON_GT",  # metric-threshold conditions take GT or LT only
                        threshold_value=threshold,
                        duration="0s",  # the aligned period is the window
                        aggregations=[aggregation],
                        denominator_filter=denominator,
                        denominator_aggregations=[
                            monitoring.AlertPolicyConditionConditionThresholdDenominatorAggregationArgs(
                                alignment_period=period,
                                per_series_aligner=aligner,
                                cross_series_reducer=reducer,
                            )
                        ]
                        if denominator is not None
                        else None,
                        # No requests is not a failure: a scaled-to-zero service reports nothing.
                        evaluation_missing_data="EVALUATION_MISSING_DATA_INACTIVE",
                    ),
                )
            ],
            documentation=monitoring.AlertPolicyDocumentationArgs(
                content=f"{alert.meaning}.\n\nWhat to do: {alert.action}.", mime_type="text/markdown"
            ),
            notification_channels=self._channels,
            user_labels={"alert": alert.id.value},
            opts=self._child,
        )

    def _log_metric(self, name: str, purpose: str, log_filter: str, description: str) -> pulumi.Output[str]:
        """A log-based counter; its name is handed out only once Cloud Monitoring knows it (see below)."""
        metric = logging.Metric(
            f"{name}-{purpose}-metric",
            name=f"mlops-stack/{self._settings.stack}/{purpose}",
            description=description,
            filter=log_filter,
            metric_descriptor=logging.MetricMetricDescriptorArgs(metric_kind="DELTA", value_type="INT64"),
            opts=self._child,
        )
        # An alert policy on a log-based metric created moments before fails with "Cannot find metric(s) that
        # match type ... it could take up to 10 minutes to become available"
        # (https://github.com/hashicorp/terraform-provider-google/issues/11102, open). The policy waits that
        # long, once: the wait runs again only when the metric is replaced.
        known = pulumiverse_time.Sleep(
            f"{name}-{purpose}-metric-known",
            create_duration=METRIC_PROPAGATION,
            triggers={"metric": metric.id},
            opts=pulumi.ResourceOptions(parent=self),
        )
        return pulumi.Output.all(metric.name, known.id).apply(lambda values: str(values[0]))

    def _dashboard(self, name: str, panels: tuple[Panel, ...], requests: Chart) -> None:
        """One chart a panel, in the shared order: the policy's own query, its threshold as a line."""
        charted = [
            (panel, requests if panel.alert is None else self._charts[panel.alert.id]) for panel in panels
        ]
        filters = pulumi.Output.all(*(chart.metric_filter for _, chart in charted))

        def layout(resolved: list[str]) -> str:
            tiles = []
            for cell, (panel, chart), metric_filter in zip(
                grid(len(charted)), charted, resolved, strict=True
            ):
                widget: dict[str, object] = {
                    "title": panel.title,
                    "xyChart": {
                        "dataSets": [{"timeSeriesQuery": _query(chart, metric_filter), "plotType": "LINE"}],
                        "thresholds": []
                        if panel.alert is None
                        else [
                            {
                                "label": panel.threshold_label(chart.threshold, chart.unit),
                                "value": chart.threshold,
                                "targetAxis": "Y1",
                            }
                        ],
                    },
                }
                tiles.append(
                    {
                        "xPos": cell.column * TILE_WIDTH,
                        "yPos": cell.row * TILE_HEIGHT,
                        "width": TILE_WIDTH,
                        "height": TILE_HEIGHT,
                        "widget": widget,
                    }
                )
            return json.dumps(
                {
                    "displayName": dashboard_name(self._settings.stack),
                    "mosaicLayout": {"columns": MOSAIC_COLUMNS, "tiles": tiles},
                }
            )

        monitoring.Dashboard(f"{name}-dashboard", dashboard_json=filters.apply(layout), opts=self._child)


def _aggregation(chart: Chart) -> dict[str, object]:
    aggregation: dict[str, object] = {"alignmentPeriod": chart.period, "perSeriesAligner": chart.aligner}
    if chart.reducer is not None:
        aggregation["crossSeriesReducer"] = chart.reducer
    return aggregation


def _query(chart: Chart, metric_filter: str) -> dict[str, object]:
    """The policy's query as a chart's: a filter, or for a share of requests the ratio of two."""
    if chart.denominator is None:
        return {"timeSeriesFilter": {"filter": metric_filter, "aggregation": _aggregation(chart)}}
    return {
        "timeSeriesFilterRatio": {
            "numerator": {"filter": metric_filter, "aggregation": _aggregation(chart)},
            "denominator": {"filter": chart.denominator, "aggregation": _aggregation(chart)},
        }
    }


def _fraction(alert: Alert) -> str:
    """The unit of a threshold that Cloud Run's ratio or Cloud SQL's utilization reads as a fraction."""
    return f"(a fraction: {alert.threshold:g} {alert.unit})"


def _user_metric(metric_name: str) -> str:
    """The filter of a user-defined log-based metric, on the Cloud Run revisions that write its lines."""
    return f'metric.type="logging.googleapis.com/user/{metric_name}" AND {RUN_RESOURCE}'
