"""The alerts every cloud creates, described once: what each watches, its threshold, what to do about it.

`alert_plan(settings)` is the cloud-neutral list; `infra/<cloud>/monitoring.py` turns each entry into that
cloud's own alert resource, so the three clouds cannot drift apart (a test reads every cloud's alerts back
from its program and compares them with this list). The README's alert table is this list in words.

Which signals, and why they cost (almost) nothing while idle:
- The platforms' own request metrics where they have them (Cloud Run, the Express load balancer, Container
  Apps) and the databases' own metrics: free to read, billed only per alert rule.
- Our own number, the drift score, comes from the one JSON line the API writes per drift window
  (service/monitoring.py, `"event": "model_drift"` with `max_psi`): a log-based metric on GCP, a CloudWatch
  Logs metric filter on AWS, a scheduled log query on Azure. No Prometheus server or agent to run and pay for
  around the clock; the logs are shipped already.
- Sandboxes get none: they live for hours, nobody is on call for them, and alarms are billed per month.
"""

from dataclasses import dataclass
from enum import StrEnum

from infra.config import StackSettings

# The API's drift log line (service/monitoring.py drift_log_line; a test holds the two together).
DRIFT_EVENT = "model_drift"
DRIFT_FIELD = "max_psi"
# How long a bad value must last before an alert fires. Five minutes is the shortest window every cloud's
# cheapest alert type evaluates (CloudWatch standard alarms, Azure metric alerts, Cloud Monitoring).
WINDOW_MINUTES = 5
# The drift line comes once per window of the API (MONITORING_WINDOW_SECONDS, 600 s by default), so the drift
# alert looks back over a longer period to see at least one.
DRIFT_WINDOW_MINUTES = 15
# Instance restarts in WINDOW_MINUTES that make a crash loop rather than one unlucky restart.
RESTARTS = 3
# Share of the tracking server's requests answered 5xx (or health checks failed) that means it is down.
TRACKING_UNAVAILABLE_PERCENT = 50


class AlertId(StrEnum):
    API_5XX = "api-5xx"
    API_P99 = "api-p99-latency"
    API_RESTARTS = "api-restarts"
    TRACKING_UNAVAILABLE = "tracking-unavailable"
    DATABASE_CPU = "database-cpu"
    DATABASE_STORAGE = "database-storage"
    MODEL_DRIFT = "model-drift"


@dataclass(frozen=True)
class Alert:
    id: AlertId
    threshold: float  # in `unit`; the alert fires when the value is above it
    unit: str
    minutes: int  # the window the value is measured over
    meaning: str
    action: str  # what to do about it (the README's table says the same)


@dataclass(frozen=True)
class AlertPlan:
    alerts: tuple[Alert, ...]
    email: str | None  # None: the alerts fire and show in the console, and notify nobody

    def get(self, alert: AlertId) -> Alert | None:
        return next((a for a in self.alerts if a.id is alert), None)

    def __contains__(self, alert: AlertId) -> bool:
        return self.get(alert) is not None


def alert_plan(settings: StackSettings) -> AlertPlan:
    """The stack's alerts: none on a sandbox; the API's only once a model is pinned (before, no API runs)."""
    if settings.is_sandbox:
        return AlertPlan((), None)
    limits = settings.alerts
    api = [
        Alert(
            AlertId.API_5XX,
            limits.api_5xx_count,
            "5xx responses",
            WINDOW_MINUTES,
            "the model API answered with server errors (bad input gets a 4xx, never a 5xx)",
            "read the API's error log lines; a new image or model version is the usual cause: roll back the "
            "pin (modelVersion/modelSource) or the image",
        ),
        Alert(
            AlertId.API_P99,
            limits.api_p99_ms,
            "ms",
            WINDOW_MINUTES,
            "the slowest 1% of model API requests took longer than this",
            "check instance count against apiMaxInstances (saturated?) and cold starts; raise apiCpu or "
            "apiMaxInstances, or apiMinInstances to keep one warm",
        ),
        Alert(
            AlertId.API_RESTARTS,
            RESTARTS,
            "restarts",
            WINDOW_MINUTES,
            "model API instances keep restarting or failing to start (a crash loop)",
            "read the API's startup log: a model that no longer loads, too little memory (apiMemoryMiB), "
            "or a bad image",
        ),
        Alert(
            AlertId.MODEL_DRIFT,
            limits.drift_psi,
            "PSI",
            DRIFT_WINDOW_MINUTES,
            f"the inputs or predictions moved away from the training data (the API's {DRIFT_FIELD})",
            "follow 'When drift rises' in the README: which columns, pipeline or world, retrain and compare",
        ),
    ]
    platform = [
        Alert(
            AlertId.TRACKING_UNAVAILABLE,
            TRACKING_UNAVAILABLE_PERCENT,
            "% failing",
            WINDOW_MINUTES,
            "the MLflow tracking server is down or failing (the API keeps serving without it)",
            "read the tracking server's log; a database that is stopped, full or unreachable is the usual "
            "cause",
        ),
        Alert(
            AlertId.DATABASE_CPU,
            limits.database_percent,
            "% CPU",
            WINDOW_MINUTES,
            "the tracking database is busy near its limit",
            "look for heavy MLflow searches; raise databaseTier",
        ),
        Alert(
            AlertId.DATABASE_STORAGE,
            limits.database_percent,
            "% storage",
            WINDOW_MINUTES,
            "the tracking database's disk is nearly full",
            "delete old runs (mlflow gc) or let storage grow: GCP and Azure grow it automatically, "
            "AWS RDS up to its max_allocated_storage",
        ),
    ]
    return AlertPlan(tuple((api if settings.model is not None else []) + platform), settings.alerts.email)


def alert_name(settings: StackSettings, alert: AlertId) -> str:
    """The name each cloud gives the alert: the stack, then what it watches (e.g. `gcp-prod api-5xx`)."""
    return f"{settings.stack} {alert.value}"
