"""scripts/firing_alerts.py: each cloud's reader of firing alerts, against moto (AWS) and recorded HTTP
exchanges shaped like the Cloud Monitoring and Alerts Management APIs' (GCP, Azure)."""

import json
from collections.abc import Callable, Sequence

import boto3
import httpx
import pytest
from moto import mock_aws

from scripts import rollout
from scripts.firing_alerts import (
    AlertsUnreadableError,
    AzureAlerts,
    CloudWatchAlarms,
    GcpAlerts,
    reader_for,
    rollback_alert_names,
)

REGION = "eu-west-1"


def test_the_bake_watches_the_apis_health_alerts_not_drift() -> None:
    assert rollback_alert_names("gcp-prod") == [
        "gcp-prod api-5xx",
        "gcp-prod api-p99-latency",
        "gcp-prod api-restarts",
    ]


@mock_aws
def test_cloudwatch_alarms_in_alarm_state_by_name() -> None:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    for name in ("aws-prod api-5xx", "aws-prod api-restarts", "aws-prod model-drift", "aws-dev api-5xx"):
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            MetricName="HTTPCode_Target_5XX_Count",
            Namespace="AWS/ApplicationELB",
            Statistic="Sum",
            Period=300,
            EvaluationPeriods=1,
            Threshold=5,
            ComparisonOperator="GreaterThanThreshold",
        )
    for name in ("aws-prod api-5xx", "aws-prod model-drift", "aws-dev api-5xx"):
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="test")
    firing = CloudWatchAlarms(REGION, cloudwatch).firing(rollback_alert_names("aws-prod"))
    assert firing == ["aws-prod api-5xx"]


def recorded(pages: list[dict[str, object]], seen: list[httpx.Request]) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=pages[len(seen) - 1])

    return httpx.Client(transport=httpx.MockTransport(answer))


def test_gcp_open_alerts_by_policy_name_across_pages() -> None:
    seen: list[httpx.Request] = []
    pages: list[dict[str, object]] = [
        {
            "alerts": [
                {"state": "OPEN", "policy": {"displayName": "gcp-prod api-p99-latency"}},
                {"state": "OPEN", "policy": {"displayName": "gcp-prod model-drift"}},
            ],
            "nextPageToken": "page-2",
        },
        {"alerts": [{"state": "OPEN", "policy": {"displayName": "gcp-dev api-5xx"}}]},
    ]
    firing = GcpAlerts("acme-ml", recorded(pages, seen)).firing(rollback_alert_names("gcp-prod"))
    assert firing == ["gcp-prod api-p99-latency"]
    assert seen[0].url.path == "/v3/projects/acme-ml/alerts"
    assert seen[0].url.params["filter"] == 'state = "OPEN"'
    assert seen[1].url.params["pageToken"] == "page-2"


def test_azure_fired_alerts_by_rule_name() -> None:
    seen: list[httpx.Request] = []
    rules = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Insights/metricAlerts"
    pages: list[dict[str, object]] = [
        {
            "value": [
                {"properties": {"essentials": {"alertRule": f"{rules}/azure-prod api-restarts"}}},
                {"properties": {"essentials": {"alertRule": f"{rules}/azure-prod database-cpu"}}},
            ]
        }
    ]
    firing = AzureAlerts("s", recorded(pages, seen)).firing(rollback_alert_names("azure-prod"))
    assert firing == ["azure-prod api-restarts"]
    assert seen[0].url.path == "/subscriptions/s/providers/Microsoft.AlertsManagement/alerts"
    assert seen[0].url.params["monitorCondition"] == "Fired"


def test_a_refusal_is_unreadable_not_healthy() -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(403, text="denied")))
    with pytest.raises(AlertsUnreadableError, match="answered 403: denied"):
        GcpAlerts("acme-ml", client).firing(["gcp-prod api-5xx"])


def no_client() -> httpx.Client:
    raise AssertionError("not this cloud")


def test_the_reader_follows_the_stacks_cloud() -> None:
    client = httpx.Client()
    assert isinstance(reader_for({"mlops-stack:cloud": "aws", "aws:region": REGION}, {}), CloudWatchAlarms)
    gcp = {"mlops-stack:cloud": "gcp", "gcp:project": "acme-ml"}
    assert isinstance(reader_for(gcp, {}, google=lambda: client, azure=no_client), GcpAlerts)
    azure = {"mlops-stack:cloud": "azure"}
    environ = {"AZURE_SUBSCRIPTION_ID": "s"}
    assert isinstance(reader_for(azure, environ, google=no_client, azure=lambda: client), AzureAlerts)
    with pytest.raises(AlertsUnreadableError, match="AZURE_SUBSCRIPTION_ID"):
        reader_for(azure, {}, google=no_client, azure=lambda: client)


class Reader:
    def __init__(self, answer: Callable[[Sequence[str]], list[str]]) -> None:
        self.answer = answer

    def firing(self, names: Sequence[str]) -> list[str]:
        return self.answer(names)


def unreadable(_: Sequence[str]) -> list[str]:
    raise AlertsUnreadableError("permission denied")


def test_the_bakes_alerts_watch_reports_firing_alerts_and_shrugs_off_unreadable_ones() -> None:
    said: list[str] = []
    firing = rollout.AlertsWatch("gcp-prod", lambda: Reader(lambda names: list(names[:1])), said.append)
    assert firing.problems() == ["alert 'gcp-prod api-5xx' is firing"]
    blind = rollout.AlertsWatch("gcp-prod", lambda: Reader(unreadable), said.append)
    assert blind.problems() == []
    assert said == [
        "  note: cannot read gcp-prod's alerts (permission denied); this round checks the smoke test"
    ]
    assert json.dumps(said)  # nothing but text
