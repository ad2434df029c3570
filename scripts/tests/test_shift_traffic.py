"""`scripts.shift_traffic` against a real API process: the drift score it prints rises past the threshold,
and the API writes its per-window JSON log line."""

import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from service.tests.api_process import api_process
from testing.model_fixtures import LoggedModel

pytestmark = pytest.mark.slow

WINDOW_SECONDS = 6.0


def test_shifted_traffic_drives_the_score_past_the_threshold_and_the_api_logs_it(
    example_model: LoggedModel, tmp_path: Path
) -> None:
    api_key = secrets.token_urlsafe(24)
    environment = {
        "MODEL_URI": example_model.local_path,
        "WORKERS": "1",
        "API_KEY": api_key,
        "MONITORING_WINDOW_ROWS": "300",
        "MONITORING_MIN_ROWS": "100",
        "MONITORING_WINDOW_SECONDS": str(WINDOW_SECONDS),
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",  # our own model, trained by this session
    }
    with api_process(tmp_path, **environment) as api:
        api.wait_for("/readyz")
        started = time.monotonic()
        command = [sys.executable, "-m", "scripts.shift_traffic", "--api-url", api.url, "--feature", "rpm"]
        refused = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert refused.returncode == 1
        assert "pass --api-key or set API_KEY" in refused.stderr

        result = subprocess.run(
            [*command, "--api-key", api_key], capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        first, last = lines[1], lines[-1]
        assert "ordinary" in first
        assert "status ok" in first, result.stdout
        assert last.startswith("rpm is drifting: PSI ")
        assert "'rpm'" in last

        # The log line comes with the first request or read after a window's time: one read, then look.
        time.sleep(max(0.0, started + WINDOW_SECONDS - time.monotonic()) + 0.2)
        httpx.get(f"{api.url}/monitoring", headers={"X-API-Key": api_key}).raise_for_status()
        logged = [
            json.loads(line) for line in api.log().splitlines() if line.startswith('{"event":"model_drift"')
        ]
        assert len(logged) == 1, api.log()[-3000:]
        assert logged[0]["status"] == "drift"
        assert "rpm" in logged[0]["drifting"]
        assert logged[0]["psi"]["rpm"] > logged[0]["threshold"]


def test_an_api_that_is_not_there_is_named(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "scripts.shift_traffic", "--api-url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "cannot reach http://127.0.0.1:9" in result.stderr
    assert "make local" in result.stderr
