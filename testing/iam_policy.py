"""A small evaluator of AWS IAM policies against concrete requests, for tests of the policies we send.

Nothing here can ask AWS (`aws iam simulate-principal-policy` is the real thing: the README's first-deploy
checklist runs it). Moto does not stand in either: its policy engine treats an operator it does not know as
satisfied and any failed condition as a deny (moto/iam/access_control.py, `IAMPolicyStatement`). So this
module implements the part of AWS's documented evaluation logic our policies use, and refuses (raises
`UnsupportedPolicyError`) whatever it does not implement rather than guess.

What AWS documents, and this code does, for a request by a role session in the same account:

- Policy evaluation (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
  an explicit Deny in any applicable policy (identity-based, permissions boundary, resource-based) wins; with
  a permissions boundary, an action is allowed only if both the identity-based policies and the boundary allow
  it; otherwise the request is implicitly denied. Resource-based policies here contribute only their Deny
  statements: a resource-policy Allow that names a principal directly is not modelled (none of ours has one).
- KMS keys: "Unless the key policy explicitly allows it, you cannot use IAM policies to allow access to a KMS
  key" (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#key-policy-default-
  allow-root-enable-iam). A key policy passed with `delegates_to_iam_required=True` must hold an Allow for the
  account (`arn:<partition>:iam::<account>:root` or the bare account id) for IAM grants to count.
- Action matching is case-insensitive, with `*` and `?` wildcards
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html); NotAction
  matches every action not listed.
- Resource matching is case-sensitive; `*` and `?` match within one colon-separated ARN segment, and a `*`
  that ends a segment may match beyond the colons (https://docs.aws.amazon.com/IAM/latest/UserGuide/
  reference_policies_elements_resource.html); NotResource matches every resource not listed.
- Conditions (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_
  operators.html and reference_policies_condition-logic-multiple-context-keys-or-values.html): every operator
  and every key in a Condition must be true (AND); the values listed for one key are alternatives (OR), and a
  negated operator (StringNotEquals, StringNotLike, ArnNotEquals, ArnNotLike) is true when the request's value
  matches none of them. A key missing from the request makes a condition false, except: a negated operator is
  then true, an `...IfExists` operator is true, `Null: true` is true, and `ForAllValues:` is true. Condition
  key names are case-insensitive, values case-sensitive (except the IgnoreCase operators).
- A multivalued context key (aws:TagKeys) needs a set operator (ForAnyValue:/ForAllValues:); using a plain
  operator on one raises `UnsupportedPolicyError` here.
- Policy variables (`${aws:username}`) are not implemented: a condition using one raises
  `UnsupportedPolicyError`.
- Principal tags of a role session are the role's tags (GitHub's OIDC tokens carry no session tags), as
  `aws:PrincipalTag/<key>` (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-
  keys.html#condition-keys-principaltag).

Requests that touch several resources (EC2's CreateSubnet authorizes the new subnet and the VPC it goes in)
are several `Request`s, each with the condition keys AWS gives that resource type (the Service Authorization
Reference lists them per resource type); `decide_all` allows only if every one is allowed.
"""

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

ContextValue = str | Sequence[str]
Policy = Mapping[str, Any]


class UnsupportedPolicyError(Exception):
    """The policy uses something this evaluator does not implement; the test must not rely on a guess."""


class Decision(StrEnum):
    ALLOW = "Allow"
    EXPLICIT_DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"


@dataclass(frozen=True)
class Request:
    """One action on one resource, with the condition keys the request context carries for it."""

    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)


@dataclass(frozen=True)
class Principal:
    """A role session: its identity-based policies, its permissions boundary (if any) and its role's tags."""

    policies: Sequence[Policy]
    boundary: Policy | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ResourcePolicy:
    """A resource-based policy (bucket policy, key policy). For a key policy, `delegates_to_iam_required`:
    IAM grants count only if the policy allows the account (see the module docstring)."""

    document: Policy
    account_id: str = ""
    delegates_to_iam_required: bool = False


def policy(value: str | Policy) -> Policy:
    """A policy document from its JSON text (as the program sends it) or a dict."""
    return json.loads(value) if isinstance(value, str) else value


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _statements(document: Policy) -> list[Mapping[str, Any]]:
    return [dict(s) for s in _as_list(document["Statement"])]


def _glob(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    """IAM's two wildcards only (`*`, `?`); every other character, `[` included, stands for itself."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = re.DOTALL | (0 if case_sensitive else re.IGNORECASE)
    return re.fullmatch(regex, value, flags) is not None


def action_matches(pattern: str, action: str) -> bool:
    return pattern == "*" or _glob(pattern, action, case_sensitive=False)


def _arn_regex(pattern: str) -> re.Pattern[str]:
    """`*`/`?` stay inside a colon-separated segment, except a `*` that ends a segment (or the ARN)."""
    parts = []
    for index, char in enumerate(pattern):
        if char == "*":
            ends_segment = index + 1 == len(pattern) or pattern[index + 1] == ":"
            parts.append(".*" if ends_segment else "[^:]*")
        elif char == "?":
            parts.append("[^:]")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def resource_matches(pattern: str, resource: str) -> bool:
    if "${" in pattern:
        raise UnsupportedPolicyError(f"policy variable in resource {pattern!r}")
    return pattern == "*" or _arn_regex(pattern).fullmatch(resource) is not None


def _context_value(context: Mapping[str, ContextValue], key: str) -> ContextValue | None:
    lowered = key.lower()
    for name, value in context.items():
        if name.lower() == lowered:
            return value
    return None


_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike"}


def _matches(operator: str, expected: str, actual: str) -> bool:
    """The positive form of `operator` for one policy value against one request value."""
    base = operator.replace("Not", "", 1) if operator in _NEGATED else operator
    if "${" in expected:
        raise UnsupportedPolicyError(f"policy variable in condition value {expected!r}")
    if base == "StringEquals":
        return expected == actual
    if base == "StringEqualsIgnoreCase":
        return expected.lower() == actual.lower()
    if base == "StringLike":
        return _glob(expected, actual, case_sensitive=True)
    if base == "ArnEquals":
        return expected == actual
    if base == "ArnLike":
        return resource_matches(expected, actual)
    if base == "Bool":
        return expected.lower() == actual.lower()
    raise UnsupportedPolicyError(f"condition operator {operator}")


def _condition_true(operator: str, key: str, expected: Any, context: Mapping[str, ContextValue]) -> bool:
    """One operator on one key, with AWS's rules for missing keys, IfExists, Null and set operators."""
    qualifier, _, operator = operator.rpartition(":")
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    wanted = [str(v).lower() if isinstance(v, bool) else str(v) for v in _as_list(expected)]
    actual = _context_value(context, key)
    if operator == "Null":
        if qualifier or if_exists:
            raise UnsupportedPolicyError("a qualified Null condition")
        return (actual is None) == (wanted == ["true"])
    negated = operator in _NEGATED
    if qualifier:
        if negated or qualifier not in ("ForAnyValue", "ForAllValues"):
            raise UnsupportedPolicyError(f"set operator {qualifier}:{operator}")
        if actual is None:
            return qualifier == "ForAllValues"
        values = _as_list(actual)
        hits = [any(_matches(operator, w, v) for w in wanted) for v in values]
        return any(hits) if qualifier == "ForAnyValue" else all(hits)
    if actual is None:
        return if_exists or negated
    if not isinstance(actual, str):
        raise UnsupportedPolicyError(f"multivalued key {key} with the single-valued operator {operator}")
    matched = any(_matches(operator, w, actual) for w in wanted)
    return not matched if negated else matched


def conditions_hold(condition: Mapping[str, Mapping[str, Any]] | None, context: Mapping[str, Any]) -> bool:
    if not condition:
        return True
    return all(
        _condition_true(operator, key, expected, context)
        for operator, keys in condition.items()
        for key, expected in keys.items()
    )


def statement_applies(statement: Mapping[str, Any], request: Request, context: Mapping[str, Any]) -> bool:
    if "Action" in statement:
        if not any(action_matches(p, request.action) for p in _as_list(statement["Action"])):
            return False
    elif any(action_matches(p, request.action) for p in _as_list(statement["NotAction"])):
        return False
    if "Resource" in statement:
        if not any(resource_matches(p, request.resource) for p in _as_list(statement["Resource"])):
            return False
    elif "NotResource" in statement and any(
        resource_matches(p, request.resource) for p in _as_list(statement["NotResource"])
    ):
        return False
    return conditions_hold(statement.get("Condition"), context)


def _effects(documents: Iterable[Policy], request: Request, context: Mapping[str, Any]) -> set[str]:
    return {
        statement["Effect"]
        for document in documents
        for statement in _statements(document)
        if statement_applies(statement, request, context)
    }


def _resource_denies(resource_policy: ResourcePolicy) -> Policy:
    """The Deny statements of a resource policy, all for everyone (`*`): a Deny naming particular principals
    is not modelled, so it raises rather than being skipped."""
    denies = [s for s in _statements(resource_policy.document) if s["Effect"] == "Deny"]
    for statement in denies:
        if statement.get("Principal") not in ("*", {"AWS": "*"}):
            raise UnsupportedPolicyError(f"a resource-policy Deny for {statement.get('Principal')!r}")
    return {"Statement": denies}


def _delegates_to_iam(key_policy: ResourcePolicy, request: Request) -> bool:
    """Whether the key policy allows the account itself (`arn:<partition>:iam::<account>:root` or the id)."""
    account = key_policy.account_id
    for statement in _statements(key_policy.document):
        principals = _as_list((statement.get("Principal") or {}).get("AWS", []))
        root = re.compile(rf"arn:[^:]+:iam::{account}:root")
        names_account = any(p == account or root.fullmatch(p) for p in principals)
        if statement["Effect"] == "Allow" and names_account and statement_applies(statement, request, {}):
            return True
    return False


def decide(
    principal: Principal, request: Request, resource_policies: Sequence[ResourcePolicy] = ()
) -> Decision:
    context = dict(request.context)
    for tag, value in principal.tags.items():
        context.setdefault(f"aws:PrincipalTag/{tag}", value)
    resource_denies = [_resource_denies(p) for p in resource_policies]
    every = [*principal.policies, *([principal.boundary] if principal.boundary else []), *resource_denies]
    if "Deny" in _effects(every, request, context):
        return Decision.EXPLICIT_DENY
    if principal.boundary is not None and "Allow" not in _effects([principal.boundary], request, context):
        return Decision.IMPLICIT_DENY
    if "Allow" not in _effects(principal.policies, request, context):
        return Decision.IMPLICIT_DENY
    for key_policy in resource_policies:
        if key_policy.delegates_to_iam_required and not _delegates_to_iam(key_policy, request):
            return Decision.IMPLICIT_DENY
    return Decision.ALLOW


def decide_all(
    principal: Principal, requests: Sequence[Request], resource_policies: Sequence[ResourcePolicy] = ()
) -> Decision:
    """A request that AWS authorizes against several resources: allowed only if every part is."""
    decisions = [decide(principal, request, resource_policies) for request in requests]
    for outcome in (Decision.EXPLICIT_DENY, Decision.IMPLICIT_DENY):
        if outcome in decisions:
            return outcome
    return Decision.ALLOW
