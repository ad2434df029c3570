"""What a CI identity may do with its environment's Pulumi state: the S3 objects and the KMS key of one
`StateLocation` (infra.config), as scripts/bootstrap.py made them.

Calls the DIY backend makes through gocloud.dev's s3blob (pulumi/pulumi pkg/backend/diy, state.go, lock.go,
meta.go, stack_tags.go): reads (GetObject; a HEAD needs the same permission), lists (ListBucket), writes
(PutObject; large objects as multipart uploads, which the uploader aborts on failure: AbortMultipartUpload),
deletes (DeleteObject) and copies (CopyObject: GetObject on the source, PutObject on the target). A preview
takes no lock and writes nothing (pkg/backend/diy/backend.go: only Update/Refresh/Destroy/Import lock, and
history and backups are written only `if !opts.DryRun`), so a preview identity gets reads alone. The bucket's
`.pulumi/meta.yaml` is written once, by the first login (bootstrap's `stack init`), not by CI.

KMS: the objects are SSE-KMS with the environment's key (bucket default encryption), so reading one needs
kms:Decrypt and writing one kms:GenerateDataKey on it (https://docs.aws.amazon.com/AmazonS3/latest/userguide/
UsingKMSEncryption.html#aws-managed-customer-managed-keys). Pulumi's awskms secrets provider encrypts a
stack's data key with kms:Encrypt at `stack init` (sandbox stacks are created by CI) and decrypts it with
kms:Decrypt on every run. gocloud.dev's awskms Decrypt sends only the ciphertext, no KeyId (google/go-cloud
secrets/awskms/kms.go, keeper.Decrypt), so a grant conditioned on `kms:RequestAlias` would never match a
Decrypt: the grant names the key's ARN, which the `aws.kms.getAlias` data source resolves from the alias (it
calls kms:DescribeKey: terraform-provider-aws internal/service/kms/alias_data_source.go). These IAM grants
work only because the key policy delegates to IAM (the default key policy's "Enable IAM User Permissions"
statement, which bootstrap checks: mlops_stack/state_backends/aws.py).
"""

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.aws import iam
from infra.aws.account import Account
from infra.config import StateLocation

STATE_READ_ACTIONS = ("s3:GetObject",)
STATE_WRITE_ACTIONS = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")
# What a deploy identity may do to its state bucket and key themselves; everything else on them is denied,
# since PowerUserAccess would otherwise let it rewrite the bucket policy or schedule the key's deletion.
STATE_BUCKET_ACTIONS = ("s3:ListBucket", "s3:GetBucketLocation")
STATE_KEY_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey")


@dataclass(frozen=True)
class StateGrant:
    """The ARNs of one environment's state: its bucket, the objects under its prefix, and its key."""

    bucket_arn: pulumi.Output[str]
    objects_arn: pulumi.Output[str]
    prefix: str
    key_arn: pulumi.Output[str]


def state_grant(location: StateLocation, account: Account, parent: pulumi.Resource) -> StateGrant:
    bucket_arn = pulumi.Output.concat("arn:", account.partition, f":s3:::{location.bucket}")
    objects = f"{location.prefix}/*" if location.prefix else "*"
    return StateGrant(
        bucket_arn=bucket_arn,
        objects_arn=pulumi.Output.concat(bucket_arn, "/", objects),
        prefix=location.prefix,
        key_arn=_key_arn(location, account, parent),
    )


def _key_arn(location: StateLocation, account: Account, parent: pulumi.Resource) -> pulumi.Output[str]:
    """The key's ARN from the secrets provider URL: `awskms://alias/<name>`, `awskms://<key id>` or
    `awskms:///arn:aws:kms:…` (https://www.pulumi.com/docs/iac/concepts/secrets/#aws-key-management-service-kms)."""
    key = location.key.lstrip("/")
    region = location.key_query.get("region", account.region)
    if key.startswith("arn:"):
        return pulumi.Output.from_input(key)
    if key.startswith("alias/"):
        alias = aws.kms.get_alias_output(
            name=key, region=region, opts=pulumi.InvokeOutputOptions(parent=parent)
        )
        return alias.target_key_arn
    return pulumi.Output.concat("arn:", account.partition, f":kms:{region}:", account.id, f":key/{key}")


def state_statements(grant: StateGrant, *, write: bool) -> list[iam.Statement]:
    """Read (and with `write`, write) the state objects; decrypt (and encrypt) with the key."""
    listing = {"StringLike": {"s3:prefix": [grant.prefix, f"{grant.prefix}/*"]}} if grant.prefix else None
    object_actions = [*STATE_READ_ACTIONS, *(STATE_WRITE_ACTIONS if write else ())]
    key_actions = ["kms:Decrypt", *(("kms:Encrypt", "kms:GenerateDataKey") if write else ())]
    return [
        iam.allow("ListState", ["s3:ListBucket"], [grant.bucket_arn], condition=listing),
        iam.allow("WriteState" if write else "ReadState", object_actions, [grant.objects_arn]),
        iam.allow("StateKey", key_actions, [grant.key_arn]),
    ]


def state_guard_statements(grant: StateGrant) -> list[iam.Statement]:
    """For identities with broad rights (PowerUserAccess): the state bucket and key are used, never changed,
    and the state's history (object versions) is never deleted."""
    return [
        iam.deny_except("StateBucketIsUsedOnly", STATE_BUCKET_ACTIONS, [grant.bucket_arn]),
        iam.deny("StateHistoryIsKept", ["s3:DeleteObjectVersion"], [grant.objects_arn]),
        iam.deny_except("StateKeyIsUsedOnly", STATE_KEY_ACTIONS, [grant.key_arn]),
    ]
