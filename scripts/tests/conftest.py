"""Fixtures for the scripts' tests."""

import uuid

import pytest


@pytest.fixture
def model_name(request: pytest.FixtureRequest) -> str:
    """A registered-model name of this test's own: the MLflow server is shared by the whole session."""
    return f"{request.node.name[:40]}-{uuid.uuid4().hex[:8]}".replace("[", "-").replace("]", "")
