"""Shared names and labels."""

from datetime import UTC, datetime

from infra.naming import labels, short_name
from infra.platform import load_stack_settings

SANDBOX = {
    "mlops-stack:cloud": "azure",
    "mlops-stack:environment": "sandbox",
    "mlops-stack:githubRepository": "o/r",
    "mlops-stack:sandboxExpiresAt": "2026-12-01T19:30:00+01:00",
    "azure-native:location": "westeurope",
    "mlops-stack:azureResourceGroup": "mlops-stack-azure-dev-sandboxes",
}


def test_short_names_fit_and_stay_distinct():
    a = short_name("mlops", "gcp-sandbox-pr-1234-feature-branch", "tracking", max_length=30)
    b = short_name("mlops", "gcp-sandbox-pr-1234-feature-branch", "api", max_length=30)
    assert len(a) <= 30
    assert len(b) <= 30
    assert a != b
    assert a == short_name("mlops", "gcp-sandbox-pr-1234-feature-branch", "tracking", max_length=30)
    assert short_name("mlops", "gcp-dev", "api", max_length=30) == "mlops-gcp-dev-api"


def test_alphanumeric_names_drop_separators():
    name = short_name("ml", "azure-sandbox-pr7", max_length=24, alphanumeric=True)
    assert name == "mlazuresandboxpr7"
    long = short_name("mlops", "azure-sandbox-a-very-long-sandbox-name", max_length=24, alphanumeric=True)
    assert len(long) == 24
    assert long.isalnum()


def test_sandbox_labels_carry_a_parseable_utc_expiry():
    settings = load_stack_settings(read=SANDBOX.get, stack="azure-sandbox-pr7")
    result = labels(settings)
    assert result["environment"] == "sandbox"
    assert result["stack"] == "azure-sandbox-pr7"
    expiry = datetime.strptime(result["expires-at"], "%Y%m%dt%H%M%Sz").replace(tzinfo=UTC)
    assert expiry == datetime(2026, 12, 1, 18, 30, tzinfo=UTC)
