"""IAM policy documents as JSON, built in one place so every role reads the same way.

Documents are plain dicts serialised with `pulumi.Output.json_dumps`, so ARNs that are still outputs can sit
inside them, and tests read back exactly the JSON AWS would get.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi

Statement = dict[str, Any]


def allow(
    sid: str,
    actions: Sequence[str],
    resources: Sequence[pulumi.Input[str]],
    condition: Mapping[str, Any] | None = None,
) -> Statement:
    """An Allow statement; `resources` are named ARNs (a `*` is written out, with a comment, where needed)."""
    statement: Statement = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": list(actions),
        "Resource": list(resources),
    }
    if condition:
        statement["Condition"] = dict(condition)
    return statement


def deny(
    sid: str,
    actions: Sequence[str],
    resources: Sequence[pulumi.Input[str]],
    condition: Mapping[str, Any] | None = None,
    principal: Any = None,
) -> Statement:
    statement: Statement = {
        "Sid": sid,
        "Effect": "Deny",
        "Action": list(actions),
        "Resource": list(resources),
    }
    if principal is not None:
        statement["Principal"] = principal
    if condition:
        statement["Condition"] = dict(condition)
    return statement


def document(*statements: Statement) -> pulumi.Output[str]:
    """A policy document from statements whose values may be outputs."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def service_trust(service: str, source_account: pulumi.Input[str] | None) -> pulumi.Output[str]:
    """Trust policy for an AWS service principal; with `source_account`, only when the service acts for this
    account (confused-deputy protection, for services that document `aws:SourceAccount` on their requests).

    A `StringEquals` on a key the service does not send never matches, and the service could not assume the
    role at all, so callers pass None for a service whose docs show no such condition.
    """
    statement: Statement = {
        "Sid": "AssumedByService",
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if source_account is not None:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return document(statement)


def github_oidc_trust(provider_arn: pulumi.Input[str], subject: pulumi.Input[str]) -> pulumi.Output[str]:
    """Trust policy for GitHub Actions' OIDC tokens with exactly this subject and the STS audience.

    StringEquals, never StringLike: a wildcard in `sub` would let other branches, environments or
    repositories assume the role.
    """
    return document(
        {
            "Sid": "GitHubActionsOidc",
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                    "token.actions.githubusercontent.com:sub": subject,
                }
            },
        }
    )


def deny_except(
    sid: str,
    allowed_actions: Sequence[str],
    resources: Sequence[pulumi.Input[str]],
    condition: Mapping[str, Any] | None = None,
) -> Statement:
    """A Deny of every action but `allowed_actions` (NotAction) on `resources`."""
    statement: Statement = {
        "Sid": sid,
        "Effect": "Deny",
        "NotAction": list(allowed_actions),
        "Resource": list(resources),
    }
    if condition:
        statement["Condition"] = dict(condition)
    return statement


def deny_outside(sid: str, actions: Sequence[str], kept: Sequence[pulumi.Input[str]]) -> Statement:
    """A Deny of `actions` on every resource but `kept` (NotResource); on everything when `kept` is empty."""
    statement: Statement = {"Sid": sid, "Effect": "Deny", "Action": list(actions)}
    if kept:
        statement["NotResource"] = list(kept)
    else:
        statement["Resource"] = ["*"]
    return statement
