"""The artifact bucket: private, versioned, encrypted with a key of its own, TLS only.

Encryption: SSE-KMS with a customer-managed key the stack creates (rotation on, S3 Bucket Keys on). Reading
an artifact then needs both S3 and KMS permissions, so an over-broad S3 grant elsewhere in the account does
not expose artifacts, and every use of the key is in CloudTrail. It costs 1 USD a month per stack; Bucket
Keys keep the KMS request charges negligible. The task roles get exactly this key.
"""

from dataclasses import dataclass

import pulumi
from pulumi_aws import kms, s3

from infra.aws import iam
from infra.aws.fence import other_environments_principals
from infra.config import StackSettings
from infra.naming import short_name
from infra.workloads import ARTIFACT_PREFIX


@dataclass(frozen=True, kw_only=True)
class ArtifactStoreArgs:
    settings: StackSettings


class ArtifactStore(pulumi.ComponentResource):
    """Bucket, its key, and the sub-resources that make it private, durable and TLS-only."""

    bucket_arn: pulumi.Output[str]
    key_arn: pulumi.Output[str]
    artifact_root: pulumi.Output[str]
    artifact_objects_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: ArtifactStoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops-stack:aws:ArtifactStore", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)
        # Data resources: `protect` in prod, and never force-destroyed outside sandboxes.
        data = pulumi.ResourceOptions(parent=self, protect=settings.protect)

        key = kms.Key(
            f"{name}-key",
            description=f"Artifacts of {settings.stack}",
            enable_key_rotation=True,
            deletion_window_in_days=7 if settings.is_sandbox else 30,
            opts=data,
        )
        bucket = s3.Bucket(
            f"{name}-bucket",
            # A prefix (S3 appends 26 characters; at most 37 of our own): Pulumi's auto-name would add 8 to
            # the logical name and exceed S3's 63 for a sandbox with a long id.
            bucket_prefix=short_name(settings.stack, "artifacts", max_length=36) + "-",
            force_destroy=settings.is_sandbox,
            opts=data,
        )
        access_block = s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule=s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        versioning = s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration=s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child,
        )
        s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=(
                        s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                            sse_algorithm="aws:kms", kms_master_key_id=key.arn
                        )
                    ),
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[
                s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-old-versions",
                    status="Enabled",
                    filter=s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    # Overwritten or deleted artifacts stay recoverable as long as database backups are kept,
                    # so restoring the tracking database to any backup still finds that point's artifacts.
                    noncurrent_version_expiration=(
                        s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                            noncurrent_days=settings.backup_retention_days
                        )
                    ),
                    abort_incomplete_multipart_upload=(
                        s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                            days_after_initiation=7
                        )
                    ),
                )
            ],
            # S3 rejects a lifecycle configuration for versions before versioning is on.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        objects_arn = pulumi.Output.concat(bucket.arn, "/*")
        s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket.id,
            policy=iam.document(
                iam.deny(
                    "DenyInsecureTransport",
                    ["s3:*"],
                    [bucket.arn, objects_arn],
                    condition={"Bool": {"aws:SecureTransport": "false"}},
                    principal="*",
                ),
                # No other environment's role may touch it, even one with PowerUserAccess in a shared account.
                other_environments_principals(
                    "DenyOtherEnvironments", ["s3:*"], [bucket.arn, objects_arn], settings.environment
                ),
            ),
            # With the access block in place first, S3 can check that this policy is not public.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[access_block]),
        )

        self.bucket_arn = bucket.arn
        self.key_arn = key.arn
        self.artifact_root = pulumi.Output.concat("s3://", bucket.bucket, f"/{ARTIFACT_PREFIX}")
        self.artifact_objects_arn = pulumi.Output.concat(bucket.arn, f"/{ARTIFACT_PREFIX}/*")
        self.register_outputs({"bucket": bucket.bucket, "artifactRoot": self.artifact_root})

    def access_statements(self, *, write: bool) -> list[iam.Statement]:
        """S3 and KMS permissions on the artifact prefix of this bucket: read, or read and write."""
        object_actions = ["s3:GetObject", "s3:GetObjectVersion"]
        key_actions = ["kms:Decrypt"]
        if write:
            # AbortMultipartUpload: the server starts multipart uploads for large artifacts and aborts the
            # ones a client gives up on (MLflow's S3 artifact repository, abort_multipart_upload); PutObject
            # covers CreateMultipartUpload, UploadPart and CompleteMultipartUpload
            # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html#mpuAndPermissions).
            object_actions += ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
            key_actions += ["kms:GenerateDataKey"]
        return [
            iam.allow(
                "ListArtifacts",
                ["s3:ListBucket"],
                [self.bucket_arn],
                condition={"StringLike": {"s3:prefix": [ARTIFACT_PREFIX, f"{ARTIFACT_PREFIX}/*"]}},
            ),
            iam.allow("Artifacts", object_actions, [self.artifact_objects_arn]),
            iam.allow("ArtifactKey", key_actions, [self.key_arn]),
        ]
