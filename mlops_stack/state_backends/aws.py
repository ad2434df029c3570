"""AWS: an S3 bucket for Pulumi state (SSE-KMS, versioned, private, TLS only) and a KMS key for secrets, one
pair per environment (the isolation model: dev, staging, prod and sandbox each get their own).

With `environment` given (scripts/bootstrap.py's per-environment loop passes it), the bucket and the key are
tagged `environment=<env>`, the tag the stacks put on everything (infra.naming.labels), and:
- the bucket policy denies every S3 action to any principal tagged with *another* environment
  (`aws:PrincipalTag/environment` present and different). The stacks tag their CI roles and workload roles so,
  so in an account that several environments share, dev's deploy role (PowerUserAccess) can neither read nor
  change prod's state, nor rewrite this policy. Principals without the tag (the admins) are not affected. A
  resource-policy Deny is explicit and wins over any Allow (https://docs.aws.amazon.com/IAM/latest/UserGuide/
  reference_policies_evaluation-logic.html); S3 cannot key on the bucket's own tags in identity policies
  unless ABAC is enabled on the bucket, which is why this lives here;
- the key's tag lets the stacks' environment deny (infra/aws/fence.py) keep other environments' identities
  off it.
A bucket or key already tagged with another environment is refused: one environment's state never shares
another's bucket or key.

The key policy must delegate to IAM (the default key policy's "Enable IAM User Permissions" statement:
Principal the account root, kms:*): the stacks grant their CI roles this key through IAM policies, and "unless
the key policy explicitly allows it, you cannot use IAM policies to allow access to a KMS key"
(https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#key-policy-default-allow-root-
enable-iam). Keys bootstrap creates get the default policy; for an existing key without it, bootstrap stops
and says so rather than rewrite a policy its owner wrote.

Both moto's server and real AWS serve these calls; boto3 honours `AWS_ENDPOINT_URL`.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from mlops_stack.state_backends import MARKER_KEY, MARKER_VALUE, BootstrapError, StateBackend

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client

TLS_ONLY_SID = "DenyInsecureTransport"
OTHER_ENVIRONMENTS_SID = "DenyOtherEnvironments"
# The tag the stacks put on every resource and role (infra.naming.labels; a test holds the two together).
ENVIRONMENT_TAG = "environment"
_ALL_PUBLIC_ACCESS_BLOCKED: Any = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def ensure_kms_key(kms: KMSClient, alias: str, changes: list[str], environment: str | None = None) -> str:
    """The ARN of the symmetric key behind `alias`, created (with yearly rotation) if missing."""
    try:
        metadata = kms.describe_key(KeyId=alias)["KeyMetadata"]
    except ClientError as error:
        if _error_code(error) != "NotFoundException":
            raise
        tags = [{"TagKey": MARKER_KEY, "TagValue": MARKER_VALUE}]
        if environment is not None:
            tags.append({"TagKey": ENVIRONMENT_TAG, "TagValue": environment})
        metadata = kms.create_key(
            Description="Pulumi secrets provider for mlops-stack (made by scripts/bootstrap.py)",
            KeyUsage="ENCRYPT_DECRYPT",
            KeySpec="SYMMETRIC_DEFAULT",
            Tags=tags,  # type: ignore[arg-type]  # the stubs type each tag as a TypedDict
        )["KeyMetadata"]
        kms.create_alias(AliasName=alias, TargetKeyId=metadata["KeyId"])
        changes.append(f"created KMS key {alias}")
    if metadata.get("KeyState") in ("PendingDeletion", "Disabled"):
        raise BootstrapError(
            f"KMS key {alias} is {metadata['KeyState']}: cancel its deletion / enable it "
            "(aws kms cancel-key-deletion / enable-key), or pass another --key-alias"
        )
    if not kms.get_key_rotation_status(KeyId=metadata["KeyId"])["KeyRotationEnabled"]:
        kms.enable_key_rotation(KeyId=metadata["KeyId"])
        changes.append(f"enabled rotation of KMS key {alias}")
    _check_key_policy_delegates_to_iam(kms, metadata, alias)
    if environment is not None:
        _converge_key_environment(kms, metadata["KeyId"], alias, environment, changes)
    return str(metadata["Arn"])


def _check_key_policy_delegates_to_iam(kms: KMSClient, metadata: Any, alias: str) -> None:
    """The stacks' IAM grants on this key work only if its policy allows the account (module docstring)."""
    account = metadata["AWSAccountId"]
    policy = json.loads(kms.get_key_policy(KeyId=metadata["KeyId"], PolicyName="default")["Policy"])
    statements = policy["Statement"] if isinstance(policy["Statement"], list) else [policy["Statement"]]
    for statement in statements:
        principals = (statement.get("Principal") or {}).get("AWS", [])
        principals = principals if isinstance(principals, list) else [principals]
        actions = statement.get("Action", [])
        actions = actions if isinstance(actions, list) else [actions]
        if (
            statement.get("Effect") == "Allow"
            and any(p == account or re.fullmatch(rf"arn:[^:]+:iam::{account}:root", p) for p in principals)
            and "kms:*" in actions
            and statement.get("Resource") in ("*", ["*"])
            and not statement.get("Condition")
        ):
            return
    raise BootstrapError(
        f"the key policy of KMS key {alias} does not let IAM policies grant access to it (no statement "
        f"allowing arn:aws:iam::{account}:root kms:* on *), so the CI roles' grants would have no effect: "
        "add the default key policy's 'Enable IAM User Permissions' statement (https://docs.aws.amazon.com/kms/"
        "latest/developerguide/key-policy-default.html#key-policy-default-allow-root-enable-iam), or pass "
        "another --key-alias"
    )


def _converge_key_environment(
    kms: KMSClient, key_id: str, alias: str, environment: str, changes: list[str]
) -> None:
    tags = {tag["TagKey"]: tag["TagValue"] for tag in kms.list_resource_tags(KeyId=key_id).get("Tags", [])}
    current = tags.get(ENVIRONMENT_TAG)
    if current == environment:
        return
    if current is not None:
        raise BootstrapError(
            f"KMS key {alias} belongs to environment {current!r}, not {environment!r}: each environment has "
            "its own key; pass another --key-alias"
        )
    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": ENVIRONMENT_TAG, "TagValue": environment}])
    changes.append(f"tagged KMS key {alias} {ENVIRONMENT_TAG}={environment}")


def _create_or_claim_bucket(
    s3: S3Client, bucket: str, region: str, changes: list[str], environment: str | None = None
) -> None:
    """Create the bucket, or check that the existing one is ours and was made by this tool."""
    # Ownership comes from our own bucket list, not from create_bucket's answer: us-east-1 answers a
    # repeated create of one's own bucket with success.
    ours = any(entry["Name"] == bucket for entry in s3.list_buckets(Prefix=bucket).get("Buckets", []))
    if ours:
        if not _has_marker(s3, bucket):
            raise BootstrapError(
                f"S3 bucket {bucket!r} already exists in this account but was not made by bootstrap "
                f"(no tag {MARKER_KEY}={MARKER_VALUE}): pass another --bucket, or tag it if it is for state"
            )
        if environment is not None:
            _converge_bucket_environment(s3, bucket, environment, changes)
        return
    location: Any = (
        {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    )
    try:
        s3.create_bucket(Bucket=bucket, **location)
    except ClientError as error:
        if _error_code(error) in ("BucketAlreadyExists", "BucketAlreadyOwnedByYou"):
            raise BootstrapError(
                f"S3 bucket name {bucket!r} is taken by another AWS account (bucket names are global): "
                "pass another --bucket, e.g. with your account id or team in it"
            ) from error
        raise
    tags = [{"Key": MARKER_KEY, "Value": MARKER_VALUE}]
    if environment is not None:
        tags.append({"Key": ENVIRONMENT_TAG, "Value": environment})
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})  # type: ignore[typeddict-item]
    changes.append(f"created S3 bucket {bucket} in {region}")


def _converge_bucket_environment(s3: S3Client, bucket: str, environment: str, changes: list[str]) -> None:
    tags = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    current = next((tag["Value"] for tag in tags if tag["Key"] == ENVIRONMENT_TAG), None)
    if current == environment:
        return
    if current is not None:
        raise BootstrapError(
            f"S3 bucket {bucket!r} holds the state of environment {current!r}, not {environment!r}: each "
            "environment has its own bucket; pass another --bucket"
        )
    # PutBucketTagging replaces the whole set: keep the tags already there.
    s3.put_bucket_tagging(
        Bucket=bucket, Tagging={"TagSet": [*tags, {"Key": ENVIRONMENT_TAG, "Value": environment}]}
    )
    changes.append(f"tagged S3 bucket {bucket} {ENVIRONMENT_TAG}={environment}")


def _has_marker(s3: S3Client, bucket: str) -> bool:
    try:
        tags = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    except ClientError as error:
        if _error_code(error) == "NoSuchTagSet":
            return False
        raise
    return {"Key": MARKER_KEY, "Value": MARKER_VALUE} in tags


def _get_or_none(call: Any, missing_code: str, **kwargs: Any) -> Any:
    try:
        return call(**kwargs)
    except ClientError as error:
        if _error_code(error) == missing_code:
            return None
        raise


def _tls_only_statement(bucket: str) -> dict[str, Any]:
    return {
        "Sid": TLS_ONLY_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def other_environments_statement(bucket: str, environment: str) -> dict[str, Any]:
    """Deny everything to principals tagged with another environment (module docstring). Both conditions must
    hold: `StringNotEquals` alone is true when the tag is missing, which would lock out the admins."""
    key = f"aws:PrincipalTag/{ENVIRONMENT_TAG}"
    return {
        "Sid": OTHER_ENVIRONMENTS_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Null": {key: "false"}, "StringNotEquals": {key: environment}},
    }


def _converge_bucket(
    s3: S3Client, bucket: str, key_arn: str, changes: list[str], environment: str | None = None
) -> None:
    """Bring every security setting to what we want, touching only what differs."""
    ownership = _get_or_none(
        s3.get_bucket_ownership_controls, "OwnershipControlsNotFoundError", Bucket=bucket
    )
    # Typed as Any: the boto3 stubs' TypedDicts add nothing to a literal that moto checks for real.
    rules: Any = [{"ObjectOwnership": "BucketOwnerEnforced"}]
    if ownership is None or ownership["OwnershipControls"]["Rules"] != rules:
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": rules})
        changes.append("disabled object ACLs (BucketOwnerEnforced)")

    block = _get_or_none(s3.get_public_access_block, "NoSuchPublicAccessBlockConfiguration", Bucket=bucket)
    if block is None or block["PublicAccessBlockConfiguration"] != _ALL_PUBLIC_ACCESS_BLOCKED:
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=_ALL_PUBLIC_ACCESS_BLOCKED)
        changes.append("blocked all public access")

    if s3.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        changes.append("enabled versioning")

    wanted_rule: Any = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}
    encryption = _get_or_none(
        s3.get_bucket_encryption, "ServerSideEncryptionConfigurationNotFoundError", Bucket=bucket
    )
    current_rules = [] if encryption is None else encryption["ServerSideEncryptionConfiguration"]["Rules"]
    if not any(rule.get("ApplyServerSideEncryptionByDefault") == wanted_rule for rule in current_rules):
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": wanted_rule, "BucketKeyEnabled": True}]
            },
        )
        changes.append("set default encryption to SSE-KMS with the secrets key")

    _converge_bucket_policy(s3, bucket, environment, changes)


def _converge_bucket_policy(s3: S3Client, bucket: str, environment: str | None, changes: list[str]) -> None:
    """Our statements, by Sid, next to any statements already there (their owner may rely on them)."""
    policy_text = _get_or_none(s3.get_bucket_policy, "NoSuchBucketPolicy", Bucket=bucket)
    policy: dict[str, Any] = {"Version": "2012-10-17", "Statement": []}
    if policy_text is not None:
        policy = json.loads(policy_text["Policy"])
    wanted = [(_tls_only_statement(bucket), "denied requests without TLS (bucket policy)")]
    if environment is not None:
        wanted.append(
            (
                other_environments_statement(bucket, environment),
                f"denied principals tagged with an environment other than {environment} (bucket policy)",
            )
        )
    changed = []
    for statement, change in wanted:
        kept = [s for s in policy["Statement"] if s.get("Sid") != statement["Sid"]]
        if len(kept) == len(policy["Statement"]) or statement not in policy["Statement"]:
            policy["Statement"] = [*kept, statement]
            changed.append(change)
    if changed:
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        changes.extend(changed)


def ensure_aws_backend(
    s3: S3Client, kms: KMSClient, bucket: str, region: str, key_alias: str, *, environment: str | None = None
) -> StateBackend:
    """Make (or check) the state bucket and the secrets key; return the URLs Pulumi needs.

    `environment` (dev, staging, prod, sandbox): the environment whose state this is; see the module
    docstring. Without it the bucket and key get no environment tag and the bucket policy no environment deny.
    """
    if not key_alias.startswith("alias/"):
        raise BootstrapError(
            f"--key-alias {key_alias!r} must start with 'alias/', e.g. alias/mlops-stack-secrets"
        )
    changes: list[str] = []
    key_arn = ensure_kms_key(kms, key_alias, changes, environment)
    _create_or_claim_bucket(s3, bucket, region, changes, environment)
    _converge_bucket(s3, bucket, key_arn, changes, environment)
    return StateBackend(
        login_url=f"s3://{bucket}?region={region}&awssdk=v2",
        secrets_provider=f"awskms://{key_alias}?region={region}",
        changes=changes,
    )
