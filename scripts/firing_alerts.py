"""Which of a stack's model API alerts are firing now, per cloud: what `scripts/rollout.py bake` rolls back
on.

The alerts are the monitoring issue's (infra/alerts.py): each cloud names an alert `<stack> <alert id>`
(`alert_name`). A bake watches the ones that say the new revision is unhealthy: server errors, latency,
restarts. Not drift: drift is about the data callers send, which a rollback would not change.

- AWS: CloudWatch alarms in state `ALARM` (`DescribeAlarms`, by name).
- GCP: Cloud Monitoring alerts in state `OPEN` (`projects.alerts.list`), matched by their policy's display
  name (https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.alerts/list).
- Azure: Azure Monitor alerts whose monitor condition is `Fired` (Alerts Management `alerts` list), matched by
  their alert rule's name (https://learn.microsoft.com/rest/api/monitor/alertsmanagement/alerts/get-all).

A reader that cannot read (no permission, an API error) raises `AlertsUnreadableError`: the bake reports it
and carries on with the smoke test; it never rolls back because monitoring could not be read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import httpx

from infra.alerts import AlertId
from mlops_stack.pulumi_cli import PROJECT

# The alerts that mean the API revision itself is unhealthy (drift is the callers' data, not the revision).
ROLLBACK_ALERTS = (AlertId.API_5XX, AlertId.API_P99, AlertId.API_RESTARTS)
GCP_MONITORING = "https://monitoring.googleapis.com/v3"
AZURE_MANAGEMENT = "https://management.azure.com"
AZURE_ALERTS_API_VERSION = "2019-05-05-preview"
REQUEST_TIMEOUT_SECONDS = 30.0


class AlertsUnreadableError(RuntimeError):
    """The cloud's alerts could not be read; the message says why."""


class FiringAlerts(Protocol):
    def firing(self, names: Sequence[str]) -> list[str]:
        """Which of the alerts `names` are firing now."""
        ...


def rollback_alert_names(stack: str) -> list[str]:
    """As infra.alerts.alert_name names them on every cloud (`<stack> <alert id>`)."""
    return [f"{stack} {alert.value}" for alert in ROLLBACK_ALERTS]


class CloudWatchAlarms:
    def __init__(self, region: str, client: Any = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("cloudwatch", region_name=region)
        self._client = client

    def firing(self, names: Sequence[str]) -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            pages = self._client.get_paginator("describe_alarms").paginate(
                AlarmNames=list(names), StateValue="ALARM"
            )
            alarms = [alarm for page in pages for alarm in page.get("MetricAlarms", [])]
        except (BotoCoreError, ClientError) as error:
            raise AlertsUnreadableError(f"CloudWatch DescribeAlarms: {error}") from error
        # The state is checked here too: the request's StateValue filter is not honoured by every stand-in.
        return [alarm["AlarmName"] for alarm in alarms if alarm.get("StateValue") == "ALARM"]


def _get_json(client: httpx.Client, url: str, params: Mapping[str, str], what: str) -> dict[str, Any]:
    try:
        response = client.get(url, params=params)
    except httpx.HTTPError as error:
        raise AlertsUnreadableError(f"{what}: {error}") from error
    if response.status_code != 200:
        raise AlertsUnreadableError(f"{what} answered {response.status_code}: {response.text[:300]}")
    document: dict[str, Any] = response.json()
    return document


class GcpAlerts:
    """`client` sends the caller's credentials (`google_client`)."""

    def __init__(self, project: str, client: httpx.Client) -> None:
        self._project, self._client = project, client

    def firing(self, names: Sequence[str]) -> list[str]:
        url = f"{GCP_MONITORING}/projects/{self._project}/alerts"
        params = {"filter": 'state = "OPEN"'}
        found: list[str] = []
        while True:
            page = _get_json(self._client, url, params, "Cloud Monitoring alerts.list")
            found += [
                name
                for alert in page.get("alerts", [])
                if (name := str(alert.get("policy", {}).get("displayName", ""))) in names
            ]
            token = page.get("nextPageToken")
            if not token:
                return sorted(set(found))
            params = {**params, "pageToken": str(token)}


class AzureAlerts:
    """`client` sends the caller's credentials (`azure_client`)."""

    def __init__(self, subscription_id: str, client: httpx.Client) -> None:
        self._subscription, self._client = subscription_id, client

    def firing(self, names: Sequence[str]) -> list[str]:
        subscription = f"{AZURE_MANAGEMENT}/subscriptions/{self._subscription}"
        url = f"{subscription}/providers/Microsoft.AlertsManagement/alerts"
        params = {"api-version": AZURE_ALERTS_API_VERSION, "monitorCondition": "Fired"}
        found: list[str] = []
        while True:
            page = _get_json(self._client, url, params, "Azure Monitor alerts")
            for alert in page.get("value", []):
                rule = str(alert.get("properties", {}).get("essentials", {}).get("alertRule", ""))
                if (name := rule.rstrip("/").rsplit("/", 1)[-1]) in names:
                    found.append(name)
            next_link = page.get("nextLink")
            if not next_link:
                return sorted(set(found))
            url, params = str(next_link), {}


def google_client() -> httpx.Client:
    """An HTTP client with Application Default Credentials (in the workflow: the deploy identity)."""
    import google.auth
    import google.auth.transport.requests

    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/monitoring.read"])
    credentials.refresh(google.auth.transport.requests.Request())
    return httpx.Client(
        headers={"Authorization": f"Bearer {credentials.token}"}, timeout=REQUEST_TIMEOUT_SECONDS
    )


def azure_client() -> httpx.Client:
    from azure.identity import DefaultAzureCredential

    token = DefaultAzureCredential().get_token(f"{AZURE_MANAGEMENT}/.default").token
    return httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=REQUEST_TIMEOUT_SECONDS)


def reader_for(
    config: Mapping[str, str],
    environ: Mapping[str, str],
    google: Callable[[], httpx.Client] = google_client,
    azure: Callable[[], httpx.Client] = azure_client,
) -> FiringAlerts:
    """The stack's reader, from its config in this checkout (cloud, region, project, subscription)."""
    cloud = config.get(f"{PROJECT}:cloud")
    if cloud == "aws":
        region = config.get("aws:region") or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
        if not region:
            raise AlertsUnreadableError(
                "no aws:region in the stack's config nor AWS_REGION in the environment"
            )
        return CloudWatchAlarms(region)
    if cloud == "gcp":
        project = config.get("gcp:project")
        if not project:
            raise AlertsUnreadableError("no gcp:project in the stack's config")
        return GcpAlerts(project, google())
    if cloud == "azure":
        subscription = config.get("azure-native:subscriptionId") or environ.get("AZURE_SUBSCRIPTION_ID")
        if not subscription:
            raise AlertsUnreadableError(
                "no azure-native:subscriptionId in the stack's config nor AZURE_SUBSCRIPTION_ID in the "
                "environment"
            )
        return AzureAlerts(subscription, azure())
    raise AlertsUnreadableError(f"the stack's config names no cloud I know ({cloud!r})")
