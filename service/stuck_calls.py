"""Recycle a worker whose model call never returns.

The request timeout answers the client (504) and stops waiting, but Python cannot stop a thread: a model call
stuck in native code (a deadlock, an endless loop) keeps its scoring thread for good. With every scoring
thread of a worker stuck, each later request waits for a thread until it times out, while /healthz still
answers 200 (the event loop is free), so the platform never replaces the instance. gunicorn's answer is a
worker timeout; ours is the same idea: once a call has run for STUCK_CALL_SECONDS the worker says so in the
log and exits, and service.prefork forks a fresh worker from the loaded model in its place (with one worker,
the process exits and the platform starts a new instance).
"""

import asyncio
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

logger = logging.getLogger(__name__)

# The worker's exit status when it recycles itself (service.prefork logs it with the replacement).
STUCK_EXIT_STATUS = 3


class CallWatch:
    """When each model call running in a scoring thread started."""

    def __init__(self) -> None:
        self._started: dict[int, float] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count()

    @contextmanager
    def running(self) -> Iterator[None]:
        call = next(self._ids)
        with self._lock:
            self._started[call] = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                del self._started[call]

    def longest_running_seconds(self) -> float:
        """How long the oldest call still running has run; 0 when none is."""
        with self._lock:
            oldest = min(self._started.values(), default=None)
        return 0.0 if oldest is None else time.monotonic() - oldest


def _exit_now(status: int) -> NoReturn:
    # Not sys.exit: the stuck thread would keep the interpreter from exiting.
    os._exit(status)


async def exit_when_stuck(
    watch: CallWatch,
    limit_seconds: float,
    check_every_seconds: float = 1.0,
    exit_process: Callable[[int], object] = _exit_now,
) -> None:
    """Check the watch every `check_every_seconds`; exit once a call has run longer than `limit_seconds`."""
    while True:
        await asyncio.sleep(check_every_seconds)
        running = watch.longest_running_seconds()
        if running > limit_seconds:
            logger.error(
                "a model call has run for %.0f s (STUCK_CALL_SECONDS=%g): exiting so that a fresh worker "
                "takes this one's place",
                running,
                limit_seconds,
            )
            logging.shutdown()
            exit_process(STUCK_EXIT_STATUS)
            return
