"""Optional API key: `X-API-Key: <key>` or `Authorization: Bearer <key>`, compared in constant time."""

import hmac
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from service.errors import ApiError

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key, if one is set.")
_bearer = HTTPBearer(auto_error=False, description="The API key as a bearer token, if one is set.")


def require_api_key(
    request: Request,
    api_key: Annotated[str | None, Security(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> None:
    """Pass when no key is configured, or when the request presents it; else 401."""
    expected = request.app.state.settings.api_key
    if expected is None:
        return
    presented = api_key if api_key is not None else (bearer.credentials if bearer is not None else None)
    if presented is None or not hmac.compare_digest(presented.encode(), expected.get_secret_value().encode()):
        raise ApiError(
            401,
            "Missing or wrong API key: send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
