"""Side by side with a real `mlflow models serve`: each flavor we serve answers the same requests with the
same status and, when it predicts, the same JSON body.

Flavors: scikit-learn (skops), LightGBM, a PythonModel taking a DataFrame of mixed column types, and a
type-hinted PythonModel taking `list[str]` (testing/model_fixtures.py). One `mlflow models serve` per
flavor for the module, all started at once (each costs seconds to start). A refusal is compared by status
and MLflow's `error_code`; its message is ours (MLflow's quotes the request and a traceback, ours says
what to fix: service/errors.py). Where our answer differs on purpose, `DIFFERENCES` names the case, both
statuses and why; the README lists them.
"""

import io
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow.pyfunc.scoring_server import get_cmd

from mlops_stack.ports import free_port
from service.app import create_app
from service.settings import Settings
from service.tests.conftest import wait_until_ready
from testing.model_fixtures import FlavorModel, LoggedModel

pytestmark = pytest.mark.slow

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"


@contextmanager
def mlflow_models_serve(*model_paths: str) -> Iterator[list[str]]:
    """`mlflow models serve -m <path> --env-manager local` of each path on a free loopback port, all
    started at once (each takes seconds to import MLflow and load its model), once each answers /ping.

    The command is the one that CLI runs (MLflow's own `scoring_server.get_cmd`: its uvicorn app, one
    worker), started directly: the CLI would import MLflow once more before it, seconds per model."""
    processes, urls = [], []
    try:
        for path in model_paths:
            port = free_port()
            # MLflow annotates `host` as an int; it is the host name its CLI passes on.
            command, env = get_cmd(path, port=port, host="127.0.0.1", nworkers=1)  # type: ignore[arg-type]
            assert command.startswith("uvicorn "), command
            argv = [sys.executable, "-m", *shlex.split(command)]
            processes.append(subprocess.Popen(argv, env=env, start_new_session=True))
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 150
        for process, url in zip(processes, urls, strict=True):
            while not _answers_ping(url):
                assert process.poll() is None, "mlflow models serve exited"
                assert time.monotonic() < deadline, "mlflow models serve did not answer /ping in 150 s"
                time.sleep(0.3)
        yield urls
    finally:
        for process in processes:
            os.killpg(process.pid, 15)
        for process in processes:
            process.wait(timeout=30)


def _answers_ping(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ping", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@dataclass(frozen=True)
class Served:
    """One model, served by `mlflow models serve` and by us."""

    model: FlavorModel
    mlflow_url: str
    client: TestClient

    def both(self, path: str, content_type: str, body: bytes) -> tuple[httpx.Response, Any]:
        headers = {"Content-Type": content_type}
        theirs = httpx.post(f"{self.mlflow_url}{path}", content=body, headers=headers, timeout=30)
        ours = self.client.post(path, content=body, headers=headers)
        return theirs, ours


@pytest.fixture(scope="module")
def flavors(
    example_model: LoggedModel,
    lightgbm_model: FlavorModel,
    frame_model: FlavorModel,
    type_hinted_model: FlavorModel,
) -> dict[str, FlavorModel]:
    sklearn = FlavorModel("sklearn", example_model.local_path, example_model.sample)
    return {model.flavor: model for model in (sklearn, lightgbm_model, frame_model, type_hinted_model)}


@pytest.fixture(scope="module")
def mlflow_urls(flavors: dict[str, FlavorModel]) -> Iterator[dict[str, str]]:
    """One `mlflow models serve` per flavor for the whole module."""
    with mlflow_models_serve(*(model.local_path for model in flavors.values())) as urls:
        yield dict(zip(flavors, urls, strict=True))


@pytest.fixture(scope="module", params=["sklearn", "lightgbm", "pyfunc-dataframe", "pyfunc-type-hints"])
def served(
    request: pytest.FixtureRequest, flavors: dict[str, FlavorModel], mlflow_urls: dict[str, str]
) -> Iterator[Served]:
    model = flavors[request.param]
    app = create_app(Settings(model_uri=model.local_path))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Served(model, mlflow_urls[model.flavor], wait_until_ready(client))


def parquet(frame: pd.DataFrame) -> bytes:
    out = io.BytesIO()
    frame.to_parquet(out, index=False)
    return out.getvalue()


def js(value: Any) -> bytes:
    return orjson.dumps(value)


# The requests: (case, content type, body) from the model's sample.
Requests = Callable[[Any], list[tuple[str, str, bytes]]]


def tabular_requests(sample: pd.DataFrame) -> list[tuple[str, str, bytes]]:
    frame = sample.head(5)
    records = frame.to_dict(orient="records")
    first = records[0]
    name = frame.columns[0]
    other = frame.columns[-1]
    text_in_number = {**first, other: "lots"}
    return [
        ("split", JSON, js({"dataframe_split": frame.to_dict(orient="split", index=False)})),
        ("records", JSON, js({"dataframe_records": records})),
        ("instances", JSON, js({"instances": records})),
        ("inputs-columns", JSON, js({"inputs": frame.to_dict(orient="list")})),
        ("inputs-records", JSON, js({"inputs": records})),
        ("records-params", JSON, js({"dataframe_records": records, "params": {}})),
        ("csv", CSV, frame.to_csv(index=False).encode()),
        ("csv-charset", f"{CSV}; charset=utf-8", frame.to_csv(index=False).encode()),
        ("parquet", PARQUET, parquet(frame)),
        ("missing-column", JSON, js({"dataframe_records": [{k: v for k, v in first.items() if k != name}]})),
        ("extra-column", JSON, js({"dataframe_records": [{**first, "colour": 1.0}]})),
        ("text-in-number", JSON, js({"dataframe_records": [text_in_number]})),
        ("null-value", JSON, js({"dataframe_records": [{**first, other: None}]})),
        ("split-short-row", JSON, js({"dataframe_split": {"columns": list(frame.columns), "data": [[1]]}})),
        ("no-rows", JSON, js({"dataframe_records": []})),
        ("bad-json", JSON, b'{"dataframe_records": [{'),
        ("list-body", JSON, js([first])),
        ("no-layout", JSON, js({"rows": records})),
        ("two-layouts", JSON, js({"dataframe_records": records, "instances": records})),
        ("unknown-field", JSON, js({"dataframe_records": records, "colour": "red"})),
        ("chat-messages", JSON, js({"messages": [{"role": "user", "content": "hi"}]})),
        ("csv-extra-column", CSV, frame.assign(colour=1.0).to_csv(index=False).encode()),
        ("csv-missing-column", CSV, frame.drop(columns=[name]).to_csv(index=False).encode()),
        ("csv-garbage", CSV, b"\x00\x01\x02"),
        ("parquet-ints", PARQUET, parquet(frame.round().astype({other: "int64"}))),
        ("parquet-text", PARQUET, parquet(frame.astype({other: str}))),
        ("parquet-indexed", PARQUET, parquet(frame.set_index(frame.index + 100))),
        ("parquet-extra-column", PARQUET, parquet(frame.assign(colour=1.0))),
        ("parquet-missing-column", PARQUET, parquet(frame.drop(columns=[name]))),
        ("parquet-garbage", PARQUET, b"PAR1 not parquet"),
        ("x-parquet", "application/x-parquet", parquet(frame)),
        ("text-plain", "text/plain", js({"dataframe_records": records})),
        ("latin-1", f"{JSON}; charset=latin-1", js({"dataframe_records": records})),
    ]


def type_hinted_requests(sample: list[str]) -> list[tuple[str, str, bytes]]:
    return [
        ("inputs", JSON, js({"inputs": sample})),
        ("inputs-params", JSON, js({"inputs": sample, "params": {}})),
        ("split", JSON, js({"dataframe_split": {"columns": ["x"], "data": [["a"]]}})),
        ("instances", JSON, js({"instances": sample})),
        ("numbers", JSON, js({"inputs": [1, 2]})),
        ("not-a-list", JSON, js({"inputs": "hello"})),
        ("an-object", JSON, js({"inputs": {"text": "hello"}})),
        ("unknown-field", JSON, js({"inputs": sample, "colour": "red"})),
        ("empty", JSON, js({"inputs": []})),
        ("bad-json", JSON, b'{"inputs": ['),
        ("csv", CSV, b"x\na\nb\n"),
        ("parquet", PARQUET, parquet(pd.DataFrame({"x": sample}))),
        ("x-parquet", "application/x-parquet", b"PAR1"),
    ]


def requests_for(model: FlavorModel) -> list[tuple[str, str, bytes]]:
    if model.flavor == "pyfunc-type-hints":
        return type_hinted_requests(model.sample)
    if model.flavor == "pyfunc-dataframe":
        flat = {"city": "Paris", "rooms": 1, "area_m2": -5.0}
        raises = ("model-raises", JSON, js({"dataframe_records": [flat]}))
        return [*tabular_requests(model.sample), raises]
    return tabular_requests(model.sample)


# (flavor or "*", case) -> (our status, MLflow's status, why we differ). Only the statuses are compared.
EXTRA_COLUMN = "a column the signature does not name is refused and named; MLflow drops it unseen"
DIFFERENCES: dict[tuple[str, str], tuple[int, int, str]] = {
    ("*", "extra-column"): (400, 200, EXTRA_COLUMN),
    ("*", "csv-extra-column"): (400, 200, EXTRA_COLUMN),
    ("*", "parquet-extra-column"): (400, 200, EXTRA_COLUMN),
    ("*", "unknown-field"): (
        400,
        200,
        "a top-level field other than the layout and params is refused and named (a misspelt params would "
        "be ignored); MLflow ignores it",
    ),
    ("*", "chat-messages"): (
        400,
        400,
        "a top-level messages/prompt/input body (MLflow's unified LLM format, handed to the model as is) is "
        "refused as a missing layout, BAD_REQUEST; MLflow's model refuses it, INVALID_PARAMETER_VALUE",
    ),
}


def answer(response: Any, theirs: bool = False) -> tuple[int, Any]:
    """What must be equal: the status, and the JSON body of a prediction or the error_code of a refusal
    (MLflow answers a 415 in plain text: its status only)."""
    if response.headers.get("content-type") != JSON:
        assert theirs, f"ours answered {response.headers.get('content-type')}"
        return response.status_code, None
    body = response.json()
    return response.status_code, body if response.status_code == 200 else body["error_code"]


def test_every_request_gets_mlflows_answer(served: Served) -> None:
    """Every request of the flavor's set through /invocations: our answer is MLflow's, or the documented
    difference (both statuses as listed in DIFFERENCES)."""
    mismatches = []
    for case, content_type, body in requests_for(served.model):
        theirs, ours = served.both("/invocations", content_type, body)
        expected = DIFFERENCES.get((served.model.flavor, case), DIFFERENCES.get(("*", case)))
        if expected is not None:
            if (ours.status_code, theirs.status_code) != expected[:2]:
                got = (ours.status_code, theirs.status_code)
                mismatches.append(f"{case}: documented {expected[:2]}, got {got}")
            continue
        (status, mine), (their_status, their_body) = answer(ours), answer(theirs, theirs=True)
        if status != their_status or (their_body is not None and mine != their_body):
            mismatches.append(f"{case}: ours {ours.text[:200]} / theirs {their_status} {theirs.text[:300]}")
    assert not mismatches, "\n".join(mismatches)


def test_predict_gives_mlflows_predictions(served: Served) -> None:
    """`/predict {"rows": [...]}` is `dataframe_records` (or, for a type-hinted model, `inputs`) under a
    name its OpenAPI schema can describe: the same predictions as MLflow's for that body, and where MLflow
    refuses the rows, a 422 (the status /predict's OpenAPI gives for invalid rows)."""
    model = served.model
    refused: list[Any]
    if model.flavor == "pyfunc-type-hints":
        rows: list[Any] = model.sample
        layout, refused = "inputs", [1, 2]
    else:
        rows = model.sample.head(5).to_dict(orient="records")
        layout, refused = "dataframe_records", [{**rows[0], model.sample.columns[-1]: "lots"}]
    for sent, status in ((rows, 200), (refused, 422)):
        theirs, _ = served.both("/invocations", JSON, js({layout: sent}))
        ours = served.client.post("/predict", json={"rows": sent})
        assert (ours.status_code, theirs.status_code) == (status, 200 if status == 200 else 400), ours.text
        if status == 200:
            assert ours.json() == theirs.json()


@pytest.mark.parametrize("path", ["/ping", "/health"])
def test_health_checks_answer_as_mlflows_do(served: Served, path: str) -> None:
    """Status, body and content type, as tools written for MLflow expect."""
    theirs = httpx.get(f"{served.mlflow_url}{path}", timeout=10)
    ours = served.client.get(path)
    assert (ours.status_code, ours.content) == (theirs.status_code, theirs.content) == (200, b"\n")
    assert ours.headers["content-type"] == theirs.headers["content-type"]
