"""`python -m service`: serve the model API with uvicorn on HOST:PORT, WORKERS processes.

With more than one worker the model is loaded once and the workers are forked from it (service.prefork).

SIGTERM (what Cloud Run, ECS and Container Apps send) stops accepting connections, lets in-flight
requests finish for up to SHUTDOWN_TIMEOUT_SECONDS, then exits: uvicorn's own graceful shutdown.
"""

import logging
import os
import sys
import tempfile
from typing import Any

import uvicorn
from pydantic import ValidationError

from service.prefork import serve_preforked
from service.settings import Settings


def main() -> None:
    """Read the settings (a clear message and exit 2 if they are wrong), then run the server."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()  # type: ignore[call-arg]
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors())
        sys.exit(f"model API settings are invalid: {problems}")
    if settings.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Workers are separate processes: share metrics through files so /metrics counts all of them.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="model-api-metrics-")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # a model server does not phone home
    options: dict[str, Any] = {
        "loop": "uvloop",
        "http": "httptools",
        "access_log": False,
        "proxy_headers": True,
        "timeout_graceful_shutdown": settings.shutdown_timeout_seconds,
        "log_level": "info",
    }
    if settings.workers > 1:
        serve_preforked(settings, options)
    else:
        uvicorn.run("service.app:create_app", factory=True, host=settings.host, port=settings.port, **options)


if __name__ == "__main__":
    main()
