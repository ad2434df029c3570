"""`python -m service`: serve the model API with uvicorn on HOST:PORT, WORKERS processes.

With more than one worker the model is loaded once and the workers are forked from it (service.prefork).

SIGTERM (what Cloud Run, ECS and Container Apps send) stops accepting connections, lets in-flight
requests finish for up to SHUTDOWN_TIMEOUT_SECONDS, then exits: uvicorn's own graceful shutdown. The
request timeout ends before that grace does (checked in Settings), so every request in flight gets our
answer, a prediction or a JSON 504, before the process exits.
"""

import logging
import os
import sys
import tempfile
from typing import Any

import uvicorn
from pydantic import ValidationError

from service.http_protocol import bounded_http_protocol
from service.prefork import serve_preforked
from service.settings import Settings

# MLflow's HTTP client retries a failed request 7 times with backoff (about 4 minutes) and waits 120 s for
# an answer (mlflow/environment_variables.py). The model load retries on its own, within its budget
# (service.model_loading), so one attempt is one try with a shorter wait. Set them to override.
MLFLOW_CLIENT_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_DISABLE_TELEMETRY": "true",  # a model server does not phone home
}


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's settings for every worker (https://www.uvicorn.org/settings/)."""
    return {
        "loop": "uvloop",
        "http": bounded_http_protocol(settings.header_timeout_seconds, settings.max_connections),
        "access_log": False,
        "proxy_headers": True,
        "timeout_keep_alive": settings.keep_alive_timeout_seconds,
        "timeout_graceful_shutdown": settings.shutdown_timeout_seconds,
        "log_level": "info",
    }


def main() -> None:
    """Read the settings (a clear message and exit status 1 if they are wrong), then run the server."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()  # type: ignore[call-arg]
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])).upper() or 'settings'}: {e['msg']}" for e in error.errors()
        )
        sys.exit(f"model API settings are invalid: {problems}")
    if settings.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Workers are separate processes: share metrics through files so /metrics counts all of them.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="model-api-metrics-")
    for name, value in MLFLOW_CLIENT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    options = server_options(settings)
    if settings.workers > 1:
        serve_preforked(settings, options)
    else:
        uvicorn.run("service.app:create_app", factory=True, host=settings.host, port=settings.port, **options)


if __name__ == "__main__":
    main()
