"""The prediction routes' hot path: once the model is loaded, POST /invocations and /predict go from the
guards straight to the data plane, as plain ASGI, past FastAPI's routing and dependency solving.

Measured in one process on the 50-tree example model (one row): FastAPI's routing, its middleware stack and
dependency solving took ~200 us of a ~430 us request, more than predicting the row with the compiled
ensemble. Both ways run the same function, `score`: the FastAPI routes (service.routes.invocations and
.predict) still describe the API in OpenAPI and answer while no model is loaded (503 with the reason), and
this lane answers the same bytes (held by service/tests/test_scoring_lane.py, each request sent both ways).

It sits inside RequestMetrics and RequestGuard, so the API key, the body limit, the request timeout and the
request metrics apply to it as to every route.
"""

import logging

from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

from service.data_plane import DataPlane
from service.errors import INTERNAL_ERROR, ApiError, error_response
from service.metrics import PREDICTIONS

logger = logging.getLogger(__name__)

SCORING_PATHS = frozenset({"/invocations", "/predict"})
_JSON_HEADERS = [(b"content-type", b"application/json")]


async def score(plane: DataPlane, path: str, body: bytes, content_type: str | None) -> bytes:
    """One request to a scoring route: predict, count its rows, return the answer's JSON body."""
    predict = plane.invocations if path == "/invocations" else plane.predict
    prediction = await predict(body, content_type)
    PREDICTIONS.labels(path).inc(prediction.rows)
    return prediction.body


class ScoringLane:
    """Answers POST to a scoring route the app serves, once `state.plane` exists; all else goes to `app`."""

    def __init__(self, app: ASGIApp, state: State) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        plane: DataPlane | None = self.state.plane
        if (
            plane is None
            or scope["type"] != "http"
            or scope["method"] != "POST"
            or path not in SCORING_PATHS
            or path not in self.state.route_paths  # /predict exists only for models with named inputs
        ):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client went away
        try:
            answer = await score(plane, path, body, _content_type(scope))
        except ApiError as error:
            await error_response(error.status, error.message, error.headers, error.error_code)(
                scope, receive, send
            )
            return
        except Exception:
            # What the app's own handler does (service.errors): a bug of ours, logged; the client gets a 500.
            logger.exception("unexpected error on POST %s", path)
            await error_response(500, INTERNAL_ERROR)(scope, receive, send)
            return
        headers = [(b"content-length", str(len(answer)).encode()), *_JSON_HEADERS]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body (RequestGuard's `receive` refuses it as it passes the limit), None on a disconnect."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _content_type(scope: Scope) -> str | None:
    """The first Content-Type header, decoded as Starlette's `request.headers` does (latin-1)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return str(value.decode("latin-1"))
    return None
