"""A CI account's access to one environment's Pulumi state (a GCS bucket) and secrets key (Cloud KMS).

Deploy accounts read and write state objects and encrypt/decrypt with the key; preview accounts only read
(list + get) and decrypt: the DIY backend's preview takes no lock and writes nothing (pulumi/pulumi
pkg/backend/diy/backend.go: `Preview` runs `apply` as a dry run; only update/refresh/destroy/import lock and
save history). Grants sit on the bucket and the key alone, never project-wide, so an account of one
environment cannot read another environment's state. When the backend URL has a path, the object grant is
narrowed to that prefix by an IAM condition on the object name (storage honours resource-name conditions:
https://cloud.google.com/storage/docs/access-control/iam#conditions).
"""

import pulumi
import pulumi_gcp.kms as kms
import pulumi_gcp.storage as storage

from infra.config import StateLocation

STATE_WRITER = "roles/storage.objectUser"  # get, list, create, delete objects; no bucket IAM changes
STATE_READER = "roles/storage.objectViewer"  # get and list objects
KEY_USER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
KEY_DECRYPTER = "roles/cloudkms.cryptoKeyDecrypter"


def grant_state_access(
    name: str, state: StateLocation, member: pulumi.Input[str], *, write: bool, parent: pulumi.Resource
) -> None:
    child = pulumi.ResourceOptions(parent=parent)
    condition = None
    if state.prefix:
        objects = f"projects/_/buckets/{state.bucket}/objects/{state.prefix}/"
        condition = storage.BucketIAMMemberConditionArgs(
            title="this-environments-state-only",
            description="Objects under this environment's state prefix",
            expression=(
                f"resource.name.startsWith('{objects}') || resource.type == 'storage.googleapis.com/Bucket'"
            ),
        )
    storage.BucketIAMMember(
        f"{name}-state",
        bucket=state.bucket,
        role=STATE_WRITER if write else STATE_READER,
        member=member,
        condition=condition,
        opts=child,
    )
    kms.CryptoKeyIAMMember(
        f"{name}-state-key",
        crypto_key_id=state.key,
        role=KEY_USER if write else KEY_DECRYPTER,
        member=member,
        opts=child,
    )
