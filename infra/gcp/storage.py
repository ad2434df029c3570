"""The GCS bucket MLflow proxies artifacts to: private, versioned, and destroyable only in sandboxes."""

from dataclasses import dataclass

import pulumi
import pulumi_gcp.storage as storage

from infra.config import StackSettings
from infra.naming import short_name
from infra.workloads import ARTIFACT_PREFIX

BUCKET_NAME_MAX = 63  # without dots (https://cloud.google.com/storage/docs/buckets#naming)
# MLflow's part URLs live an hour; a multipart upload still open a day later was abandoned, and its parts
# are billed until aborted (AbortIncompleteMultipartUpload, https://cloud.google.com/storage/docs/lifecycle).
ABANDONED_UPLOAD_DAYS = 1


def artifact_bucket_name(settings: StackSettings) -> str:
    """Bucket names are global: the project id keeps two projects' `gcp-dev` stacks apart."""
    return short_name(settings.gcp_project or "", settings.stack, "mlflow", max_length=BUCKET_NAME_MAX)


@dataclass(frozen=True, kw_only=True)
class ArtifactStoreArgs:
    settings: StackSettings
    depends_on: list[pulumi.Resource]  # the Storage API


class ArtifactStore(pulumi.ComponentResource):
    """Uniform bucket-level access and enforced public access prevention, so no object ACL or `allUsers`
    grant can ever make an artifact public; access is granted per service account on this bucket only."""

    bucket: storage.Bucket
    artifact_root: pulumi.Output[str]

    def __init__(
        self, name: str, args: ArtifactStoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops-stack:gcp:ArtifactStore", name, None, opts)
        settings = args.settings
        self.bucket = storage.Bucket(
            f"{name}-bucket",
            name=artifact_bucket_name(settings),
            project=settings.gcp_project,
            location=settings.region,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning=storage.BucketVersioningArgs(enabled=True),
            lifecycle_rules=[
                # Overwritten or deleted artifacts stay recoverable as long as database backups are kept,
                # so restoring the tracking database to any backup still finds that point's artifacts.
                storage.BucketLifecycleRuleArgs(
                    action=storage.BucketLifecycleRuleActionArgs(type="Delete"),
                    condition=storage.BucketLifecycleRuleConditionArgs(
                        days_since_noncurrent_time=settings.backup_retention_days,
                        with_state="ARCHIVED",
                    ),
                ),
                storage.BucketLifecycleRuleArgs(
                    action=storage.BucketLifecycleRuleActionArgs(type="AbortIncompleteMultipartUpload"),
                    condition=storage.BucketLifecycleRuleConditionArgs(age=ABANDONED_UPLOAD_DAYS),
                ),
            ],
            # Sandboxes: `pulumi destroy` empties the bucket, and soft delete would keep (and bill) the
            # objects for a week after. Elsewhere a non-empty bucket refuses to be deleted.
            force_destroy=settings.is_sandbox,
            soft_delete_policy=(
                storage.BucketSoftDeletePolicyArgs(retention_duration_seconds=0)
                if settings.is_sandbox
                else None
            ),
            opts=pulumi.ResourceOptions(parent=self, protect=settings.protect, depends_on=args.depends_on),
        )
        self.artifact_root = pulumi.Output.concat("gs://", self.bucket.name, f"/{ARTIFACT_PREFIX}")
        self.register_outputs({"artifactRoot": self.artifact_root})

    def grant(
        self,
        resource_name: str,
        role: str,
        member: pulumi.Input[str],
        parent: pulumi.Resource,
        *,
        object_prefix: str | None = None,
    ) -> storage.BucketIAMMember:
        """A role on this bucket only (never project-wide storage access), owned by the grantee.

        With `object_prefix`, the role's object permissions hold only for objects under that prefix. IAM
        conditions see an object as `projects/_/buckets/<bucket>/objects/<name>` and the bucket itself as
        `projects/_/buckets/<bucket>` (https://cloud.google.com/storage/docs/access-control/iam#conditions).
        Listing (`storage.objects.list`) is checked on the bucket, so the condition lets the bucket itself
        through as well: the grantee can list object names, and read only the objects under the prefix.
        """
        condition = None
        if object_prefix is not None:
            prefix = object_prefix.strip("/")
            condition = storage.BucketIAMMemberConditionArgs(
                title="objects-under-prefix",
                description=f"Lists the bucket, reads only objects under {prefix}/"[:256],
                expression=self.bucket.name.apply(lambda bucket: object_prefix_condition(bucket, prefix)),
            )
        return storage.BucketIAMMember(
            resource_name,
            bucket=self.bucket.name,
            role=role,
            member=member,
            condition=condition,
            opts=pulumi.ResourceOptions(parent=parent),
        )


def object_prefix_condition(bucket: str, prefix: str) -> str:
    """The CEL condition of `ArtifactStore.grant(object_prefix=...)`."""
    resource = f"projects/_/buckets/{bucket}"
    return f"resource.name == '{resource}' || resource.name.startsWith('{resource}/objects/{prefix}/')"
