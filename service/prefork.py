"""Several worker processes sharing one model load: load in the parent, then fork (like gunicorn --preload).

uvicorn's own `--workers` spawns fresh interpreters that each import scikit-learn and load the model (tens
of seconds of CPU each); forking after the load starts every worker at once and shares the model's memory
copy-on-write. Each child runs a normal uvicorn Server on the shared listening socket, with uvicorn's
graceful SIGTERM handling; the parent forwards SIGTERM/SIGINT and exits when all children have.

The port must answer while the model loads (a load may wait minutes for a tracking server to come back),
so the parent first forks a generation of unready workers: they answer /healthz, and /readyz and the
prediction routes with 503 and the load's progress, which the parent shares with them (service.readiness).
Once the model is loaded the parent forks the ready generation, then stops the unready one; both accept on
the same socket meanwhile, so no connection is refused during the swap. If the load never succeeds within
its budget, the unready generation keeps answering 503 until the platform replaces the instance.

A worker that dies on its own (a segfault in a native library, an OOM kill of one process) is replaced by a
new fork of the same generation, from the parent's already loaded model, as gunicorn's arbiter does; the
others keep serving meanwhile. Only a crash loop (`MAX_REPLACEMENTS` within `REPLACEMENT_WINDOW_SECONDS`)
stops the whole server, with status 1, so the platform starts a fresh instance.
"""

import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

import uvicorn
from fastapi import FastAPI

from service.model_loading import load_with_retries
from service.readiness import LoadProgress
from service.served_model import ServedModel
from service.settings import Settings

logger = logging.getLogger(__name__)

SUPERVISION_TICK_SECONDS = 0.2
# More worker deaths than this within the window is a crash loop, not bad luck: stop and let the platform
# replace the instance.
MAX_REPLACEMENTS = 5
REPLACEMENT_WINDOW_SECONDS = 60.0
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def serve_preforked(settings: Settings, server_options: dict[str, object]) -> None:
    """Fork unready workers, load the model, fork ready ones in their place, supervise until they exit."""
    from service.app import create_app  # after PROMETHEUS_MULTIPROC_DIR is set by the caller

    listener = _listening_socket(settings.host, settings.port)
    supervisor = _Supervisor(listener, settings.workers, server_options)
    progress = LoadProgress()
    unready = supervisor.fork_generation(lambda: create_app(settings, progress=progress))
    logger.info(
        "listening on %s:%s; %d workers answer while the model loads",
        settings.host,
        settings.port,
        len(unready),
    )
    model = supervisor.load(lambda stop: load_with_retries(settings, progress, stop))
    if model is not None and not supervisor.stopping:
        supervisor.fork_generation(lambda: create_app(settings, model=model))
        supervisor.retire(unready)
        logger.info("model loaded: replaced the unready workers with %d ready ones", settings.workers)
    status = supervisor.wait()  # the parent keeps the socket open: a replacement worker accepts on it
    listener.close()
    sys.exit(status)


class _Supervisor:
    """The parent's bookkeeping: which children run, which are being retired, and whether we stop."""

    def __init__(self, listener: socket.socket, workers: int, server_options: dict[str, object]) -> None:
        self.listener = listener
        self.workers = workers
        self.server_options = server_options
        self.alive: set[int] = set()
        self.retiring: set[int] = set()
        self.app_of: dict[int, Callable[[], FastAPI]] = {}  # what each worker serves, to fork a replacement
        self.replaced_at: list[float] = []
        self.stopping = False
        self.status = 0
        self.stop_loading = threading.Event()
        signal.signal(signal.SIGTERM, self._forward)
        signal.signal(signal.SIGINT, self._forward)

    def fork_generation(self, make_app: Callable[[], FastAPI]) -> set[int]:
        """Fork `workers` children, each serving `make_app()` on the shared socket."""
        generation = {self._fork(make_app) for _ in range(self.workers)}
        self.alive |= generation
        return generation

    def _fork(self, make_app: Callable[[], FastAPI]) -> int:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            _die_with(parent)
            # Not the parent's forwarding handlers: uvicorn installs its own once it runs.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            config = uvicorn.Config(make_app(), **self.server_options)  # type: ignore[arg-type]
            uvicorn.Server(config).run(sockets=[self.listener])
            os._exit(0)
        self.app_of[pid] = make_app
        return pid

    def load(self, load: Callable[[threading.Event], ServedModel | None]) -> ServedModel | None:
        """Run `load` in a thread, watching the children and the stop signals meanwhile."""
        result: list[ServedModel | None] = [None]
        loader = threading.Thread(
            target=lambda: result.__setitem__(0, load(self.stop_loading)), name="model-loader", daemon=True
        )
        loader.start()
        while loader.is_alive() and not self.stopping:
            self._reap(block=False)
            loader.join(SUPERVISION_TICK_SECONDS)
        return None if self.stopping else result[0]

    def retire(self, generation: set[int]) -> None:
        """Stop a generation gracefully; its exits are expected."""
        self.retiring |= generation
        for pid in generation:
            _signal(pid, signal.SIGTERM)

    def wait(self) -> int:
        """Block until every child has exited; 1 if workers kept dying (the platform restarts us)."""
        while self.alive:
            self._reap(block=True)
        return self.status

    def _reap(self, block: bool) -> None:
        try:
            pid, wait_status = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:  # none left, e.g. all reaped while we were signalled
            self.alive.clear()
            return
        if pid == 0 or pid not in self.alive:
            return
        self.alive.discard(pid)
        make_app = self.app_of.pop(pid)
        if pid in self.retiring or self.stopping:
            return
        now = time.monotonic()
        self.replaced_at = [t for t in self.replaced_at if now - t < REPLACEMENT_WINDOW_SECONDS] + [now]
        if len(self.replaced_at) > MAX_REPLACEMENTS:
            logger.error(
                "worker %d exited (%s): %d workers died within %.0f s, stopping the server",
                pid,
                _exit_cause(wait_status),
                len(self.replaced_at),
                REPLACEMENT_WINDOW_SECONDS,
            )
            self.status = 1
            self._stop(signal.SIGTERM)
            return
        replacement = self._fork(make_app)
        self.alive.add(replacement)
        logger.error(
            "worker %d exited (%s); replaced by worker %d", pid, _exit_cause(wait_status), replacement
        )

    def _forward(self, signum: int, _: FrameType | None) -> None:
        self._stop(signum)

    def _stop(self, signum: int) -> None:
        self.stopping = True
        self.stop_loading.set()
        for pid in self.alive:
            _signal(pid, signum)


def _exit_cause(wait_status: int) -> str:
    if os.WIFSIGNALED(wait_status):
        return f"killed by {signal.Signals(os.WTERMSIG(wait_status)).name}"
    return f"status {os.waitstatus_to_exitcode(wait_status)}"


def _die_with(parent: int) -> None:
    """Have the kernel send this worker SIGTERM when its parent dies, even by SIGKILL (an OOM kill), so
    no worker is left serving on the port unsupervised (Linux prctl PR_SET_PDEATHSIG, man 2 prctl)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(2048)
    listener.set_inheritable(True)
    return listener


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.kill(pid, signum)
