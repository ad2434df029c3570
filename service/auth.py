"""Optional API key: `X-API-Key: <key>` or `Authorization: Bearer <key>`, compared in constant time.

The key is checked by `service.middleware.RequestGuard` on the request's headers, before any route runs
and before a byte of the body is read: an unauthenticated client cannot make the server buffer or parse
anything. FastAPI would read and decode a body before its dependencies run, so the check cannot be a
dependency; `api_key_schemes` only declares the two schemes in the OpenAPI document.
"""

import hmac
from collections.abc import Iterable
from typing import Annotated

from fastapi import Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

# Open with a key set: platform probes and scrapers send none, and the docs describe how to call.
OPEN_PATHS = frozenset(
    {
        *("/healthz", "/readyz", "/ping", "/health", "/metrics"),
        *("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"),
    }
)
UNAUTHENTICATED = "Missing or wrong API key: send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'."

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key, if one is set.")
_bearer = HTTPBearer(auto_error=False, description="The API key as a bearer token, if one is set.")


async def api_key_schemes(
    _api_key: Annotated[str | None, Security(_api_key_header)],
    _bearer_token: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> None:
    """Declares the key's two schemes in OpenAPI; the check itself ran before the body was read."""


def presents_key(headers: Iterable[tuple[bytes, bytes]], expected: SecretStr) -> bool:
    """Whether the raw ASGI headers carry `expected` in either header (constant-time comparison)."""
    presented: bytes | None = None
    for name, value in headers:
        if name == b"x-api-key":
            presented = value
            break
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            presented = value[7:].strip()
    if presented is None:
        return False
    return hmac.compare_digest(presented, expected.get_secret_value().encode())
