"""GCP: a GCS bucket for Pulumi state (versioned, uniform access, public access prevented) and a Cloud
KMS key for Pulumi secrets.

GCS data is always encrypted at rest (Google-managed keys); the KMS key encrypts Pulumi's secrets. The
bucket goes through google-cloud-storage (the GCS emulator serves it in tests); Cloud KMS and Service Usage,
which no emulator covers, sit behind `KmsKeys` and `ProjectApis`, whose real implementations call Google.

A new project has neither the Cloud KMS API nor Cloud Resource Manager on (the Pulumi gcp provider calls the
latter before anything else), so bootstrap enables both first, idempotently (Service Usage `batchEnable`,
https://cloud.google.com/service-usage/docs/reference/rest/v1/services/batchEnable). A refused call ends in
a message that names the role to ask for, not a traceback.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from google.api_core import exceptions as google_errors
from google.cloud import storage

from scripts.state_backends import MARKER_KEY, MARKER_VALUE, BootstrapError, StateBackend

PROJECT_LABEL = "mlops-stack-project"
"""Label naming the project the bucket was made for: a readable bucket of another team is not adopted."""
ROTATION_SECONDS = 90 * 24 * 3600
# The APIs bootstrap itself calls, and the one the Pulumi provider calls before enabling anything.
REQUIRED_APIS = ("cloudkms.googleapis.com", "cloudresourcemanager.googleapis.com", "storage.googleapis.com")
# What to ask for when Google refuses: the predefined roles that hold the permissions bootstrap uses.
ROLES_NEEDED = (
    "roles/serviceusage.serviceUsageAdmin (enable APIs), roles/cloudkms.admin (key ring and key) and "
    "roles/storage.admin (the state bucket) on the project"
)


class ProjectApis(Protocol):
    """Service Usage: turn APIs on for a project."""

    def enable(self, project: str, apis: tuple[str, ...]) -> list[str]:
        """Enable these APIs (a no-op for those already on); return the ones that were off."""
        ...


class ServiceUsageApis:
    """`ProjectApis` over the Service Usage REST API with Application Default Credentials."""

    BASE = "https://serviceusage.googleapis.com/v1"

    def __init__(self) -> None:
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        self._session = AuthorizedSession(credentials)

    def _call(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        response = self._session.request(method, url, timeout=60, **kwargs)
        if response.status_code == 403:
            raise BootstrapError(
                f"Google refused {method} {url}: {response.text.strip()[:300]}; ask for {ROLES_NEEDED}"
            )
        response.raise_for_status()
        return dict(response.json())

    def enable(self, project: str, apis: tuple[str, ...]) -> list[str]:
        names = ",".join(f"projects/{project}/services/{api}" for api in apis)
        states = self._call(
            "GET", f"{self.BASE}/projects/{project}/services:batchGet", params={"names": names}
        )
        off = [s["config"]["name"] for s in states.get("services", []) if s.get("state") != "ENABLED"]
        if not off:
            return []
        operation = self._call(
            "POST", f"{self.BASE}/projects/{project}/services:batchEnable", json={"serviceIds": off}
        )
        deadline = time.monotonic() + 300
        while not operation.get("done") and time.monotonic() < deadline:
            time.sleep(5)
            operation = self._call("GET", f"{self.BASE}/{operation['name']}")
        if not operation.get("done"):
            raise BootstrapError(
                f"enabling {', '.join(off)} did not finish in 5 minutes: run bootstrap again"
            )
        return off


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
            self._client.create_crypto_key(parent=ring_name, crypto_key_id=key, crypto_key=key_settings())
            created = True
        return created


def key_settings(now: datetime | None = None) -> dict[str, Any]:
    """A symmetric encryption key rotated every 90 days. The API refuses `rotation_period` without
    `next_rotation_time` (https://cloud.google.com/kms/docs/reference/rest/v1/projects.locations.keyRings.cryptoKeys
    "nextRotationTime": required with rotationPeriod on ENCRYPT_DECRYPT keys)."""
    first = (now or datetime.now(UTC)) + timedelta(seconds=ROTATION_SECONDS)
    return {
        "purpose": "ENCRYPT_DECRYPT",
        "rotation_period": {"seconds": ROTATION_SECONDS},
        "next_rotation_time": {"seconds": int(first.timestamp())},
        "labels": {MARKER_KEY: MARKER_VALUE},
    }


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
    apis: ProjectApis | None = None,
) -> StateBackend:
    """Make (or check) the state bucket and the secrets key; return the URLs Pulumi needs."""
    for label, value in (("--key-ring", key_ring), ("--key", key)):
        if not _KMS_ID.match(value):
            raise BootstrapError(
                f"{label} {value!r} is not a valid Cloud KMS id: use letters, digits, - or _"
            )
    changes: list[str] = []
    try:
        return _ensure(client, kms, project, location, bucket_name, key_ring, key, apis, changes)
    except (google_errors.PermissionDenied, google_errors.Forbidden) as error:
        raise BootstrapError(
            f"Google refused a call for project {project}: {error.message}; ask for {ROLES_NEEDED}"
        ) from error


def _ensure(
    client: storage.Client,
    kms: KmsKeys,
    project: str,
    location: str,
    bucket_name: str,
    key_ring: str,
    key: str,
    apis: ProjectApis | None,
    changes: list[str],
) -> StateBackend:
    if apis is not None:
        changes.extend(f"enabled {api}" for api in apis.enable(project, REQUIRED_APIS))
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
