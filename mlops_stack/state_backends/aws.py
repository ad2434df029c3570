"""AWS: an S3 bucket for Pulumi state (SSE-KMS, versioned, private, TLS only) and a KMS key for secrets.

Both moto's server and real AWS serve these calls; boto3 honours `AWS_ENDPOINT_URL`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from mlops_stack.state_backends import MARKER_KEY, MARKER_VALUE, BootstrapError, StateBackend

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client

TLS_ONLY_SID = "DenyInsecureTransport"
_ALL_PUBLIC_ACCESS_BLOCKED: Any = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def ensure_kms_key(kms: KMSClient, alias: str, changes: list[str]) -> str:
    """The ARN of the symmetric key behind `alias`, created (with yearly rotation) if missing."""
    try:
        metadata = kms.describe_key(KeyId=alias)["KeyMetadata"]
    except ClientError as error:
        if _error_code(error) != "NotFoundException":
            raise
        metadata = kms.create_key(
            Description="Pulumi secrets provider for mlops-stack (made by scripts/bootstrap.py)",
            KeyUsage="ENCRYPT_DECRYPT",
            KeySpec="SYMMETRIC_DEFAULT",
            Tags=[{"TagKey": MARKER_KEY, "TagValue": MARKER_VALUE}],
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
    return str(metadata["Arn"])


def _create_or_claim_bucket(s3: S3Client, bucket: str, region: str, changes: list[str]) -> None:
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
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": MARKER_KEY, "Value": MARKER_VALUE}]})
    changes.append(f"created S3 bucket {bucket} in {region}")


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


def _converge_bucket(s3: S3Client, bucket: str, key_arn: str, changes: list[str]) -> None:
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

    policy_text = _get_or_none(s3.get_bucket_policy, "NoSuchBucketPolicy", Bucket=bucket)
    policy: dict[str, Any] = {"Version": "2012-10-17", "Statement": []}
    if policy_text is not None:
        policy = json.loads(policy_text["Policy"])
    if not any(statement.get("Sid") == TLS_ONLY_SID for statement in policy["Statement"]):
        # Added next to any statements already there: their owner may rely on them.
        policy["Statement"].append(_tls_only_statement(bucket))
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        changes.append("denied requests without TLS (bucket policy)")


def ensure_aws_backend(
    s3: S3Client, kms: KMSClient, bucket: str, region: str, key_alias: str
) -> StateBackend:
    """Make (or check) the state bucket and the secrets key; return the URLs Pulumi needs."""
    if not key_alias.startswith("alias/"):
        raise BootstrapError(
            f"--key-alias {key_alias!r} must start with 'alias/', e.g. alias/mlops-stack-secrets"
        )
    changes: list[str] = []
    key_arn = ensure_kms_key(kms, key_alias, changes)
    _create_or_claim_bucket(s3, bucket, region, changes)
    _converge_bucket(s3, bucket, key_arn, changes)
    return StateBackend(
        login_url=f"s3://{bucket}?region={region}&awssdk=v2",
        secrets_provider=f"awskms://{key_alias}?region={region}",
        changes=changes,
    )
