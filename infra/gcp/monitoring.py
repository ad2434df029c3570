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
"""

import json
from dataclasses import dataclass

import pulumi
import pulumi_gcp.logging as logging
import pulumi_gcp.monitoring as monitoring
import pulumiverse_time

from infra.alerts import DRIFT_EVENT, DRIFT_FIELD, Alert, AlertId, AlertPlan, alert_name
from infra.config import StackSettings
from infra.gcp.cloud_run import service_name

RUN_RESOURCE = 'resource.type="cloud_run_revision"'
REQUESTS = 'metric.type="run.googleapis.com/request_count"'
LATENCIES = 'metric.type="run.googleapis.com/request_latencies"'
SYSTEM_LOG = 'logName:"run.googleapis.com%2Fvarlog%2Fsystem"'
METRIC_PROPAGATION = "10m"  # how long a new log-based metric may take to reach Cloud Monitoring


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
                )
            elif alert.id is AlertId.DATABASE_CPU:
                cpu = pulumi.Output.concat(
                    'metric.type="cloudsql.googleapis.com/database/cpu/utilization" AND ', sql
                )
                self._policy(name, alert, cpu, alert.threshold / 100, "ALIGN_MEAN", None)
            elif alert.id is AlertId.DATABASE_STORAGE:
                disk = pulumi.Output.concat(
                    'metric.type="cloudsql.googleapis.com/database/disk/utilization" AND ', sql
                )
                self._policy(name, alert, disk, alert.threshold / 100, "ALIGN_MEAN", None)
        if plan.alerts:
            self._dashboard(name, api, tracking, sql)
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
    ) -> None:
        period = f"{alert.minutes * 60}s"
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

    def _dashboard(self, name: str, api: str, tracking: str, sql: pulumi.Output[str]) -> None:
        def chart(
            title: str, metric_filter: str, aligner: str, reducer: str = "REDUCE_SUM"
        ) -> dict[str, object]:
            query = {
                "timeSeriesFilter": {
                    "filter": metric_filter,
                    "aggregation": {
                        "alignmentPeriod": "60s",
                        "perSeriesAligner": aligner,
                        "crossSeriesReducer": reducer,
                        "groupByFields": [],
                    },
                }
            }
            return {"title": title, "xyChart": {"dataSets": [{"timeSeriesQuery": query, "plotType": "LINE"}]}}

        def layout(sql_filter: str) -> str:
            run = RUN_RESOURCE
            charts = [
                chart(
                    "API requests",
                    f'{REQUESTS} AND {run} AND resource.label.service_name="{api}"',
                    "ALIGN_RATE",
                ),
                chart(
                    "API 5xx",
                    f'{REQUESTS} AND {run} AND resource.label.service_name="{api}" '
                    'AND metric.label.response_code_class="5xx"',
                    "ALIGN_RATE",
                ),
                chart(
                    "API p99 latency (ms)",
                    f'{LATENCIES} AND {run} AND resource.label.service_name="{api}"',
                    "ALIGN_PERCENTILE_99",
                    "REDUCE_MAX",
                ),
                chart(
                    "Tracking 5xx",
                    f'{REQUESTS} AND {run} AND resource.label.service_name="{tracking}" '
                    'AND metric.label.response_code_class="5xx"',
                    "ALIGN_RATE",
                ),
                chart(
                    "Database CPU",
                    f'metric.type="cloudsql.googleapis.com/database/cpu/utilization" AND {sql_filter}',
                    "ALIGN_MEAN",
                    "REDUCE_MAX",
                ),
                chart(
                    "Database disk",
                    f'metric.type="cloudsql.googleapis.com/database/disk/utilization" AND {sql_filter}',
                    "ALIGN_MEAN",
                    "REDUCE_MAX",
                ),
            ]
            tiles = [
                {"xPos": (i % 2) * 6, "yPos": (i // 2) * 4, "width": 6, "height": 4, "widget": widget}
                for i, widget in enumerate(charts)
            ]
            return json.dumps(
                {
                    "displayName": f"{self._settings.stack} mlops-stack",
                    "mosaicLayout": {"columns": 12, "tiles": tiles},
                }
            )

        monitoring.Dashboard(f"{name}-dashboard", dashboard_json=sql.apply(layout), opts=self._child)


def _user_metric(metric_name: str) -> str:
    """The filter of a user-defined log-based metric, on the Cloud Run revisions that write its lines."""
    return f'metric.type="logging.googleapis.com/user/{metric_name}" AND {RUN_RESOURCE}'
