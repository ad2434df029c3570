"""The stack's dashboard, read back from each cloud's program under mocks: one per stack but sandboxes, its
panels in the shared order (infra/dashboards.py), and every chart holding the same metric query as the alert
it shows, with that alert's threshold (from config) drawn where the cloud can draw it. The dashboards are
parsed from what the program sends, never matched as whole strings."""

import json
from typing import Any

import pytest

from infra.alerts import DRIFT_EVENT, DRIFT_FIELD, AlertId, alert_plan
from infra.azure.monitoring import AGGREGATION_TYPES, drift_query
from infra.azure.roles import BuiltInRole
from infra.dashboards import API_REQUESTS_TITLE, TITLES, dashboard_name, dashboard_panels
from infra.tests import test_alerts as alerts
from infra.tests.aws import conftest as aws
from infra.tests.azure import conftest as azure
from infra.tests.gcp import conftest as gcp
from testing.pulumi_program import ProgramRun

ENVIRONMENTS = ["dev", "prod", "sandbox"]
DASHBOARDS = {
    "gcp": "gcp:monitoring/dashboard:Dashboard",
    "aws": "aws:cloudwatch/dashboard:Dashboard",
    "azure": "azure-native:portal:Dashboard",
}
# Thresholds unlike the defaults, so a chart drawing a default would show.
THRESHOLDS = {
    "alertApi5xxCount": "12",
    "alertApiP99Ms": "750",
    "alertDatabasePercent": "90",
    "alertDriftPsi": "0.35",
}


def _panels(cloud: str, run: ProgramRun) -> dict[str, dict[str, Any]]:
    """The cloud's dashboard as {title: chart} (Azure's metric tiles: title without its threshold)."""
    (dashboard,) = run.of_type(DASHBOARDS[cloud])
    if cloud == "gcp":
        tiles = json.loads(dashboard.inputs["dashboardJson"])["mosaicLayout"]["tiles"]
        return {tile["widget"]["title"]: tile["widget"] for tile in tiles}
    if cloud == "aws":
        widgets = json.loads(dashboard.inputs["dashboardBody"])["widgets"]
        return {widget["properties"]["title"]: widget["properties"] for widget in widgets}
    found = {}
    for part in dashboard.inputs["properties"]["lenses"][0]["parts"]:
        metadata = part["metadata"]
        if metadata["type"].endswith("LogsDashboardPart"):
            inputs = {i["name"]: i.get("value") for i in metadata["inputs"]}
            found[inputs["PartTitle"]] = inputs
        else:
            chart = metadata["settings"]["content"]["options"]["chart"]
            found[chart["title"].split(" (alert ")[0]] = chart
    return found


def _name(cloud: str, run: ProgramRun) -> str:
    (dashboard,) = run.of_type(DASHBOARDS[cloud])
    if cloud == "gcp":
        return str(json.loads(dashboard.inputs["dashboardJson"])["displayName"])
    return str(dashboard.inputs["dashboardName"])


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("cloud", ["gcp", "aws", "azure"])
def test_each_stack_but_a_sandbox_has_one_dashboard_with_the_shared_panels(
    cloud: str, environment: str
) -> None:
    run = alerts.RUNS[cloud](environment)
    if environment == "sandbox":
        assert run.of_type(DASHBOARDS[cloud]) == []
        return
    assert _name(cloud, run) == dashboard_name(alerts.STACKS[cloud][environment])
    settings = alerts.settings_of(cloud, environment)
    expected = [panel.title for panel in dashboard_panels(alert_plan(settings))]
    if cloud == "aws" and settings.database_tier == "serverless":
        expected.remove(TITLES[AlertId.DATABASE_STORAGE])  # as its alarm: Aurora's storage grows by itself
    assert list(_panels(cloud, run)) == expected
    assert expected[0] == API_REQUESTS_TITLE


@pytest.mark.parametrize("cloud", ["gcp", "aws", "azure"])
def test_without_a_pinned_model_the_dashboard_shows_the_platform_only(cloud: str) -> None:
    run = {
        "gcp": lambda: gcp.run_gcp("dev"),
        "aws": lambda: aws.run_aws("dev"),
        "azure": lambda: azure.run_azure(azure.config_for("dev"), azure.STACKS["dev"]).run,
    }[cloud]()
    platform = {TITLES[AlertId.TRACKING_UNAVAILABLE], TITLES[AlertId.DATABASE_CPU]}
    assert platform <= set(_panels(cloud, run)) <= platform | {TITLES[AlertId.DATABASE_STORAGE]}


# --- every chart is its alert's query, and draws its threshold ---------------------------------------------


def test_gcp_charts_are_the_policies_queries_with_their_thresholds_as_lines() -> None:
    run = alerts.run_gcp("prod", **THRESHOLDS)
    panels = _panels("gcp", run)
    policies = run.of_type(alerts.GCP_POLICY)
    checked = set()
    for policy in policies:
        alert = AlertId(policy.inputs["userLabels"]["alert"])
        condition = policy.inputs["conditions"][0]["conditionThreshold"]
        chart = panels[TITLES[alert]]["xyChart"]
        ((data_set,),) = [chart["dataSets"]]
        (line,) = chart["thresholds"]
        query = data_set["timeSeriesQuery"]
        if alert is AlertId.MODEL_DRIFT:  # the PSI itself, not the policy's count of windows over it
            assert line["value"] == 0.35
            filter_ = query["timeSeriesFilter"]["filter"]
            assert '"logging.googleapis.com/user/mlops-stack/gcp-prod/model-drift-psi"' in filter_
            continue
        assert line["value"] == condition["thresholdValue"]
        if alert is AlertId.TRACKING_UNAVAILABLE:
            ratio = query["timeSeriesFilterRatio"]
            assert ratio["numerator"]["filter"] == condition["filter"]
            assert ratio["denominator"]["filter"] == condition["denominatorFilter"]
        else:
            assert query["timeSeriesFilter"]["filter"] == condition["filter"]
            aggregation = query["timeSeriesFilter"]["aggregation"]
            assert aggregation["perSeriesAligner"] == condition["aggregations"][0]["perSeriesAligner"]
            assert aggregation["alignmentPeriod"] == condition["aggregations"][0]["alignmentPeriod"]
        checked.add(alert)
    assert checked == set(TITLES) - {AlertId.MODEL_DRIFT}
    thresholds = {AlertId(p.inputs["userLabels"]["alert"]): p for p in policies}
    cpu = thresholds[AlertId.DATABASE_CPU].inputs["conditions"][0]["conditionThreshold"]["thresholdValue"]
    assert cpu == pytest.approx(0.9)  # config's 90 %, as Cloud SQL's fraction
    (psi,) = [
        m for m in run.of_type("gcp:logging/metric:Metric") if m.inputs["name"].endswith("/model-drift-psi")
    ]
    assert psi.inputs["valueExtractor"] == f"EXTRACT(jsonPayload.{DRIFT_FIELD})"
    assert f'jsonPayload.event="{DRIFT_EVENT}"' in psi.inputs["filter"]
    assert psi.inputs["metricDescriptor"]["valueType"] == "DISTRIBUTION"


def _aws_metrics(rows: list[list[Any]]) -> list[tuple[str, str, dict[str, str], str, int]]:
    """A widget's metric rows as (namespace, metric, dimensions, stat, period); expressions left out."""
    found = []
    for row in rows:
        if "expression" in row[-1]:
            continue
        *spec, rendering = row
        namespace, metric, *pairs = spec
        dimensions = dict(zip(pairs[::2], pairs[1::2], strict=True))
        found.append((namespace, metric, dimensions, rendering["stat"], rendering["period"]))
    return sorted(found, key=str)


def _alarm_metrics(queries: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, str], str, int]]:
    found = [
        (m["namespace"], m["metricName"], m.get("dimensions") or {}, m["stat"], m["period"])
        for q in queries
        if (m := q.get("metric"))
    ]
    return sorted(found, key=str)


def test_aws_widgets_are_the_alarms_queries_with_their_thresholds_as_annotations() -> None:
    run = aws.run_aws("prod", aws.with_model("prod", **THRESHOLDS))
    panels = _panels("aws", run)
    alarms = run.of_type(alerts.AWS_ALARM)
    for alarm in alarms:
        alert = AlertId(alarm.inputs["tags"]["alert"])
        widget = panels[TITLES[alert]]
        queries = alarm.inputs["metricQueries"]
        assert _aws_metrics(widget["metrics"]) == _alarm_metrics(queries), alert
        expressions = [row[0]["expression"] for row in widget["metrics"] if "expression" in row[0]]
        assert expressions == [q["expression"] for q in queries if q.get("expression")], alert
        (line,) = widget["annotations"]["horizontal"]
        assert line["value"] == alarm.inputs["threshold"], alert
        assert widget["region"] == aws.REGION
    lines = {
        title: panels[title]["annotations"]["horizontal"][0]["value"]
        for title in panels
        if title != API_REQUESTS_TITLE
    }
    assert lines[TITLES[AlertId.API_5XX]] == 12
    assert lines[TITLES[AlertId.API_P99]] == 750
    assert lines[TITLES[AlertId.MODEL_DRIFT]] == 0.35
    assert lines[TITLES[AlertId.DATABASE_CPU]] == 90
    # The request rate reads the same load balancer and target groups as the 5xx alarm.
    (api_5xx,) = [a for a in alarms if a.inputs["tags"]["alert"] == AlertId.API_5XX.value]
    groups = {
        q["metric"]["dimensions"]["TargetGroup"] for q in api_5xx.inputs["metricQueries"] if q.get("metric")
    }
    requests = _aws_metrics(panels[API_REQUESTS_TITLE]["metrics"])
    assert {dims["TargetGroup"] for _, metric, dims, _, _ in requests if metric == "RequestCount"} == groups
    assert "annotations" not in panels[API_REQUESTS_TITLE]


def test_aws_draws_the_storage_alarm_below_which_it_fires_on_an_rds_instance() -> None:
    run = aws.run_aws("prod", aws.with_model("prod", databaseTier="db.t4g.small", **THRESHOLDS))
    widget = _panels("aws", run)[TITLES[AlertId.DATABASE_STORAGE]]
    (line,) = widget["annotations"]["horizontal"]
    (alarm,) = [a for a in run.of_type(alerts.AWS_ALARM) if a.inputs["tags"]["alert"] == "database-storage"]
    assert line["value"] == alarm.inputs["threshold"]
    assert line["label"].startswith("alert below")
    assert _aws_metrics(widget["metrics"])[0][1] == "FreeStorageSpace"


def test_azure_tiles_are_the_rules_metrics_and_query_with_their_thresholds() -> None:
    run = alerts.run_azure("prod", **THRESHOLDS)
    panels = _panels("azure", run)
    for rule in run.of_type(alerts.AZURE_RULES[0]):
        alert = AlertId(rule.inputs["tags"]["alert"])
        (criterion,) = rule.inputs["criteria"]["allOf"]
        chart = panels[TITLES[alert]]
        (metric,) = chart["metrics"]
        assert metric["resourceMetadata"]["id"] == rule.inputs["scopes"][0], alert
        assert (metric["namespace"], metric["name"]) == (
            criterion["metricNamespace"].lower(),
            criterion["metricName"],
        ), alert
        assert metric["aggregationType"] == AGGREGATION_TYPES[criterion["timeAggregation"]], alert
        # A metric tile draws no line: its title carries the rule's threshold.
        assert f"(alert above {criterion['threshold']:g} " in chart["title"], alert
        filters = (chart.get("filterCollection") or {}).get("filters") or []
        assert [(f["key"], f["values"]) for f in filters] == [
            (d["name"], d["values"]) for d in criterion.get("dimensions") or []
        ], alert
    (drift_rule,) = run.of_type(alerts.AZURE_RULES[1])
    (condition,) = drift_rule.inputs["criteria"]["allOf"]
    drift = panels[TITLES[AlertId.MODEL_DRIFT]]
    assert drift["Query"].startswith(condition["query"])
    assert condition["query"] == drift_query("azure-prod-model-api")
    assert "| extend threshold = 0.35\n" in drift["Query"]
    assert drift["Scope"] == {"resourceIds": drift_rule.inputs["scopes"]}
    titles = [t for t in panels if t != TITLES[AlertId.MODEL_DRIFT]]
    assert len(titles) == len(run.of_type(alerts.AZURE_RULES[0])) + 1  # and the API's requests


def test_the_azure_dashboard_sits_where_the_deploy_identity_is_contributor() -> None:
    """Contributor on the stack's resource group covers Microsoft.Portal/dashboards (module docstring): the
    dashboard is in that group, and the portal shows it by its `hidden-title` tag."""
    run = alerts.run_azure("prod")
    (dashboard,) = run.of_type(DASHBOARDS["azure"])
    (group,) = [
        g for g in run.of_type("azure-native:resources:ResourceGroup") if g.name == "azure-prod-group"
    ]
    assert dashboard.inputs["resourceGroupName"] == group.inputs["resourceGroupName"]
    contributor = [
        a
        for a in run.of_type("azure-native:authorization:RoleAssignment")
        if a.inputs["roleDefinitionId"].endswith(BuiltInRole.CONTRIBUTOR.value)
    ]
    assert [a.inputs["scope"] for a in contributor] == [azure.resource_id("azure-prod-group")]
    assert dashboard.inputs["tags"]["hidden-title"] == "azure-prod mlops-stack"
    assert dashboard.inputs["tags"]["environment"] == "prod"
