"""Several worker processes sharing one model load: load in the parent, then fork (like gunicorn --preload).

uvicorn's own `--workers` spawns fresh interpreters that each import scikit-learn and load the model (tens
of seconds of CPU each); forking after the load starts every worker at once and shares the model's memory
copy-on-write. Each child runs a normal uvicorn Server on the shared listening socket, with uvicorn's
graceful SIGTERM handling; the parent forwards SIGTERM/SIGINT and exits when all children have.
"""

import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from types import FrameType

import uvicorn

from service.model_loading import load_served_model
from service.served_model import ServedModel
from service.settings import Settings

logger = logging.getLogger(__name__)


def serve_preforked(settings: Settings, server_options: dict[str, object]) -> None:
    """Load once, fork `settings.workers` uvicorn servers on one socket, supervise them until they exit."""
    from service.app import create_app  # after PROMETHEUS_MULTIPROC_DIR is set by the caller

    loader = _parent_loader(settings)
    listener = _listening_socket(settings.host, settings.port)
    children: list[int] = []
    for _ in range(settings.workers):
        pid = os.fork()
        if pid == 0:
            config = uvicorn.Config(create_app(settings, loader), **server_options)  # type: ignore[arg-type]
            uvicorn.Server(config).run(sockets=[listener])
            os._exit(0)
        children.append(pid)
    listener.close()
    logger.info("serving on %s:%s with %d forked workers", settings.host, settings.port, len(children))
    sys.exit(_supervise(children))


def _parent_loader(settings: Settings) -> Callable[[], ServedModel]:
    """A loader for the children: the parent's model, or the parent's load error raised again."""
    try:
        model = load_served_model(settings)
    except Exception as error:
        logger.exception("could not load model %s; workers will stay unready", settings.model_uri)
        failure = error

        def reraise() -> ServedModel:
            raise failure

        return reraise
    return lambda: model


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(2048)
    listener.set_inheritable(True)
    return listener


def _supervise(children: list[int]) -> int:
    """Forward stop signals; when a child dies on its own, stop the rest and fail (the platform restarts)."""
    stopping = False

    def forward(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            _signal(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    alive = set(children)
    while alive:
        pid, _ = os.waitpid(-1, 0)
        alive.discard(pid)
        if not stopping:
            logger.error("worker %d exited unexpectedly; stopping the others", pid)
            stopping, status = True, 1
            for other in alive:
                _signal(other, signal.SIGTERM)
    return status


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.kill(pid, signum)
