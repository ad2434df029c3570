"""`python -m service` as a real process, one worker and forked workers: how it starts and how it stops.

- With the tracking server down at start (a `models:/` URI), the port opens at once: live, unready with a
  reason that names no internals, and ready as soon as the tracking server answers again.
- On SIGTERM, a request in flight finishes; one whose body never completes gets our JSON 504 before the
  grace ends (never uvicorn's plain-text 500); then the process exits.
"""

import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from mlops_stack.ports import free_port
from scripts.tests.sizes import SMALL
from scripts.train import train_and_register
from service.tests.api_process import api_process, connect, read_response, request_bytes
from testing.mlflow_server import MlflowServer

pytestmark = pytest.mark.slow

WORKER_MODES = pytest.mark.parametrize("workers", ["1", "2"], ids=["one-worker", "forked-workers"])


class Relay:
    """A TCP path to the tracking server that starts cut: its port refuses connections (as a tracking
    server that is down does) until `restore`, after which every connection is piped to the server."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.listener: socket.socket | None = None

    def restore(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            sock.close()


@pytest.fixture(scope="module")
def registered_model(mlflow_server: MlflowServer) -> str:
    """A small model registered on the shared tracking server; its `models:/` URI."""
    name = f"lifecycle-{uuid.uuid4().hex[:8]}"
    previous = {key: os.environ.get(key) for key in mlflow_server.client_env()}
    os.environ.update(mlflow_server.client_env())
    try:
        version = train_and_register(model_name=name, **SMALL).version
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return f"models:/{name}/{version}"


@pytest.fixture
def relay(mlflow_server: MlflowServer) -> Iterator[Relay]:
    path = Relay(int(mlflow_server.url.rsplit(":", 1)[1]))
    yield path
    path.close()


@WORKER_MODES
def test_starts_with_the_tracking_server_down_serves_once_it_is_back_and_drains_on_sigterm(
    registered_model: str, mlflow_server: MlflowServer, relay: Relay, tmp_path: Path, workers: str
) -> None:
    """One life per worker mode (each process start costs seconds, so one process covers all three)."""
    environment = {
        "MODEL_URI": registered_model,
        "WORKERS": workers,
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{relay.port}",
        "MLFLOW_TRACKING_USERNAME": mlflow_server.username,
        "MLFLOW_TRACKING_PASSWORD": mlflow_server.password,
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",  # our own model, trained by this test
        "MODEL_LOAD_BUDGET_SECONDS": "120",
        "REQUEST_TIMEOUT_SECONDS": "2",
        "SHUTDOWN_TIMEOUT_SECONDS": "4",
    }
    with api_process(tmp_path, **environment) as api:
        # Down: live, unready, saying why in words that name nothing internal; the cause is in the log.
        api.wait_for("/healthz", timeout=60)
        waiting = api.wait_for("/readyz", status=503)
        deadline = time.monotonic() + 30
        while "retrying" not in waiting.json()["reason"] and time.monotonic() < deadline:
            waiting = api.wait_for("/readyz", status=503)
        refused = api.wait_for("/version", status=503)
        api.wait_for("/ping", status=404)  # as MLflow's scoring server answers before its model loads
        assert "retrying" in waiting.json()["reason"]
        assert refused.headers["retry-after"] == "5"
        for text in (waiting.text, refused.text):
            assert str(relay.port) not in text
            assert registered_model.split("/")[1] not in text
            assert "Error" not in text
        assert str(relay.port) in api.log(), "the cause is logged"

        # Back: ready with the pinned model, and serving.
        relay.restore()
        api.wait_for("/readyz", timeout=60)
        assert api.wait_for("/version").json()["model_uri"] == registered_model
        data = prediction_request()
        with connect(api.port) as sock:
            sock.sendall(data)
            served = read_response(sock)
        assert served is not None
        assert served.status == 200

        # SIGTERM: a request in flight completes; one whose body stops half-way gets our JSON 504 when its
        # timeout (2 s) ends, before the grace (4 s) does; then the process exits on its own.
        finishing, stalled = connect(api.port), connect(api.port)
        finishing.sendall(data[:-10])
        stalled.sendall(data[:-10])
        time.sleep(0.3)
        api.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert api.process.poll() is None, "exited with requests in flight"
        finishing.sendall(data[-10:])
        completed, timed_out = read_response(finishing), read_response(stalled)
        # uvicorn re-raises the signal once drained: "terminated by SIGTERM" is a clean exit too.
        assert api.process.wait(timeout=15) in (0, -signal.SIGTERM)
        finishing.close()
        stalled.close()
        log = api.log()
    assert completed is not None
    assert completed.status == 200
    assert b'"predictions"' in completed.body
    assert timed_out is not None
    assert (timed_out.status, timed_out.headers["content-type"]) == (504, "application/json")
    assert orjson.loads(timed_out.body)["error_code"] == "TIMEOUT"
    assert "Cancel" not in log, "uvicorn had to cancel a request at the end of the grace"


def prediction_request() -> bytes:
    row = dict.fromkeys(("temperature_c", "vibration_mm_s", "pressure_kpa", "humidity_pct", "rpm"), 1.0)
    body = orjson.dumps({"dataframe_records": [row]})
    return request_bytes("POST", "/invocations", {"Content-Type": "application/json"}, body)
