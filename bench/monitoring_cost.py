"""What drift monitoring adds to a request's own work, measured where a shared machine's noise cancels.

Over HTTP, requests per second on a 2-CPU machine that other work shares swing by tens of percent between
runs of a few seconds, far more than the 5% the monitoring may cost. Here the same data plane predicts the
same requests in one process, with monitoring on and off in alternating rounds, and the best round of each
is kept: what remains is the monitoring's own cost per request (decoding, checks, prediction and answer
included on both sides, HTTP excluded).
"""

import asyncio
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass

from service.data_plane import DataPlane
from service.model_loading import load_served_model
from service.monitoring import monitored
from service.settings import Settings

ROUNDS = 5
REQUESTS_PER_ROUND = 2_000


@dataclass(frozen=True)
class PlaneCost:
    """Best time per request through the data plane, monitoring on and off (microseconds)."""

    on_us: float
    off_us: float

    @property
    def added_us(self) -> float:
        return self.on_us - self.off_us


def measure(model_uri: str, bodies: Sequence[bytes]) -> PlaneCost:
    """Load the model once, build a data plane with monitoring and one without, time them alternately."""
    settings = Settings(model_uri=model_uri)
    model = load_served_model(settings)
    served, monitor = monitored(model, settings)
    if monitor is None:
        raise RuntimeError("the benchmark's model carries no reference profile: nothing to monitor")
    planes = {"on": DataPlane(served, settings.max_rows), "off": DataPlane(model, settings.max_rows)}
    best = {"on": float("inf"), "off": float("inf")}
    for _ in range(ROUNDS):
        for name, plane in planes.items():
            best[name] = min(best[name], asyncio.run(_seconds_per_request(plane, bodies)))
    return PlaneCost(on_us=best["on"] * 1e6, off_us=best["off"] * 1e6)


async def _seconds_per_request(plane: DataPlane, bodies: Sequence[bytes]) -> float:
    requests = itertools.islice(itertools.cycle(bodies), REQUESTS_PER_ROUND)
    started = time.perf_counter()
    for body in requests:
        await plane.invocations(body, "application/json")
    return (time.perf_counter() - started) / REQUESTS_PER_ROUND
