"""One JSON error shape for every failure, `{"error_code": ..., "message": ...}` as MLflow's server uses.

A client mistake is always a 4xx whose message says what was wrong and how to fix it; anything else is
logged with its traceback and answered with a 500 that reveals nothing.
"""

import logging
from collections.abc import Mapping

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
    503: "NOT_READY",
    504: "TIMEOUT",
}


class ApiError(Exception):
    """A request we refuse, with the status and the message the client gets."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """The JSON error body every route and middleware answers with."""
    body = orjson.dumps({"error_code": _CODES.get(status, "ERROR"), "message": message})
    return Response(body, status_code=status, media_type="application/json", headers=dict(headers or {}))


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception a request can raise to `error_response`."""
    app.add_exception_handler(ApiError, _on_api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _on_http_exception)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _on_unexpected)


async def _on_api_error(_: Request, error: ApiError) -> Response:
    return error_response(error.status, error.message, error.headers)


async def _on_validation_error(_: Request, error: RequestValidationError) -> Response:
    problems = [_describe(problem) for problem in error.errors()[:20]]
    return error_response(422, "Invalid request body: " + "; ".join(problems))


def _describe(problem: object) -> str:
    """`rows.0.rpm: Input should be a valid number (got 'fast')` from one pydantic error."""
    if not isinstance(problem, dict):
        return str(problem)
    where = ".".join(str(part) for part in problem.get("loc", ()) if part != "body") or "body"
    message = str(problem.get("msg", "invalid"))
    if problem.get("type") in ("missing", "extra_forbidden", "json_invalid"):
        return f"{where}: {message}"
    return f"{where}: {message} (got {problem.get('input')!r:.80})"


async def _on_http_exception(_: Request, error: HTTPException) -> Response:
    return error_response(error.status_code, str(error.detail), error.headers)


async def _on_unexpected(request: Request, error: Exception) -> Response:
    logger.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
    return error_response(500, "Internal error; it has been logged. Please report it if it persists.")
