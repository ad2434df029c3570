"""A model call that never returns: its request gets 504, then its worker is recycled and serving goes on."""

import asyncio
import threading
import time
from pathlib import Path

import httpx
import mlflow.pyfunc
import pandas as pd
import pytest
from mlflow.pyfunc import PythonModel
from pydantic import ValidationError

from service.settings import Settings
from service.stuck_calls import STUCK_EXIT_STATUS, CallWatch, exit_when_stuck
from service.tests.api_process import api_process


def _hold(watch: CallWatch, release: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=lambda: _run(watch, release), daemon=True)
    thread.start()
    return thread


def _run(watch: CallWatch, release: threading.Event) -> None:
    with watch.running():
        release.wait()


def test_the_watch_reports_the_oldest_call_still_running() -> None:
    watch, release = CallWatch(), threading.Event()
    assert watch.longest_running_seconds() == 0.0
    thread = _hold(watch, release)
    time.sleep(0.2)
    assert watch.longest_running_seconds() >= 0.2
    release.set()
    thread.join()
    assert watch.longest_running_seconds() == 0.0


def test_a_call_past_the_limit_exits_the_worker_and_one_within_it_does_not() -> None:
    statuses: list[int] = []
    watch, release = CallWatch(), threading.Event()

    async def watch_for(seconds: float) -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(seconds):
                await exit_when_stuck(watch, 0.3, check_every_seconds=0.05, exit_process=statuses.append)

    thread = _hold(watch, release)
    asyncio.run(exit_when_stuck(watch, 0.3, check_every_seconds=0.05, exit_process=statuses.append))
    assert statuses == [STUCK_EXIT_STATUS]
    release.set()
    thread.join()
    asyncio.run(watch_for(0.5))  # nothing running: no exit
    assert statuses == [STUCK_EXIT_STATUS]


def test_a_stuck_limit_within_the_request_timeout_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"STUCK_CALL_SECONDS \(5\) must be more than REQUEST_TIMEOUT"):
        Settings(model_uri="models:/m/1", request_timeout_seconds=5, stuck_call_seconds=5)


class BlocksOnNegativeInput(PythonModel):
    """Doubles `x`; a negative `x` blocks forever, as a deadlocked native call would."""

    def predict(self, context: object, model_input: pd.DataFrame, params: object = None) -> pd.Series:
        if (model_input["x"] < 0).any():
            threading.Event().wait()
        return model_input["x"] * 2


@pytest.mark.slow
def test_a_stuck_call_gets_its_504_then_a_fresh_worker_serves_on(tmp_path: Path, api_key: str) -> None:
    model_path = tmp_path / "blocking-model"
    mlflow.pyfunc.save_model(str(model_path), python_model=BlocksOnNegativeInput())
    headers = {"X-API-Key": api_key}

    def score(x: float) -> httpx.Response:
        body = {"dataframe_split": {"columns": ["x"], "data": [[x]]}}
        return httpx.post(f"{api.url}/invocations", json=body, headers=headers, timeout=10)

    with api_process(
        tmp_path,
        MODEL_URI=str(model_path),
        API_KEY=api_key,
        WORKERS="2",
        REQUEST_TIMEOUT_SECONDS="1",
        STUCK_CALL_SECONDS="2",
        MONITORING_ENABLED="false",
    ) as api:
        api.wait_for("/readyz")
        stuck = score(-1)
        assert stuck.status_code == 504
        deadline = time.monotonic() + 20
        while "replaced by worker" not in api.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        log = api.log()
        assert "a model call has run for" in log
        assert f"exited (status {STUCK_EXIT_STATUS}); replaced by worker" in log
        answers = [score(x) for x in (1.0, 2.0, 3.0, 4.0)]
        assert [a.status_code for a in answers] == [200] * 4
        assert [a.json()["predictions"] for a in answers] == [[{"x": 2.0 * x}] for x in (1, 2, 3, 4)]
        assert api.process.poll() is None  # the server never went down
