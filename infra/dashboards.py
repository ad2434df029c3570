"""The dashboard every cloud creates, described once: its name, its panels in order, what each shows and the
alert whose threshold it draws.

`dashboard_panels(plan)` is the cloud-neutral list, read from the alert plan (infra/alerts.py), so a panel
exists exactly when its alert does and draws that alert's threshold from config. `infra/<cloud>/monitoring.py`
turns each panel into a chart of the same metric query its alert reads (a test parses each cloud's dashboard
and holds every chart to its alert's metric and threshold):

- GCP: a Cloud Monitoring dashboard, threshold lines on its charts;
- AWS: a CloudWatch dashboard, threshold lines as horizontal annotations;
- Azure: a shared portal dashboard; its metric chart tiles draw no threshold line, so their titles carry it,
  and the drift tile's log query returns the threshold as a second series.

Sandboxes get none (their alert plan is empty): they live for hours and nobody watches them.
"""

from dataclasses import dataclass

from infra.alerts import Alert, AlertId, AlertPlan

# The panels' order on every cloud: the API's traffic first, then its health, then the platform's.
ORDER = (
    AlertId.API_5XX,
    AlertId.API_P99,
    AlertId.API_RESTARTS,
    AlertId.MODEL_DRIFT,
    AlertId.TRACKING_UNAVAILABLE,
    AlertId.DATABASE_CPU,
    AlertId.DATABASE_STORAGE,
)
TITLES = {
    AlertId.API_5XX: "API 5xx responses",
    AlertId.API_P99: "API p99 latency",
    AlertId.API_RESTARTS: "API restarts and failed starts",
    AlertId.MODEL_DRIFT: "Model drift (max PSI of a window)",
    AlertId.TRACKING_UNAVAILABLE: "Tracking server failing",
    AlertId.DATABASE_CPU: "Database CPU",
    AlertId.DATABASE_STORAGE: "Database storage",
}
API_REQUESTS_TITLE = "API requests"
# Grid of every cloud's dashboard: two panels a row.
COLUMNS = 2


@dataclass(frozen=True)
class Panel:
    title: str
    alert: Alert | None  # the alert it shows, whose threshold it draws; None: the API's request rate

    def threshold_label(self, threshold: float, unit: str, *, below: bool = False) -> str:
        """How a chart names its threshold line (the value as that cloud's metric expresses it)."""
        return f"alert {'below' if below else 'above'} {threshold:g} {unit}".rstrip()


def dashboard_panels(plan: AlertPlan) -> tuple[Panel, ...]:
    """The stack's panels: one per alert of the plan, and the API's requests once the API is watched."""
    requests = [Panel(API_REQUESTS_TITLE, None)] if AlertId.API_5XX in plan else []
    alerts = [alert for alert_id in ORDER if (alert := plan.get(alert_id)) is not None]
    return (*requests, *(Panel(TITLES[alert.id], alert) for alert in alerts))


def dashboard_name(stack: str) -> str:
    """`<stack>-mlops-stack`: letters, digits and '-' only, which every cloud's dashboard names accept (AWS
    matches it in the deploy identity's fence, infra/aws/fence.py; a stack name pattern gives the pattern)."""
    return f"{stack}-mlops-stack"


@dataclass(frozen=True)
class Cell:
    column: int
    row: int


def grid(count: int) -> list[Cell]:
    """Where each of `count` panels goes, left to right, two a row."""
    return [Cell(index % COLUMNS, index // COLUMNS) for index in range(count)]
