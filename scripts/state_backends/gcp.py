"""GCP: a GCS bucket for Pulumi state (versioned, uniform access, public access prevented) and a Cloud
KMS key for Pulumi secrets.

GCS data is always encrypted at rest (Google-managed keys); the KMS key encrypts Pulumi's secrets. The
bucket goes through google-cloud-storage (the GCS emulator serves it in tests); Cloud KMS, which no
emulator covers, sits behind `KmsKeys`, whose real implementation needs the `google-cloud-kms` package.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from google.api_core import exceptions as google_errors
from google.cloud import storage

from scripts.state_backends import MARKER_KEY, MARKER_VALUE, BootstrapError, StateBackend

PROJECT_LABEL = "mlops-stack-project"
"""Label naming the project the bucket was made for: a readable bucket of another team is not adopted."""
ROTATION_SECONDS = 90 * 24 * 3600
_KMS_ID = re.compile(r"^[a-zA-Z0-9_-]{1,63}$")


class KmsKeys(Protocol):
    """The Cloud KMS calls bootstrap needs."""

    def ensure_key(self, project: str, location: str, key_ring: str, key: str) -> bool:
        """Make the key ring and the symmetric encryption key if missing. True if anything was created."""
        ...


class CloudKmsKeys:
    """`KmsKeys` over the google-cloud-kms client (Application Default Credentials)."""

    def __init__(self) -> None:
        try:
            # Imported here: only teams on GCP need this package.
            from google.cloud import kms
        except ImportError as error:
            raise BootstrapError(
                "bootstrap --cloud gcp needs the google-cloud-kms package: `uv pip install google-cloud-kms`"
            ) from error
        self._kms: Any = kms
        self._client: Any = kms.KeyManagementServiceClient()

    def ensure_key(self, project: str, location: str, key_ring: str, key: str) -> bool:
        created = False
        parent = f"projects/{project}/locations/{location}"
        ring_name = f"{parent}/keyRings/{key_ring}"
        try:
            self._client.get_key_ring(name=ring_name)
        except google_errors.NotFound:
            self._client.create_key_ring(parent=parent, key_ring_id=key_ring, key_ring={})
            created = True
        try:
            self._client.get_crypto_key(name=f"{ring_name}/cryptoKeys/{key}")
        except google_errors.NotFound:
            purpose = self._kms.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT
            self._client.create_crypto_key(
                parent=ring_name,
                crypto_key_id=key,
                crypto_key={
                    "purpose": purpose,
                    "rotation_period": {"seconds": ROTATION_SECONDS},
                    "labels": {MARKER_KEY: MARKER_VALUE},
                },
            )
            created = True
        return created


def _wanted_labels(project: str) -> dict[str, str]:
    return {MARKER_KEY: MARKER_VALUE, PROJECT_LABEL: project}


def _apply_settings(bucket: storage.Bucket, project: str) -> None:
    bucket.versioning_enabled = True
    bucket.iam_configuration.uniform_bucket_level_access_enabled = True
    bucket.iam_configuration.public_access_prevention = "enforced"
    bucket.labels = {**bucket.labels, **_wanted_labels(project)}


def _drift(bucket: storage.Bucket, project: str) -> list[str]:
    """Settings of `bucket` that differ from what we want, in words."""
    drift = []
    if not bucket.versioning_enabled:
        drift.append("enabled versioning")
    if not bucket.iam_configuration.uniform_bucket_level_access_enabled:
        drift.append("enabled uniform bucket-level access")
    if bucket.iam_configuration.public_access_prevention != "enforced":
        drift.append("enforced public access prevention")
    if any(bucket.labels.get(key) != value for key, value in _wanted_labels(project).items()):
        drift.append("labelled the bucket")
    return drift


def _create_or_claim_bucket(
    client: storage.Client, name: str, project: str, location: str, changes: list[str]
) -> storage.Bucket:
    try:
        bucket = client.lookup_bucket(name)
    except google_errors.Forbidden as error:
        raise BootstrapError(
            f"GCS bucket name {name!r} is taken by a project you cannot access (bucket names are global): "
            "pass another --bucket, e.g. with your project id in it"
        ) from error
    if bucket is None:
        bucket = client.bucket(name)
        _apply_settings(bucket, project)
        try:
            bucket = client.create_bucket(bucket, project=project, location=location)
        except google_errors.Conflict as error:
            raise BootstrapError(
                f"GCS bucket name {name!r} was just taken by someone else: pass another --bucket"
            ) from error
        changes.append(f"created GCS bucket {name} in {location}")
        return bucket
    labels = bucket.labels or {}
    if labels.get(MARKER_KEY) != MARKER_VALUE or labels.get(PROJECT_LABEL) != project:
        raise BootstrapError(
            f"GCS bucket {name!r} exists but was not made by bootstrap for project {project} "
            f"(labels {MARKER_KEY}={MARKER_VALUE}, {PROJECT_LABEL}={project} missing): pass another --bucket"
        )
    return bucket


def ensure_gcp_backend(
    client: storage.Client,
    kms: KmsKeys,
    project: str,
    location: str,
    bucket_name: str,
    key_ring: str,
    key: str,
) -> StateBackend:
    """Make (or check) the state bucket and the secrets key; return the URLs Pulumi needs."""
    for label, value in (("--key-ring", key_ring), ("--key", key)):
        if not _KMS_ID.match(value):
            raise BootstrapError(
                f"{label} {value!r} is not a valid Cloud KMS id: use letters, digits, - or _"
            )
    changes: list[str] = []
    if kms.ensure_key(project, location, key_ring, key):
        changes.append(f"created Cloud KMS key {key_ring}/{key} in {location}")
    bucket = _create_or_claim_bucket(client, bucket_name, project, location, changes)
    drift = _drift(bucket, project)
    if drift:
        _apply_settings(bucket, project)
        bucket.patch()
        changes.extend(drift)
    return StateBackend(
        login_url=f"gs://{bucket_name}",
        secrets_provider=f"gcpkms://projects/{project}/locations/{location}/keyRings/{key_ring}/cryptoKeys/{key}",
        changes=changes,
    )
