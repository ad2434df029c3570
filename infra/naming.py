"""Names and labels shared by every cloud.

Logical names are `f"{stack}-{purpose}"`; clouds whose physical names have tight limits (GCP service account
ids, Azure storage accounts) use `short_name`, which keeps names readable and unique per stack by replacing
the overflow with a stable hash. Names that must be unique beyond the stack (globally, or across a
resource's recreation) get `unique_name`: that, plus a random suffix kept in state.
"""

import hashlib
import re

import pulumi
import pulumi_random as random

from infra.config import StackSettings

UNIQUE_SUFFIX_LENGTH = 6


def short_name(*parts: str, max_length: int, separator: str = "-", alphanumeric: bool = False) -> str:
    """Join parts into a lowercase name of at most max_length characters, stable for the same parts.

    Too-long names keep their start and end with a 6-character hash of the whole, so two stacks whose
    names share a long prefix still get different names.
    """
    allowed = r"[^a-z0-9]" if alphanumeric else r"[^a-z0-9-]"
    joined = (("" if alphanumeric else separator).join(parts)).lower()
    name = re.sub(allowed, "", joined.replace("_", "-"))
    if len(name) <= max_length:
        return name
    digest = hashlib.sha256(joined.encode()).hexdigest()[:6]
    keep = max_length - len(digest) - (0 if alphanumeric else 1)
    return f"{name[:keep]}{'' if alphanumeric else separator}{digest}".replace("--", "-")


def unique_name(
    suffix_name: str,
    *parts: str,
    max_length: int,
    parent: pulumi.Resource,
    alphanumeric: bool = False,
) -> pulumi.Output[str]:
    """`short_name(*parts)` and a random suffix of UNIQUE_SUFFIX_LENGTH lowercase letters and digits (the
    `random.RandomString` named `suffix_name`, a child of `parent`), joined by '-' unless `alphanumeric`; at
    most `max_length` characters. For names that are global (Azure storage accounts, registries, vaults,
    PostgreSQL servers) or that a platform keeps after deletion (ECS services)."""
    separator = "" if alphanumeric else "-"
    suffix = random.RandomString(
        suffix_name,
        length=UNIQUE_SUFFIX_LENGTH,
        special=False,
        upper=False,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    prefix_length = max_length - UNIQUE_SUFFIX_LENGTH - len(separator)
    prefix = short_name(*parts, max_length=prefix_length, alphanumeric=alphanumeric)
    return pulumi.Output.concat(prefix, separator, suffix.result)


def label_safe(value: str) -> str:
    """A value GCP accepts as a label (lowercase letters, digits, '_' and '-', at most 63 characters)."""
    return re.sub(r"[^a-z0-9_-]", "-", value.lower())[:63]


def expiry_label(settings: StackSettings) -> str | None:
    """The sandbox's expiry as a label value the sweeper can parse back: YYYYMMDDtHHMMSSz in UTC."""
    if settings.sandbox_expires_at is None:
        return None
    from datetime import UTC

    return settings.sandbox_expires_at.astimezone(UTC).strftime("%Y%m%dt%H%M%Sz")


def labels(settings: StackSettings) -> dict[str, str]:
    """Labels (GCP) / tags (AWS, Azure) on every resource that takes them.

    `expires-at` marks sandboxes so a sweeper can find and remove them from the cloud side too.
    """
    result = {
        "app": "mlops-stack",
        "stack": label_safe(settings.stack),
        "environment": settings.environment.value,
        "managed-by": "pulumi",
    }
    expiry = expiry_label(settings)
    if expiry is not None:
        result["expires-at"] = expiry
    return result
