"""Load the model named by MODEL_URI once, and work out which registered version it is."""

import logging
import re
import time

import mlflow.pyfunc
from mlflow import MlflowClient

from service.served_model import ModelIdentity, ServedModel
from service.settings import Settings

logger = logging.getLogger(__name__)

_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[^/]+))/?$")


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
