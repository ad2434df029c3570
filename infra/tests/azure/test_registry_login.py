"""The keyless push login: what the program sends to ACR's token endpoint (the endpoint is faked)."""

import io
import json
import secrets
import urllib.parse
import urllib.request
from typing import Any

import pytest

from infra.azure import registry


def test_exchange_posts_the_entra_token_to_the_registry_and_returns_its_refresh_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[urllib.request.Request] = []
    refresh_token = secrets.token_urlsafe(24)
    aad_token = secrets.token_urlsafe(24)

    def fake_urlopen(request: urllib.request.Request, timeout: float) -> Any:
        sent.append(request)
        assert timeout == registry.EXCHANGE_TIMEOUT_SECONDS
        return io.BytesIO(json.dumps({"refresh_token": refresh_token}).encode())

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    token = registry.exchange_for_acr_refresh_token("stackimages1a2b3c.azurecr.io", "tenant-1", aad_token)
    assert token == refresh_token
    (request,) = sent
    assert request.full_url == "https://stackimages1a2b3c.azurecr.io/oauth2/exchange"
    assert request.get_method() == "POST"
    assert request.get_header("Content-type") == "application/x-www-form-urlencoded"
    assert isinstance(request.data, bytes)
    assert urllib.parse.parse_qs(request.data.decode()) == {
        "grant_type": ["access_token"],
        "service": ["stackimages1a2b3c.azurecr.io"],
        "tenant": ["tenant-1"],
        "access_token": [aad_token],
    }
