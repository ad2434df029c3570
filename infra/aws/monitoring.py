"""The stack's CloudWatch alarms and dashboard (the list itself is infra/alerts.py).

- The API's 5xx and p99 latency, and the tracking server's health, from the metrics of the load balancer
  Express Mode puts in front of each service (`AWS/ApplicationELB`: `HTTPCode_Target_5XX_Count`,
  `TargetResponseTime` in seconds, `HealthyHostCount`/`UnHealthyHostCount`, per `TargetGroup` and
  `LoadBalancer`: https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html).
  Express Mode makes the load balancer and target groups itself and the provider does not export them, so
  the program looks them up from the ECS service (DescribeServices: its target group and, for the canary
  deployments Express runs, the alternate one it shifts traffic to:
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/express-service-update-full.html). Each alarm
  reads both target groups, so it keeps watching whichever one serves after a deployment. A new stack's
  preview cannot know them (the service does not exist yet); `up` looks them up once the service exists.
- Crash loops from ECS's own task events: an EventBridge rule matching the API's tasks that stopped because
  they failed to start or their container exited (`ECS Task State Change`,
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_task_events.html), counted by EventBridge's
  `MatchedEvents` metric per rule. A rule on AWS service events costs nothing.
- The database's `CPUUtilization` (RDS) or `ACUUtilization` (Aurora Serverless v2: percent of its maximum
  capacity) and `FreeStorageSpace` (RDS; Aurora's storage grows by itself, so it has no storage alarm):
  https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-serverless-v2.viewing.monitoring.html
- Drift from the API's JSON log line through a CloudWatch Logs metric filter `{ $.event = "model_drift" }`
  whose value is `$.max_psi` (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html):
  a custom metric that gets a data point only when the API writes the line.

One CloudWatch dashboard, `<stack>-mlops-stack` (infra/dashboards.py lists its panels): each alarm's own
metric queries drawn with its threshold as a horizontal annotation, and the API's `RequestCount`
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html).
Dashboards take no tags in the provider (aws.cloudwatch.Dashboard has no `tags`), so the tag-based environment
fence cannot cover them; the deploy identity's dashboard fence matches the name instead (infra/aws/fence.py,
`dashboard_fence`). A dashboard costs 3 USD a month beyond the first 3 of the account
(https://aws.amazon.com/cloudwatch/pricing/).

Standard alarms are billed per alarm per month; none here is high-resolution. The SNS topic and its email
subscription exist only when `alertEmail` is set (the address must confirm the subscription once).
"""

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_aws import cloudwatch, ecs, lb, sns

from infra.alerts import DRIFT_EVENT, DRIFT_FIELD, Alert, AlertId, AlertPlan, alert_name
from infra.aws.database import ALLOCATED_STORAGE_GB, TrackingDatabase
from infra.aws.express import ExpressService
from infra.config import StackSettings
from infra.dashboards import Panel, dashboard_name, dashboard_panels, grid

ELB = "AWS/ApplicationELB"
# Widgets on the dashboard's 24-unit-wide grid: two a row.
WIDGET_WIDTH = 12
WIDGET_HEIGHT = 6
# The request rate's resolution: the load balancer publishes per minute, and no alarm sums it over longer.
REQUESTS_PERIOD_SECONDS = 60
DRIFT_NAMESPACE = "mlops-stack"
GB = 1024**3
# ECS's stop codes of a task that did not start or whose essential container exited (not a scale-in or a
# deployment replacing it): https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html
CRASH_STOP_CODES = ["TaskFailedToStart", "EssentialContainerExited"]


@dataclass(frozen=True)
class LoadBalancing:
    """The CloudWatch dimension values of a service's load balancer and target groups."""

    load_balancer: str  # app/<name>/<id>
    target_groups: tuple[str, ...]  # targetgroup/<name>/<id>, one or two (canary deployments)


@dataclass(frozen=True)
class Chart:
    """What an alarm reads and where it fires, for its dashboard panel."""

    queries: pulumi.Output[list[cloudwatch.MetricAlarmMetricQueryArgs]]
    threshold: float
    unit: str
    below: bool  # fires below the threshold (free storage), not above it


@dataclass(frozen=True, kw_only=True)
class StackMonitoringArgs:
    settings: StackSettings
    plan: AlertPlan
    cluster_name: pulumi.Input[str]
    tracking: ExpressService
    api: ExpressService | None
    database: TrackingDatabase


class StackMonitoring(pulumi.ComponentResource):
    alarms: dict[AlertId, cloudwatch.MetricAlarm]
    dashboard: cloudwatch.Dashboard | None

    def __init__(
        self, name: str, args: StackMonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops-stack:aws:StackMonitoring", name, None, opts)
        settings, plan = args.settings, args.plan
        self._child = pulumi.ResourceOptions(parent=self)
        self._settings = settings
        self._actions: list[pulumi.Output[str]] = []
        self._charts: dict[AlertId, Chart] = {}
        self._api_balancing: pulumi.Output[LoadBalancing] | None = None
        if plan.email is not None:
            topic = sns.Topic(f"{name}-alerts", opts=self._child)
            sns.TopicSubscription(
                f"{name}-email", topic=topic.arn, protocol="email", endpoint=plan.email, opts=self._child
            )
            self._actions.append(topic.arn)
        tracking = load_balancing(f"{name}-tracking", args.cluster_name, args.tracking.service_name, self)
        self.alarms = {}
        for alert in plan.alerts:
            if alert.id is AlertId.TRACKING_UNAVAILABLE:
                failing = functools.partial(_unhealthy_percent, period=_seconds(alert))
                self._alarm(name, alert, tracking.apply(failing))
            elif alert.id is AlertId.DATABASE_CPU:
                metric = "ACUUtilization" if args.database.is_serverless else "CPUUtilization"
                self._alarm(
                    name, alert, _database(args.database, metric, "Average", _seconds(alert)), alert.threshold
                )
            elif alert.id is AlertId.DATABASE_STORAGE and not args.database.is_serverless:
                free_gb = ALLOCATED_STORAGE_GB * (100 - alert.threshold) / 100
                storage = _database(args.database, "FreeStorageSpace", "Minimum", _seconds(alert))
                self._alarm(name, alert, storage, free_gb * GB, "LessThanThreshold", unit="bytes free")
            elif args.api is not None:
                self._api_alarm(name, alert, args.api, args.cluster_name)
        self.dashboard = None
        if plan.alerts:
            requests = None
            if args.api is not None:
                requests = self._balancing(name, args.api, args.cluster_name).apply(
                    lambda b: _request_count(b, REQUESTS_PERIOD_SECONDS)
                )
            self.dashboard = self._dashboard(name, dashboard_panels(plan), requests)
        self.register_outputs({})

    def _balancing(
        self, name: str, api: ExpressService, cluster: pulumi.Input[str]
    ) -> pulumi.Output[LoadBalancing]:
        """The API's load balancing, looked up once for its alarms and its dashboard panel."""
        if self._api_balancing is None:
            self._api_balancing = load_balancing(f"{name}-api", cluster, api.service_name, self)
        return self._api_balancing

    def _dashboard(
        self,
        name: str,
        panels: Sequence[Panel],
        requests: pulumi.Output[list[cloudwatch.MetricAlarmMetricQueryArgs]] | None,
    ) -> cloudwatch.Dashboard:
        """One metric widget a panel, in the shared order; a panel whose alarm this stack lacks (Aurora's
        storage) is left out, as its alarm is."""
        charted: list[tuple[Panel, pulumi.Output[list[cloudwatch.MetricAlarmMetricQueryArgs]], Chart | None]]
        charted = []
        for panel in panels:
            if panel.alert is None:
                if requests is not None:
                    charted.append((panel, requests, None))
            elif (chart := self._charts.get(panel.alert.id)) is not None:
                charted.append((panel, chart.queries, chart))
        region = self._settings.region

        def body(resolved: list[list[cloudwatch.MetricAlarmMetricQueryArgs]]) -> str:
            widgets = []
            for cell, (panel, _, chart), queries in zip(grid(len(charted)), charted, resolved, strict=True):
                properties: dict[str, Any] = {
                    "title": panel.title,
                    "region": region,
                    "view": "timeSeries",
                    "stacked": False,
                    "metrics": _widget_metrics(queries),
                }
                if chart is not None:
                    properties["annotations"] = {
                        "horizontal": [
                            {
                                "label": panel.threshold_label(
                                    chart.threshold, chart.unit, below=chart.below
                                ),
                                "value": chart.threshold,
                            }
                        ]
                    }
                    properties["yAxis"] = {"left": {"label": chart.unit, "showUnits": False}}
                widgets.append(
                    {
                        "type": "metric",
                        "x": cell.column * WIDGET_WIDTH,
                        "y": cell.row * WIDGET_HEIGHT,
                        "width": WIDGET_WIDTH,
                        "height": WIDGET_HEIGHT,
                        "properties": properties,
                    }
                )
            return json.dumps({"widgets": widgets})

        queries = pulumi.Output.all(*(queries for _, queries, _ in charted))
        return cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=dashboard_name(self._settings.stack),
            dashboard_body=queries.apply(body),
            opts=self._child,
        )

    def _api_alarm(self, name: str, alert: Alert, api: ExpressService, cluster: pulumi.Input[str]) -> None:
        if alert.id is AlertId.API_5XX:
            balancing = self._balancing(name, api, cluster)
            self._alarm(name, alert, balancing.apply(lambda b: _target_5xx(b, _seconds(alert))))
        elif alert.id is AlertId.API_P99:
            balancing = self._balancing(name, api, cluster)
            self._alarm(name, alert, balancing.apply(lambda b: _p99_ms(b, _seconds(alert))))
        elif alert.id is AlertId.API_RESTARTS:
            rule = cloudwatch.EventRule(
                f"{name}-api-crashes",
                description=f"{self._settings.stack}: model API tasks that failed to start or exited",
                event_pattern=pulumi.Output.from_input(api.service_name).apply(_crash_pattern),
                opts=self._child,
            )
            crashes = rule.name.apply(
                lambda rule_name: [
                    _metric(
                        "crashes",
                        "AWS/Events",
                        "MatchedEvents",
                        {"RuleName": rule_name},
                        "Sum",
                        _seconds(alert),
                    )
                ]
            )
            self._alarm(name, alert, crashes)
        elif alert.id is AlertId.MODEL_DRIFT:
            metric_name = f"{self._settings.stack}-{DRIFT_FIELD}"
            cloudwatch.LogMetricFilter(
                f"{name}-drift",
                log_group_name=api.log_group_name,
                pattern=f'{{ $.event = "{DRIFT_EVENT}" }}',
                metric_transformation=cloudwatch.LogMetricFilterMetricTransformationArgs(
                    name=metric_name, namespace=DRIFT_NAMESPACE, value=f"$.{DRIFT_FIELD}", unit="None"
                ),
                opts=self._child,
            )
            drift = [_metric("drift", DRIFT_NAMESPACE, metric_name, {}, "Maximum", _seconds(alert))]
            self._alarm(name, alert, drift)

    def _alarm(
        self,
        name: str,
        alert: Alert,
        queries: pulumi.Input[Sequence[cloudwatch.MetricAlarmMetricQueryArgs]],
        threshold: float | None = None,
        comparison: str = "GreaterThanThreshold",
        unit: str | None = None,
    ) -> None:
        limit = alert.threshold if threshold is None else threshold
        self._charts[alert.id] = Chart(
            pulumi.Output.from_input(queries).apply(list),
            limit,
            alert.unit if unit is None else unit,
            below=comparison == "LessThanThreshold",
        )
        self.alarms[alert.id] = cloudwatch.MetricAlarm(
            f"{name}-{alert.id.value}",
            name=alert_name(self._settings, alert.id),
            alarm_description=f"{alert.meaning}. What to do: {alert.action}.",
            comparison_operator=comparison,
            threshold=limit,
            evaluation_periods=1,
            metric_queries=queries,
            # No requests or no drift line is not a failure (an idle API, a paused database).
            treat_missing_data="notBreaching",
            alarm_actions=self._actions,
            ok_actions=self._actions,
            tags={"alert": alert.id.value},
            opts=self._child,
        )


def load_balancing(
    name: str, cluster: pulumi.Input[str], service_name: pulumi.Input[str], parent: pulumi.Resource
) -> pulumi.Output[LoadBalancing]:
    """Look up the load balancer and target groups Express Mode made for the service (see the docstring)."""
    options = pulumi.InvokeOutputOptions(parent=parent)
    service = ecs.get_service_output(cluster_arn=cluster, service_name=service_name, opts=options)

    def target_groups(balancers: Sequence[Any]) -> list[str]:
        arns = []
        for balancer in balancers or []:
            arns.append(balancer.target_group_arn)
            arns += [c.alternate_target_group_arn for c in balancer.advanced_configurations or []]
        if not arns:
            raise pulumi.RunError(
                f"{name}: ECS reports no load balancer target group for the service, so its alarms have "
                "nothing to read; `aws ecs describe-services --cluster <stack> --services <service> --query "
                "'services[].loadBalancers'` shows what it has (README first-deploy checklist)"
            )
        return arns

    arns = service.load_balancers.apply(target_groups)
    first = lb.get_target_group_output(arn=arns.apply(lambda a: a[0]), opts=options)
    return pulumi.Output.all(first.load_balancer_arns, arns).apply(
        lambda values: LoadBalancing(
            _dimension(sorted(values[0])[0], "loadbalancer/"),
            tuple(_dimension(arn, "") for arn in values[1]),
        )
    )


def _dimension(arn: str, after: str) -> str:
    """`arn:…:loadbalancer/app/n/id` -> `app/n/id`; `arn:…:targetgroup/n/id` -> `targetgroup/n/id`."""
    resource = arn.split(":", 5)[5]
    return resource.removeprefix(after)


def _seconds(alert: Alert) -> int:
    """Every metric of an alarm is aggregated over the alert's whole window: one evaluation period."""
    return alert.minutes * 60


def _metric(
    query_id: str,
    namespace: str,
    metric: str,
    dimensions: Mapping[str, str],
    stat: str,
    period: int,
    returned: bool = True,
) -> cloudwatch.MetricAlarmMetricQueryArgs:
    """One metric of an alarm; `returned`: the alarm's value itself (else an input of an expression)."""
    return cloudwatch.MetricAlarmMetricQueryArgs(
        id=query_id,
        return_data=returned,
        metric=cloudwatch.MetricAlarmMetricQueryMetricArgs(
            namespace=namespace, metric_name=metric, dimensions=dict(dimensions), stat=stat, period=period
        ),
    )


def _per_target_group(
    balancing: LoadBalancing, prefix: str, metric: str, stat: str, period: int
) -> tuple[list[cloudwatch.MetricAlarmMetricQueryArgs], list[str]]:
    queries = [
        _metric(
            f"{prefix}{i}",
            ELB,
            metric,
            {"LoadBalancer": balancing.load_balancer, "TargetGroup": group},
            stat,
            period,
            returned=False,
        )
        for i, group in enumerate(balancing.target_groups)
    ]
    return queries, [f"FILL({prefix}{i}, 0)" for i in range(len(queries))]


def _expression(query_id: str, expression: str, label: str) -> cloudwatch.MetricAlarmMetricQueryArgs:
    return cloudwatch.MetricAlarmMetricQueryArgs(
        id=query_id, expression=expression, label=label, return_data=True
    )


def _target_5xx(balancing: LoadBalancing, period: int) -> list[cloudwatch.MetricAlarmMetricQueryArgs]:
    queries, filled = _per_target_group(balancing, "e", "HTTPCode_Target_5XX_Count", "Sum", period)
    return [*queries, _expression("total", " + ".join(filled), "5xx responses")]


def _p99_ms(balancing: LoadBalancing, period: int) -> list[cloudwatch.MetricAlarmMetricQueryArgs]:
    queries, filled = _per_target_group(balancing, "t", "TargetResponseTime", "p99", period)
    return [*queries, _expression("p99", f"1000 * MAX([{', '.join(filled)}])", "p99 latency (ms)")]


def _request_count(balancing: LoadBalancing, period: int) -> list[cloudwatch.MetricAlarmMetricQueryArgs]:
    queries, filled = _per_target_group(balancing, "r", "RequestCount", "Sum", period)
    return [*queries, _expression("requests", " + ".join(filled), "requests")]


def _widget_metrics(queries: Sequence[cloudwatch.MetricAlarmMetricQueryArgs]) -> list[list[Any]]:
    """An alarm's metric queries as a metric widget's `metrics` rows: a metric is `[namespace, name,
    dimension, value, ..., {rendering}]`, an expression `[{expression, label, id}]`; the queries an expression
    reads are drawn hidden, as the alarm returns only the expression."""
    rows: list[list[Any]] = []
    for query in queries:
        if query.expression:
            rows.append([{"expression": query.expression, "label": query.label, "id": query.id}])
            continue
        metric = query.metric
        if metric is None:
            raise ValueError(f"alarm query {query.id} has neither a metric nor an expression")
        dimensions = [part for key, value in (metric.dimensions or {}).items() for part in (key, value)]
        rendering = {
            "id": query.id,
            "stat": metric.stat,
            "period": metric.period,
            "visible": bool(query.return_data),
        }
        rows.append([metric.namespace, metric.metric_name, *dimensions, rendering])
    return rows


def _unhealthy_percent(balancing: LoadBalancing, period: int) -> list[cloudwatch.MetricAlarmMetricQueryArgs]:
    unhealthy, bad = _per_target_group(balancing, "u", "UnHealthyHostCount", "Maximum", period)
    healthy, good = _per_target_group(balancing, "h", "HealthyHostCount", "Minimum", period)
    failing, total = " + ".join(bad), " + ".join(bad + good)
    return [
        *unhealthy,
        *healthy,
        _expression("failing", f"100 * ({failing}) / ({total})", "% tasks unhealthy"),
    ]


def _database(
    database: TrackingDatabase, metric: str, stat: str, period: int
) -> list[cloudwatch.MetricAlarmMetricQueryArgs]:
    return [
        _metric("db", "AWS/RDS", metric, {"DBInstanceIdentifier": database.instance_identifier}, stat, period)
    ]


def _crash_pattern(service_name: str) -> str:
    return json.dumps(
        {
            "source": ["aws.ecs"],
            "detail-type": ["ECS Task State Change"],
            "detail": {
                "group": [f"service:{service_name}"],
                "lastStatus": ["STOPPED"],
                "stopCode": CRASH_STOP_CODES,
            },
        }
    )
