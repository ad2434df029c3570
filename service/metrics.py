"""Prometheus metrics: requests and latency by route and status, predictions, model load time.

With several worker processes each keeps its own counters; `__main__` then sets PROMETHEUS_MULTIPROC_DIR
before the workers start so that /metrics aggregates all of them (prometheus-client's multiprocess mode).
"""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

REQUESTS = Counter("http_requests_total", "HTTP requests answered.", ["route", "method", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time from request start to response end.",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
PREDICTIONS = Counter("model_predictions_total", "Rows predicted.", ["route"])
MODEL_LOAD_SECONDS = Gauge(
    "model_load_seconds", "Seconds it took to download and load the model.", multiprocess_mode="max"
)


def render() -> tuple[bytes, str]:
    """The exposition text and its content type, across worker processes when there are several."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
