"""The scoring lane answers exactly what the FastAPI routes answer, and only where they would."""

from collections.abc import Iterator

import orjson
import pytest
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from service import app as app_module
from service.app import create_app
from service.routes import invocations, predict
from service.scoring_lane import SCORING_PATHS
from service.settings import Settings
from service.tests.conftest import wait_until_ready

JSON = {"Content-Type": "application/json"}


class NoLane:
    """ScoringLane taken out: every request goes through FastAPI's routing to the route functions."""

    def __init__(self, app: ASGIApp, state: object) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def routes_only(settings: Settings) -> Iterator[TestClient]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(app_module, "ScoringLane", NoLane)
        app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield wait_until_ready(test_client)


def _requests(rows: list[dict[str, float]]) -> list[tuple[str, bytes | str, dict[str, str]]]:
    columns = list(rows[0])
    split = {"dataframe_split": {"columns": columns, "data": [list(row.values()) for row in rows]}}
    csv = ",".join(columns) + "\n" + "\n".join(",".join(str(v) for v in row.values()) for row in rows)
    return [
        ("/invocations", orjson.dumps(split), JSON),
        ("/invocations", orjson.dumps({"dataframe_records": rows, "params": {}}), JSON),
        ("/invocations", orjson.dumps({"inputs": rows * 30}), JSON),  # past INLINE_MAX_ROWS: a thread
        ("/invocations", csv, {"Content-Type": "text/csv"}),
        ("/invocations", b"{not json", JSON),
        ("/invocations", orjson.dumps({"dataframe_records": [{**rows[0], "rpm": "fast"}]}), JSON),
        ("/invocations", orjson.dumps({"dataframe_records": rows * 20}), JSON),  # over MAX_ROWS (50)
        ("/invocations", b"{}", {"Content-Type": "application/xml"}),
        ("/invocations", b"{}", {}),
        ("/predict", orjson.dumps({"rows": rows}), JSON),
        ("/predict", orjson.dumps({"rows": [{"unknown": 1.0}]}), JSON),
        ("/predict", csv, {"Content-Type": "text/csv"}),
    ]


def test_each_request_gets_the_same_answer_with_and_without_the_lane(
    client: TestClient, routes_only: TestClient, rows: list[dict[str, float]]
) -> None:
    statuses = set()
    for path, body, headers in _requests(rows):
        through_lane = client.post(path, content=body, headers=headers)
        through_routes = routes_only.post(path, content=body, headers=headers)
        what = f"{path} {headers} {body[:60]!r}"
        assert through_lane.status_code == through_routes.status_code, what
        assert through_lane.content == through_routes.content, what
        assert through_lane.headers.get("content-type") == through_routes.headers.get("content-type"), what
        statuses.add(through_lane.status_code)
    assert {200, 400, 413, 415, 422} <= statuses  # the requests above reach every kind of answer


def test_other_methods_and_paths_are_left_to_fastapi(client: TestClient, routes_only: TestClient) -> None:
    for method, path in (("GET", "/invocations"), ("POST", "/invocations/"), ("POST", "/predictions")):
        through_lane = client.request(method, path, json={}, follow_redirects=False)
        through_routes = routes_only.request(method, path, json={}, follow_redirects=False)
        assert through_lane.status_code == through_routes.status_code, path
        assert through_lane.status_code in {307, 404, 405}, path


def test_once_loaded_the_lane_answers_the_scoring_routes_the_app_serves(
    client: TestClient, rows: list[dict[str, float]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lane's paths are the app's POST model routes, and it is the lane that answers them: the routes'
    own `score` is made to fail, and the answers stay 200."""
    posted = {
        path
        for path, methods in client.app.openapi()["paths"].items()  # type: ignore[attr-defined]
        if "post" in methods and "model" in methods["post"].get("tags", [])
    }
    assert posted == set(SCORING_PATHS)

    async def not_the_route(*args: object) -> bytes:
        raise AssertionError("a FastAPI route answered")

    monkeypatch.setattr(invocations, "score", not_the_route)
    monkeypatch.setattr(predict, "score", not_the_route)
    assert client.post("/invocations", json={"dataframe_records": rows}).status_code == 200
    assert client.post("/predict", json={"rows": rows}).status_code == 200
