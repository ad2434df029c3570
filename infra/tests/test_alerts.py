"""The stack's alerts, read back from each cloud's program under mocks and held to the one list in
infra/alerts.py: which alerts each environment gets, their thresholds (from config), what each watches, and
who they notify."""

import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from infra.alerts import DRIFT_EVENT, DRIFT_FIELD, RESTARTS, AlertId, alert_plan
from infra.aws.database import ALLOCATED_STORAGE_GB
from infra.azure.monitoring import TRACKING_5XX
from infra.config import STATIC_DEFAULTS, ConfigError, StackSettings
from infra.platform import load_stack_settings
from infra.tests.aws import conftest as aws
from infra.tests.azure import conftest as azure
from infra.tests.gcp import conftest as gcp
from scripts.firing_alerts import rollback_alert_names
from testing.pulumi_program import ProgramRun

ENVIRONMENTS = ["dev", "prod", "sandbox"]
GB = 1024**3
GCP_POLICY = "gcp:monitoring/alertPolicy:AlertPolicy"
AWS_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
AZURE_RULES = ("azure-native:monitor:MetricAlert", "azure-native:monitor:ScheduledQueryRule")
# What notifies someone, per cloud: created only when alertEmail is set.
NOTIFIERS = {
    "gcp": "gcp:monitoring/notificationChannel:NotificationChannel",
    "aws": "aws:sns/topicSubscription:TopicSubscription",
    "azure": "azure-native:monitor:ActionGroup",
}


def run_gcp(environment: str, **config: str) -> ProgramRun:
    return gcp.run_gcp(environment, **gcp.with_model(environment), **config)


def run_aws(environment: str, **config: str) -> ProgramRun:
    return aws.run_aws(environment, aws.with_model(environment, **config))


def run_azure(environment: str, **config: str) -> ProgramRun:
    return azure.run_azure(azure.with_model(environment, **config), azure.STACKS[environment]).run


RUNS: Mapping[str, Callable[..., ProgramRun]] = {"gcp": run_gcp, "aws": run_aws, "azure": run_azure}
CONFIGS: Mapping[str, Callable[..., dict[str, str]]] = {
    "gcp": lambda env, **c: {**gcp.config_for(env, **gcp.with_model(env)), **_full(c)},
    "aws": lambda env, **c: aws.with_model(env, **c),
    "azure": lambda env, **c: azure.with_model(env, **c),
}
STACKS = {"gcp": gcp.STACKS, "aws": aws.STACKS, "azure": azure.STACKS}


def _full(config: Mapping[str, str]) -> dict[str, str]:
    return {f"mlops-stack:{key}": value for key, value in config.items()}


def settings_of(cloud: str, environment: str, **config: str) -> StackSettings:
    values = CONFIGS[cloud](environment, **config)
    return load_stack_settings(values.get, STACKS[cloud][environment])


# --- each cloud's alerts, as the shared list's ids and thresholds -------------------------------------------


def gcp_alerts(run: ProgramRun) -> dict[AlertId, float]:
    found = {}
    for policy in run.of_type(GCP_POLICY):
        alert = AlertId(policy.inputs["userLabels"]["alert"])
        (condition,) = policy.inputs["conditions"]
        threshold = condition["conditionThreshold"]["thresholdValue"]
        if alert in (AlertId.TRACKING_UNAVAILABLE, AlertId.DATABASE_CPU, AlertId.DATABASE_STORAGE):
            threshold *= 100  # Cloud Run's ratio and Cloud SQL's utilization are fractions
        if alert is AlertId.MODEL_DRIFT:  # any line over the threshold: the threshold is in the log filter
            assert threshold == 0
            metrics = run.of_type("gcp:logging/metric:Metric")
            (metric,) = [m for m in metrics if m.inputs["name"].endswith("/model-drift")]
            threshold = float(
                re.findall(rf"jsonPayload\.{DRIFT_FIELD}>([0-9.]+)", metric.inputs["filter"])[0]
            )
        found[alert] = round(threshold, 6)
    return found


def aws_alerts(run: ProgramRun) -> dict[AlertId, float]:
    found = {}
    for alarm in run.of_type(AWS_ALARM):
        alert = AlertId(alarm.inputs["tags"]["alert"])
        threshold = alarm.inputs["threshold"]
        if alert is AlertId.DATABASE_STORAGE:  # free bytes left of the allocated storage
            threshold = 100 - threshold / GB / ALLOCATED_STORAGE_GB * 100
        found[alert] = round(threshold, 6)
    return found


def azure_alerts(run: ProgramRun) -> dict[AlertId, float]:
    found = {}
    for rule in [r for kind in AZURE_RULES for r in run.of_type(kind)]:
        (criterion,) = rule.inputs["criteria"]["allOf"]
        found[AlertId(rule.inputs["tags"]["alert"])] = criterion["threshold"]
    return found


READ_BACK: Mapping[str, Callable[[ProgramRun], dict[AlertId, float]]] = {
    "gcp": gcp_alerts,
    "aws": aws_alerts,
    "azure": azure_alerts,
}


def expected(cloud: str, settings: StackSettings) -> dict[AlertId, float]:
    """The shared list, with what each cloud cannot express as it says (its monitoring.py docstring)."""
    alerts = {alert.id: alert.threshold for alert in alert_plan(settings).alerts}
    if cloud == "aws" and settings.database_tier == "serverless":
        alerts.pop(AlertId.DATABASE_STORAGE, None)  # Aurora's storage grows by itself: no limit to near
    if cloud == "azure" and AlertId.TRACKING_UNAVAILABLE in alerts:
        alerts[AlertId.TRACKING_UNAVAILABLE] = TRACKING_5XX  # no ratio in a metric alert: a count of 5xx
    return alerts


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("cloud", ["gcp", "aws", "azure"])
def test_each_cloud_creates_the_shared_alert_list_with_its_thresholds(cloud: str, environment: str) -> None:
    run = RUNS[cloud](environment)
    alerts = READ_BACK[cloud](run)
    assert alerts == expected(cloud, settings_of(cloud, environment))
    if environment == "sandbox":
        assert alerts == {}
        stack = STACKS[cloud][environment]  # nor channels, metrics, rules or dashboards:
        assert not [r for r in run.resources if r.name.startswith(f"{stack}-monitoring")]
    else:
        assert set(alerts) >= {AlertId.API_5XX, AlertId.API_P99, AlertId.MODEL_DRIFT, AlertId.DATABASE_CPU}


@pytest.mark.parametrize("cloud", ["gcp", "aws", "azure"])
def test_thresholds_come_from_config(cloud: str) -> None:
    config = {
        "alertApi5xxCount": "12",
        "alertApiP99Ms": "750",
        "alertDatabasePercent": "90",
        "alertDriftPsi": "0.35",
    }
    alerts = READ_BACK[cloud](RUNS[cloud]("prod", **config))
    assert alerts[AlertId.API_5XX] == 12
    assert alerts[AlertId.API_P99] == 750
    assert alerts[AlertId.DATABASE_CPU] == 90
    assert alerts[AlertId.MODEL_DRIFT] == 0.35
    assert alerts[AlertId.API_RESTARTS] == RESTARTS
    assert alerts == expected(cloud, settings_of(cloud, "prod", **config))


@pytest.mark.parametrize("cloud", ["gcp", "aws", "azure"])
def test_alerts_notify_the_configured_email_and_nobody_by_default(cloud: str) -> None:
    quiet = RUNS[cloud]("dev")
    assert quiet.of_type(NOTIFIERS[cloud]) == []
    loud = RUNS[cloud]("dev", alertEmail="ml-oncall@example.com")
    (notifier,) = loud.of_type(NOTIFIERS[cloud])
    assert "ml-oncall@example.com" in str(notifier.inputs)
    targets = {
        "gcp": lambda r: r.inputs["notificationChannels"],
        "aws": lambda r: r.inputs["alarmActions"],
        "azure": lambda r: r.inputs.get("actions"),
    }
    rules = (
        loud.of_type(GCP_POLICY)
        if cloud == "gcp"
        else loud.of_type(AWS_ALARM)
        if cloud == "aws"
        else [r for kind in AZURE_RULES for r in loud.of_type(kind)]
    )
    assert rules
    assert all(targets[cloud](rule) for rule in rules)
    quiet_rules = quiet.of_type(AZURE_RULES[0]) if cloud == "azure" else []
    assert all(not rule.inputs.get("actions") for rule in quiet_rules)


@pytest.mark.parametrize("cloud", ["gcp", "aws", "azure"])
def test_without_a_pinned_model_only_the_platform_is_watched(cloud: str) -> None:
    run = (
        gcp.run_gcp("dev")
        if cloud == "gcp"
        else aws.run_aws("dev")
        if cloud == "aws"
        else azure.run_azure(azure.config_for("dev"), azure.STACKS["dev"]).run
    )
    assert set(READ_BACK[cloud](run)) <= {
        AlertId.TRACKING_UNAVAILABLE,
        AlertId.DATABASE_CPU,
        AlertId.DATABASE_STORAGE,
    }


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("alertDriftPsi", "0", "alertDriftPsi: 0 is out of range"),
        ("alertDriftPsi", "high", "alertDriftPsi: 'high' is not a number"),
        ("alertApi5xxCount", "0", "alertApi5xxCount: 0 is out of range"),
        ("alertApiP99Ms", "2s", "alertApiP99Ms: '2s' is not a whole number"),
        ("alertDatabasePercent", "100", "alertDatabasePercent: 100 is out of range"),
        ("alertEmail", "oncall", "alertEmail: 'oncall' is malformed"),
    ],
)
def test_bad_alert_config_fails_before_any_resource_with_how_to_fix(
    key: str, value: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        settings_of("gcp", "dev", **{key: value})
    (found,) = [p for p in raised.value.problems if problem in p]
    assert ";" in found  # every problem says how to fix it after the semicolon


def test_the_drift_alerts_read_the_line_the_api_writes() -> None:
    """The names infra matches on are the ones service/monitoring.py writes, and by default the alert fires
    where the API itself calls it drift."""
    from service import monitoring
    from service.settings import Settings as ServiceSettings

    assert monitoring.DRIFT_EVENT == DRIFT_EVENT
    assert (
        float(STATIC_DEFAULTS["alertDriftPsi"])
        == ServiceSettings.model_fields["monitoring_psi_threshold"].default
    )
    source = inspect.getsource(monitoring.drift_log_line)
    assert f'"{DRIFT_FIELD}":' in source
    assert '"event": DRIFT_EVENT' in source


# --- what each cloud's alerts watch -------------------------------------------------------------------------


def _one(resources: list[Any], alert: AlertId, key: str = "userLabels") -> Any:
    (found,) = [r for r in resources if (r.inputs.get(key) or {}).get("alert") == alert.value]
    return found


def test_gcp_alerts_watch_cloud_run_cloud_sql_and_the_drift_line() -> None:
    run = run_gcp("prod")
    policies = run.of_type(GCP_POLICY)
    api_5xx = _one(policies, AlertId.API_5XX).inputs["conditions"][0]["conditionThreshold"]
    assert 'metric.type="run.googleapis.com/request_count"' in api_5xx["filter"]
    assert 'resource.label.service_name="gcp-prod-api"' in api_5xx["filter"]
    assert 'metric.label.response_code_class="5xx"' in api_5xx["filter"]
    p99 = _one(policies, AlertId.API_P99).inputs["conditions"][0]["conditionThreshold"]
    assert p99["aggregations"][0]["perSeriesAligner"] == "ALIGN_PERCENTILE_99"
    tracking = _one(policies, AlertId.TRACKING_UNAVAILABLE).inputs["conditions"][0]["conditionThreshold"]
    assert 'service_name="gcp-prod-tracking"' in tracking["denominatorFilter"]
    cpu = _one(policies, AlertId.DATABASE_CPU).inputs["conditions"][0]["conditionThreshold"]
    assert 'resource.label.database_id="acme-ml:' in cpu["filter"]
    metrics = {m.inputs["name"]: m.inputs["filter"] for m in run.of_type("gcp:logging/metric:Metric")}
    drift = metrics["mlops-stack/gcp-prod/model-drift"]
    assert f'jsonPayload.event="{DRIFT_EVENT}"' in drift
    assert 'service_name="gcp-prod-api"' in drift
    assert "severity>=ERROR" in metrics["mlops-stack/gcp-prod/api-restarts"]
    for alert, metric in ((AlertId.MODEL_DRIFT, "model-drift"), (AlertId.API_RESTARTS, "api-restarts")):
        policy = _one(policies, alert)
        condition = policy.inputs["conditions"][0]["conditionThreshold"]
        assert f'"logging.googleapis.com/user/mlops-stack/gcp-prod/{metric}"' in condition["filter"]
        # created only once Cloud Monitoring can know the new metric (the provider's open issue 11102)
        wait = run.named(f"gcp-prod-monitoring-{metric}-metric-known")
        assert wait.inputs["createDuration"] == "10m"
        assert wait.urn in policy.dependencies
    assert len(run.of_type("gcp:monitoring/dashboard:Dashboard")) == 1


def test_aws_alarms_read_both_target_groups_of_each_service_and_the_drift_metric_filter() -> None:
    run = run_aws("prod")
    alarms = run.of_type(AWS_ALARM)
    api_name = aws.express_service(run, "api").inputs["serviceName"]
    groups = {arn.split(":", 5)[5] for arn in aws.target_group_arns(api_name)}
    queries = _one(alarms, AlertId.API_5XX, "tags").inputs["metricQueries"]
    read = {q["metric"]["dimensions"]["TargetGroup"] for q in queries if q.get("metric")}
    assert read == groups
    assert {q["metric"]["metricName"] for q in queries if q.get("metric")} == {"HTTPCode_Target_5XX_Count"}
    (total,) = [q for q in queries if q.get("returnData")]
    assert total["expression"] == "FILL(e0, 0) + FILL(e1, 0)"
    p99 = _one(alarms, AlertId.API_P99, "tags").inputs["metricQueries"]
    assert {q["metric"]["stat"] for q in p99 if q.get("metric")} == {"p99"}
    assert [q["expression"] for q in p99 if q.get("returnData")] == ["1000 * MAX([FILL(t0, 0), FILL(t1, 0)])"]
    (drift_filter,) = run.of_type("aws:cloudwatch/logMetricFilter:LogMetricFilter")
    assert drift_filter.inputs["pattern"] == f'{{ $.event = "{DRIFT_EVENT}" }}'
    assert drift_filter.inputs["metricTransformation"]["value"] == f"$.{DRIFT_FIELD}"
    assert drift_filter.inputs["logGroupName"] == "/mlops-stack/aws-prod/api"
    (rule,) = run.of_type("aws:cloudwatch/eventRule:EventRule")
    pattern = rule.inputs["eventPattern"]
    assert f'"service:{api_name}"' in pattern
    assert "EssentialContainerExited" in pattern
    assert all(alarm.inputs["treatMissingData"] == "notBreaching" for alarm in alarms)


def test_azure_alerts_watch_container_apps_postgres_and_the_drift_line() -> None:
    run = run_azure("prod")
    rules = run.of_type(AZURE_RULES[0])
    api_5xx = _one(rules, AlertId.API_5XX, "tags").inputs
    (criterion,) = api_5xx["criteria"]["allOf"]
    assert (criterion["metricNamespace"], criterion["metricName"]) == (
        "Microsoft.App/containerApps",
        "Requests",
    )
    assert criterion["dimensions"] == [
        {"name": "statusCodeCategory", "operator": "Include", "values": ["5xx"]}
    ]
    assert api_5xx["scopes"] == ["azure-prod-api-service-app-id"]
    storage = _one(rules, AlertId.DATABASE_STORAGE, "tags").inputs["criteria"]["allOf"][0]
    assert storage["metricName"] == "storage_percent"
    (drift,) = run.of_type(AZURE_RULES[1])
    (condition,) = drift.inputs["criteria"]["allOf"]
    assert drift.inputs["scopes"] == ["azure-prod-apps-logs-id"]
    assert 'ContainerAppName == "azure-prod-model-api"' in condition["query"]
    assert condition["metricMeasureColumn"] == DRIFT_FIELD
    assert drift.inputs["evaluationFrequency"] == "PT15M"


@pytest.mark.parametrize("cloud", ["gcp", "aws", "azure"])
def test_the_bake_asks_for_the_api_alerts_by_the_names_each_cloud_gives_them(cloud: str) -> None:
    """scripts/firing_alerts.py looks alerts up by name; the names are what the program creates."""
    run = RUNS[cloud]("prod")
    names_of = {
        "gcp": [p.inputs["displayName"] for p in run.of_type(GCP_POLICY)],
        "aws": [a.inputs["name"] for a in run.of_type(AWS_ALARM)],
        "azure": [r.inputs["ruleName"] for kind in AZURE_RULES for r in run.of_type(kind)],
    }[cloud]
    stack = STACKS[cloud]["prod"]
    assert set(rollback_alert_names(stack)) <= set(names_of)
