"""Load the model named by MODEL_URI, retrying within the startup budget, and work out which version it is."""

import logging
import re
import threading
import time

import mlflow.pyfunc
from mlflow import MlflowClient

from service.readiness import LoadProgress, LoadState, LoadStatus
from service.served_model import ModelIdentity, ServedModel
from service.settings import Settings

logger = logging.getLogger(__name__)

_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[^/]+))/?$")
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 10.0


def load_served_model(settings: Settings) -> ServedModel:
    """Download and load the model; the only moment the tracking server (if any) must be reachable.

    An alias is resolved to its version first, and that pinned version is what gets loaded, so /version
    reports exactly the model in memory even if the alias moves during the download.
    """
    started = time.perf_counter()
    uri, name, version = _pinned(settings)
    logger.info("loading model %s", uri)
    pyfunc = mlflow.pyfunc.load_model(uri)
    identity = ModelIdentity(uri=uri, name=name, version=version, run_id=pyfunc.metadata.run_id)
    served = ServedModel(pyfunc, identity, load_seconds=time.perf_counter() - started)
    logger.info(
        "model loaded in %.2fs: name=%s version=%s run_id=%s inputs=%s",
        served.load_seconds,
        name,
        version,
        identity.run_id,
        list(served.column_names),
    )
    return served


def load_with_retries(
    settings: Settings,
    progress: LoadProgress,
    stop: threading.Event,
) -> ServedModel | None:
    """Load, and after a failure retry with doubling pauses (1 s up to 10 s) while the next attempt can
    still start within MODEL_LOAD_BUDGET_SECONDS; None once the budget is spent or `stop` is set.

    Every failure is retried, not only unreachable servers: a model just being copied into the bucket,
    or an identity whose grant is still propagating, look like "not found" or "denied" for a while. Each
    failure's cause goes to the log with its traceback; `progress` only gets the count.
    """
    deadline = time.monotonic() + settings.model_load_budget_seconds
    pause = FIRST_RETRY_SECONDS
    failed = 0
    while not stop.is_set():
        try:
            return load_served_model(settings)
        except Exception:
            failed += 1
            logger.exception("loading model %s failed (attempt %d)", settings.model_uri, failed)
        if time.monotonic() + pause > deadline:
            logger.error(
                "giving up loading model %s after %d attempts in %.0fs; staying unready",
                settings.model_uri,
                failed,
                settings.model_load_budget_seconds,
            )
            progress.report(LoadStatus(LoadState.GAVE_UP, failed))
            return None
        progress.report(LoadStatus(LoadState.RETRYING, failed))
        stop.wait(pause)
        pause = min(pause * 2, MAX_RETRY_SECONDS)
    return None


def _pinned(settings: Settings) -> tuple[str, str | None, str | None]:
    """(URI to load, registered name, version): registry URIs win over MODEL_NAME / MODEL_VERSION."""
    match = _REGISTRY_URI.match(settings.model_uri)
    if match is None:
        return settings.model_uri, settings.model_name, settings.model_version
    name = match["name"]
    if match["alias"] is None:
        return settings.model_uri, name, match["version"]
    version = MlflowClient().get_model_version_by_alias(name, match["alias"]).version
    return f"models:/{name}/{version}", name, str(version)
