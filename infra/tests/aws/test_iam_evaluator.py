"""The policy evaluator the AWS identity tests use (testing/iam_policy.py), held to AWS's documented rules.

Each case restates one documented rule, with its page, so that a wrong evaluator fails here before it can
make a policy test pass for the wrong reason.
"""

from typing import Any

import pytest

from testing.iam_policy import (
    Decision,
    Principal,
    Request,
    ResourcePolicy,
    UnsupportedPolicyError,
    decide,
    decide_all,
    resource_matches,
)

ACCOUNT = "123456789012"
BUCKET = "arn:aws:s3:::acme-state-prod"


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def test_nothing_is_allowed_by_default_and_an_explicit_deny_beats_any_allow() -> None:
    # reference_policies_evaluation-logic.html: implicit deny by default; an explicit deny overrides allows.
    assert decide(Principal([]), Request("s3:GetObject", f"{BUCKET}/a")) is Decision.IMPLICIT_DENY
    both = Principal([doc(allow("s3:*")), doc(deny("s3:GetObject", f"{BUCKET}/*"))])
    assert decide(both, Request("s3:GetObject", f"{BUCKET}/a")) is Decision.EXPLICIT_DENY
    assert decide(both, Request("s3:PutObject", f"{BUCKET}/a")) is Decision.ALLOW


def test_a_permissions_boundary_caps_the_identity_policies_without_granting_anything() -> None:
    # access_policies_boundaries.html: effective permissions are the intersection of both.
    bounded = Principal([doc(allow("s3:*"))], boundary=doc(allow(["s3:GetObject", "iam:CreateRole"])))
    assert decide(bounded, Request("s3:GetObject", f"{BUCKET}/a")) is Decision.ALLOW
    assert decide(bounded, Request("s3:PutObject", f"{BUCKET}/a")) is Decision.IMPLICIT_DENY
    assert decide(bounded, Request("iam:CreateRole", "arn:aws:iam::1:role/x")) is Decision.IMPLICIT_DENY


def test_actions_match_case_insensitively_with_wildcards_and_not_action_matches_the_rest() -> None:
    # reference_policies_elements_action.html / _notaction.html
    principal = Principal(
        [doc(allow("S3:get*")), doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})]
    )
    assert decide(principal, Request("s3:GetObject", "*")) is Decision.ALLOW
    assert decide(principal, Request("ec2:CreateVpc", "*")) is Decision.ALLOW
    assert decide(principal, Request("iam:CreateRole", "*")) is Decision.IMPLICIT_DENY


@pytest.mark.parametrize(
    ("pattern", "resource", "matches"),
    [
        (f"{BUCKET}/*", f"{BUCKET}/.pulumi/stacks/mlops-stack/aws-prod.json", True),
        (f"{BUCKET}/*", BUCKET, False),
        (
            "arn:aws:iam::*:role/mlops-stack/aws-sandbox-*",
            "arn:aws:iam::1:role/mlops-stack/aws-sandbox-a/w/r",
            True,
        ),
        ("arn:aws:iam::1:role/mlops-stack/aws-dev/*", "arn:aws:iam::1:role/mlops-stack/aws-devx/r", False),
        # A `*` inside a segment stops at a colon; a `*` ending a segment may run past colons.
        (
            "arn:aws:ecs:eu-west-1:1:task-definition/app-*:3",
            "arn:aws:ecs:eu-west-1:1:task-definition/app-x:3",
            True,
        ),
        (
            "arn:aws:ecs:eu-west-1:1:task-definition/app-*:3",
            "arn:aws:ecs:eu-west-1:1:task-definition/app:x:3",
            False,
        ),
        (
            "arn:aws:logs:eu-west-1:1:log-group:/a*",
            "arn:aws:logs:eu-west-1:1:log-group:/a/b:log-stream:s",
            True,
        ),
        # Case-sensitive, and `?` is one character.
        ("arn:aws:s3:::Bucket", "arn:aws:s3:::bucket", False),
        ("arn:aws:s3:::b?t", "arn:aws:s3:::bat", True),
    ],
)
def test_resource_arns_match_segment_by_segment(pattern: str, resource: str, matches: bool) -> None:
    # reference_policies_elements_resource.html: wildcards within segments; a trailing * spans colons.
    assert resource_matches(pattern, resource) is matches


def test_not_resource_applies_to_everything_but_the_listed_resources() -> None:
    principal = Principal(
        [
            doc(allow("s3:GetObject")),
            doc({"Effect": "Deny", "Action": "s3:GetObject", "NotResource": f"{BUCKET}/*"}),
        ]
    )
    assert decide(principal, Request("s3:GetObject", f"{BUCKET}/state.json")) is Decision.ALLOW
    assert decide(principal, Request("s3:GetObject", "arn:aws:s3:::other/x")) is Decision.EXPLICIT_DENY


def test_a_missing_key_fails_a_positive_operator_and_passes_a_negated_one() -> None:
    # reference_policies_elements_condition_operators.html: "If the key that you specify in a policy
    # condition is not present in the request context, the values do not match and the condition is false. If
    # the policy condition requires that the key is not matched, such as StringNotLike or ArnNotLike, and the
    # right key is not present, the condition is true."
    positive = Principal(
        [doc(allow("ec2:CreateVpc", Condition={"StringEquals": {"aws:RequestTag/environment": "sandbox"}}))]
    )
    assert decide(positive, Request("ec2:CreateVpc", "*")) is Decision.IMPLICIT_DENY
    negated = Principal(
        [
            doc(allow("*")),
            doc(deny("*", Condition={"StringNotEquals": {"aws:ResourceTag/environment": "dev"}})),
        ]
    )
    assert decide(negated, Request("ec2:DeleteVpc", "*")) is Decision.EXPLICIT_DENY


def test_null_false_with_a_negated_operator_denies_only_resources_tagged_otherwise() -> None:
    # The pattern our cross-environment deny uses: both operators must hold (AND); Null "false" = key present.
    fence = doc(
        deny(
            "*",
            Condition={
                "Null": {"aws:ResourceTag/environment": "false"},
                "StringNotEquals": {"aws:ResourceTag/environment": ["dev", "sandbox"]},
            },
        )
    )
    principal = Principal([doc(allow("*")), fence])
    tagged = {
        env: Request("rds:DeleteDBCluster", "*", {"aws:ResourceTag/environment": env})
        for env in ("dev", "sandbox", "prod")
    }
    assert decide(principal, tagged["dev"]) is Decision.ALLOW
    assert decide(principal, tagged["sandbox"]) is Decision.ALLOW  # values of one key: OR, negated: none
    assert decide(principal, tagged["prod"]) is Decision.EXPLICIT_DENY
    assert decide(principal, Request("rds:DeleteDBCluster", "*")) is Decision.ALLOW  # untagged: not covered


def test_if_exists_is_true_for_a_missing_key() -> None:
    principal = Principal(
        [doc(allow("s3:ListBucket", BUCKET, Condition={"StringLikeIfExists": {"s3:prefix": ["state/*"]}}))]
    )
    assert decide(principal, Request("s3:ListBucket", BUCKET)) is Decision.ALLOW
    assert decide(principal, Request("s3:ListBucket", BUCKET, {"s3:prefix": "state/x"})) is Decision.ALLOW
    assert (
        decide(principal, Request("s3:ListBucket", BUCKET, {"s3:prefix": "other"})) is Decision.IMPLICIT_DENY
    )


def test_set_operators_on_multivalued_keys_and_their_missing_key_rules() -> None:
    # reference_policies_condition-single-vs-multi-valued-context-keys.html: ForAllValues is true when the key
    # is missing; ForAnyValue is false.
    all_values = Principal(
        [
            doc(
                allow(
                    "iam:TagRole", Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["app", "stack"]}}
                )
            )
        ]
    )
    assert decide(all_values, Request("iam:TagRole", "*")) is Decision.ALLOW
    assert decide(all_values, Request("iam:TagRole", "*", {"aws:TagKeys": ["app"]})) is Decision.ALLOW
    assert (
        decide(all_values, Request("iam:TagRole", "*", {"aws:TagKeys": ["app", "x"]}))
        is Decision.IMPLICIT_DENY
    )
    any_value = Principal(
        [doc(allow("iam:TagRole", Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": ["app"]}}))]
    )
    assert decide(any_value, Request("iam:TagRole", "*")) is Decision.IMPLICIT_DENY
    with pytest.raises(UnsupportedPolicyError):
        decide(
            Principal([doc(allow("iam:TagRole", Condition={"StringEquals": {"aws:TagKeys": "app"}}))]),
            Request("iam:TagRole", "*", {"aws:TagKeys": ["app"]}),
        )


def test_condition_key_names_are_case_insensitive_and_values_case_sensitive() -> None:
    principal = Principal(
        [
            doc(
                allow(
                    "iam:CreateRole",
                    Condition={"StringEquals": {"IAM:PermissionsBoundary": "arn:aws:iam::1:policy/B"}},
                )
            )
        ]
    )
    assert (
        decide(
            principal, Request("iam:CreateRole", "*", {"iam:PermissionsBoundary": "arn:aws:iam::1:policy/B"})
        )
        is Decision.ALLOW
    )
    assert (
        decide(
            principal, Request("iam:CreateRole", "*", {"iam:PermissionsBoundary": "arn:aws:iam::1:policy/b"})
        )
        is Decision.IMPLICIT_DENY
    )


def test_principal_tags_come_from_the_role_and_resource_policy_denies_apply_to_it() -> None:
    bucket_policy = ResourcePolicy(
        doc(
            deny(
                "s3:*",
                [BUCKET, f"{BUCKET}/*"],
                Principal="*",
                Condition={
                    "Null": {"aws:PrincipalTag/environment": "false"},
                    "StringNotEquals": {"aws:PrincipalTag/environment": "prod"},
                },
            )
        )
    )
    power = [doc(allow("s3:*"))]
    read = Request("s3:GetObject", f"{BUCKET}/x")
    assert (
        decide(Principal(power, tags={"environment": "dev"}), read, [bucket_policy]) is Decision.EXPLICIT_DENY
    )
    assert decide(Principal(power, tags={"environment": "prod"}), read, [bucket_policy]) is Decision.ALLOW
    assert decide(Principal(power), read, [bucket_policy]) is Decision.ALLOW


def test_iam_grants_on_a_kms_key_count_only_if_the_key_policy_delegates_to_the_account() -> None:
    key = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    principal = Principal([doc(allow("kms:Decrypt", key))])
    # The default key policy's first statement (key-policy-default.html), as moto and AWS return it.
    default = {
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    other = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/admin"},
        "Action": "kms:*",
        "Resource": "*",
    }
    request = Request("kms:Decrypt", key)
    delegating = ResourcePolicy(doc(default), ACCOUNT, delegates_to_iam_required=True)
    assert decide(principal, request, [delegating]) is Decision.ALLOW
    closed = ResourcePolicy(doc(other), ACCOUNT, delegates_to_iam_required=True)
    assert decide(principal, request, [closed]) is Decision.IMPLICIT_DENY


def test_a_request_on_several_resources_needs_every_one() -> None:
    # e.g. ec2:CreateSubnet authorizes the new subnet (aws:RequestTag) and its VPC (aws:ResourceTag).
    principal = Principal(
        [
            doc(
                allow(
                    "ec2:CreateSubnet",
                    "arn:aws:ec2:*:*:subnet/*",
                    Condition={"StringEquals": {"aws:RequestTag/environment": "sandbox"}},
                ),
                allow(
                    "ec2:CreateSubnet",
                    "arn:aws:ec2:*:*:vpc/*",
                    Condition={"StringEquals": {"aws:ResourceTag/environment": "sandbox"}},
                ),
            )
        ]
    )
    subnet = Request(
        "ec2:CreateSubnet", "arn:aws:ec2:eu-west-1:1:subnet/*", {"aws:RequestTag/environment": "sandbox"}
    )
    own_vpc = Request(
        "ec2:CreateSubnet", "arn:aws:ec2:eu-west-1:1:vpc/vpc-1", {"aws:ResourceTag/environment": "sandbox"}
    )
    dev_vpc = Request(
        "ec2:CreateSubnet", "arn:aws:ec2:eu-west-1:1:vpc/vpc-2", {"aws:ResourceTag/environment": "dev"}
    )
    assert decide_all(principal, [subnet, own_vpc]) is Decision.ALLOW
    assert decide_all(principal, [subnet, dev_vpc]) is Decision.IMPLICIT_DENY


def test_what_is_not_implemented_is_refused_rather_than_guessed() -> None:
    variable = Principal([doc(allow("s3:GetObject", "arn:aws:s3:::b/${aws:username}/*"))])
    with pytest.raises(UnsupportedPolicyError):
        decide(variable, Request("s3:GetObject", "arn:aws:s3:::b/alice/x"))
    numeric = Principal([doc(allow("s3:ListBucket", Condition={"NumericLessThan": {"s3:max-keys": "10"}}))])
    with pytest.raises(UnsupportedPolicyError):
        decide(numeric, Request("s3:ListBucket", BUCKET, {"s3:max-keys": "5"}))
    named_deny = ResourcePolicy(doc(deny("s3:*", BUCKET, Principal={"AWS": "arn:aws:iam::1:role/x"})))
    with pytest.raises(UnsupportedPolicyError):
        decide(Principal([doc(allow("s3:*"))]), Request("s3:GetObject", BUCKET), [named_deny])
