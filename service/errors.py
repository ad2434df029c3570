"""One JSON error shape for every failure, `{"error_code": ..., "message": ...}` as MLflow's server uses.

A client mistake is always a 4xx whose message says what was wrong and how to fix it, in our own words:
an answer never carries an exception's text from pandas, numpy or MLflow, a file path, the tracking URL
or the model's name (those go to the log). What a message echoes from the request is cut short
(`echo`, `echo_names`), so a hostile body cannot make the answer large.
"""

import logging
from collections.abc import Iterable, Mapping

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

logger = logging.getLogger(__name__)

_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "INVALID_INPUT",
    431: "HEADERS_TOO_LARGE",
    503: "UNAVAILABLE",
    504: "TIMEOUT",
}
INTERNAL_ERROR = "Internal error; it has been logged. Please report it if it persists."
ECHO_CHARS = 60
ECHO_NAMES = 10


class ApiError(Exception):
    """A request we refuse, with the status and the message the client gets."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: Mapping[str, str] | None = None,
        error_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers
        self.error_code = error_code
        """MLflow's code for this refusal when not the status's usual one (service.input_rules)."""


def error_body(status: int, message: str, error_code: str | None = None) -> bytes:
    """The JSON bytes of an error answer (also written by the HTTP protocol, outside any ASGI app)."""
    return orjson.dumps({"error_code": error_code or _CODES.get(status, "ERROR"), "message": message})


def error_response(
    status: int, message: str, headers: Mapping[str, str] | None = None, error_code: str | None = None
) -> Response:
    """The JSON error every route and middleware answers with."""
    return Response(
        error_body(status, message, error_code),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def echo(value: object, limit: int = ECHO_CHARS) -> str:
    """A client's value as it may appear in a message: its repr, at most `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def echo_names(names: Iterable[object], limit: int = ECHO_NAMES) -> str:
    """`['a', 'b', ... and 7 more]`: at most `limit` names, each cut by `echo`."""
    listed = list(names)
    shown = ", ".join(echo(name, 40) for name in listed[:limit])
    more = f", ... and {len(listed) - limit} more" if len(listed) > limit else ""
    return f"[{shown}{more}]"


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception a request can raise to `error_response`."""
    app.add_exception_handler(ApiError, _on_api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _on_http_exception)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _on_unexpected)


async def _on_api_error(_: Request, error: ApiError) -> Response:
    return error_response(error.status, error.message, error.headers, error.error_code)


async def _on_validation_error(_: Request, error: RequestValidationError) -> Response:
    """Query or path parameters FastAPI validated (the prediction routes validate their bodies themselves)."""
    problems = [_describe(problem) for problem in error.errors()[:20]]
    return error_response(422, "Invalid request: " + "; ".join(problems))


def _describe(problem: object) -> str:
    """`query.limit: Input should be a valid integer` from one pydantic error, cut short."""
    if not isinstance(problem, dict):
        return echo(problem)
    where = ".".join(str(part)[:40] for part in problem.get("loc", ()))
    return f"{where}: {str(problem.get('msg', 'invalid'))[:200]}"


async def _on_http_exception(_: Request, error: HTTPException) -> Response:
    return error_response(error.status_code, str(error.detail), error.headers)


async def _on_unexpected(request: Request, error: Exception) -> Response:
    logger.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
    return error_response(500, INTERNAL_ERROR)
