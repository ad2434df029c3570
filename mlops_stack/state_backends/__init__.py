"""Pulumi state backends, one module per cloud: a private, versioned, encrypted bucket and a KMS key.

Each `ensure_*_backend` function is idempotent: it creates what is missing, converges settings that
drifted, and reports every change it made in `StateBackend.changes` (empty on a re-run). A bucket name
that belongs to someone else, or an existing bucket this tool did not create, is a `BootstrapError`.
"""

from dataclasses import dataclass, field

MARKER_KEY = "mlops-stack-role"
"""Tag/label/metadata key that says "bootstrap made this, for Pulumi state"."""
MARKER_VALUE = "pulumi-state"


class BootstrapError(RuntimeError):
    """The backend cannot be set up as asked; the message says why and what to do instead."""


@dataclass
class StateBackend:
    """What `pulumi login` and `pulumi stack init --secrets-provider` need, and what this run changed."""

    login_url: str
    secrets_provider: str
    changes: list[str] = field(default_factory=list)
