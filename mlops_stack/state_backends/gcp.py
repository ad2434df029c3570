"""GCP: a GCS bucket for Pulumi state (versioned, uniform access, public access prevented) and a Cloud
KMS key for Pulumi secrets, after enabling the APIs both need.

GCS data is always encrypted at rest (Google-managed keys); the KMS key encrypts Pulumi's secrets. The
bucket goes through google-cloud-storage (the GCS emulator serves it in tests); Cloud KMS and Service Usage,
which no emulator covers, sit behind `KmsKeys` and `ServiceUsage`, whose real implementations call Google.

What a fresh project needs first, and why (each checked against Google's reference):
- cloudkms.googleapis.com: bootstrap creates the key; a disabled API answers PERMISSION_DENIED
  ("... API has not been used in project ... or it is disabled").
- cloudresourcemanager.googleapis.com: the Pulumi GCP provider reads the project through it before anything
  else (the stack's `organizations.get_project`; `google_project_service` reads "Verify project for services
  still exists" with Projects.Get, hashicorp/terraform-provider-google resource_google_project_service.go).
- storage.googleapis.com: the state bucket (on by default in new projects; enabled here to be sure).
Service Usage (serviceusage.googleapis.com) enables them and is on in every new project; enabling an enabled
API changes nothing, so re-runs are idempotent (https://cloud.google.com/service-usage/docs/enable-disable).

A denied call ends in a `BootstrapError` naming what was denied and the role that grants it, never a
traceback.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from google.api_core import exceptions as google_errors
from google.cloud import storage

from mlops_stack.state_backends import MARKER_KEY, MARKER_VALUE, BootstrapError, StateBackend

PROJECT_LABEL = "mlops-stack-project"
"""Label naming the project the bucket was made for: a readable bucket of another team is not adopted."""
ROTATION = timedelta(days=90)
_KMS_ID = re.compile(r"^[a-zA-Z0-9_-]{1,63}$")
REQUIRED_APIS: tuple[str, ...] = (
    "cloudresourcemanager.googleapis.com",
    "cloudkms.googleapis.com",
    "storage.googleapis.com",
)
SERVICE_USAGE_URL = "https://serviceusage.googleapis.com"
ENABLE_TIMEOUT_SECONDS = 300.0

# The predefined role that carries each permission bootstrap uses, for the error message of a denied call.
ROLE_ENABLE_APIS = "roles/serviceusage.serviceUsageAdmin"
ROLE_KMS = "roles/cloudkms.admin"
ROLE_STORAGE = "roles/storage.admin"


@contextmanager
def explain_denial(action: str, resource: str, role: str, project: str) -> Iterator[None]:
    """Turn Google's 403 into a `BootstrapError` that says what was denied and which role grants it."""
    try:
        yield
    except (google_errors.PermissionDenied, google_errors.Forbidden) as error:
        message = str(getattr(error, "message", "") or error)
        if "has not been used" in message or "SERVICE_DISABLED" in message:
            raise BootstrapError(
                f"{action} on {resource} was refused because the API is not enabled yet in project {project} "
                "(an API enabled moments ago can take a few minutes to reach every server): run bootstrap "
                f"again in a minute. Google said: {message}"
            ) from error
        raise BootstrapError(
            f"permission denied: {action} on {resource}. The account running bootstrap needs {role} on "
            f"project {project}: gcloud projects add-iam-policy-binding {project} "
            f"--member=user:<you@example.com> --role={role} (a service account: --member=serviceAccount:…). "
            f"Google said: {message}"
        ) from error


class ServiceUsage(Protocol):
    """The Service Usage calls bootstrap needs."""

    def ensure_enabled(self, project: str, services: Sequence[str]) -> list[str]:
        """Enable those of `services` that are off; return the ones this call enabled."""
        ...


class CloudServiceUsage:
    """`ServiceUsage` over the Service Usage REST API (Application Default Credentials).

    https://cloud.google.com/service-usage/docs/reference/rest/v1/services: `services.get` gives a service's
    `state` (ENABLED/DISABLED); `services.batchEnable` (at most 20 ids) returns a long-running operation that
    `operations.get` polls until `done`, with `error` set if it failed.
    """

    def __init__(
        self,
        session: Any | None = None,
        endpoint: str = SERVICE_USAGE_URL,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if session is None:
            import google.auth
            from google.auth.transport.requests import AuthorizedSession

            credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
            session = AuthorizedSession(credentials)
        self._session, self._endpoint, self._sleep = session, endpoint.rstrip("/"), sleep

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self._session.request(method, f"{self._endpoint}/v1/{path}", json=body)
        if response.status_code >= 400:
            raise google_errors.from_http_response(response)
        result: dict[str, Any] = response.json()
        return result

    def ensure_enabled(self, project: str, services: Sequence[str]) -> list[str]:
        where = f"project {project}"
        with explain_denial("reading which APIs are enabled", where, ROLE_ENABLE_APIS, project):
            missing = [
                service
                for service in services
                if self._call("GET", f"projects/{project}/services/{service}").get("state") != "ENABLED"
            ]
        if not missing:
            return []
        with explain_denial(f"enabling {', '.join(missing)}", where, ROLE_ENABLE_APIS, project):
            operation = self._call(
                "POST", f"projects/{project}/services:batchEnable", {"serviceIds": missing}
            )
            deadline = time.monotonic() + ENABLE_TIMEOUT_SECONDS
            delay = 1.0
            while not operation.get("done"):
                if time.monotonic() > deadline:
                    raise BootstrapError(
                        f"enabling {', '.join(missing)} in {where} did not finish in "
                        f"{ENABLE_TIMEOUT_SECONDS:.0f} s (operation {operation.get('name')}): "
                        "run bootstrap again"
                    )
                self._sleep(delay)
                delay = min(delay * 2, 10.0)
                operation = self._call("GET", str(operation["name"]))
        if "error" in operation:
            raise BootstrapError(
                f"enabling {', '.join(missing)} in {where} failed: {operation['error'].get('message')} "
                f"(or run: gcloud services enable {' '.join(missing)} --project {project})"
            )
        return missing


class KmsKeys(Protocol):
    """The Cloud KMS calls bootstrap needs."""

    def ensure_key(self, project: str, location: str, key_ring: str, key: str) -> bool:
        """Make the key ring and the symmetric encryption key if missing. True if anything was created."""
        ...


class CloudKmsKeys:
    """`KmsKeys` over the google-cloud-kms client (Application Default Credentials unless given a client)."""

    def __init__(self, client: Any | None = None, now: Callable[[], datetime] | None = None) -> None:
        try:
            # Imported here: only teams on GCP need this package.
            from google.cloud import kms
        except ImportError as error:
            raise BootstrapError(
                "bootstrap --cloud gcp needs the google-cloud-kms package: `uv pip install google-cloud-kms`"
            ) from error
        self._kms: Any = kms
        self._client: Any = client if client is not None else kms.KeyManagementServiceClient()
        self._now = now or (lambda: datetime.now(UTC))

    def ensure_key(self, project: str, location: str, key_ring: str, key: str) -> bool:
        created = False
        parent = f"projects/{project}/locations/{location}"
        ring_name = f"{parent}/keyRings/{key_ring}"
        with explain_denial("creating the Cloud KMS key ring", ring_name, ROLE_KMS, project):
            try:
                self._client.get_key_ring(name=ring_name)
            except google_errors.NotFound:
                self._client.create_key_ring(parent=parent, key_ring_id=key_ring, key_ring={})
                created = True
        key_name = f"{ring_name}/cryptoKeys/{key}"
        with explain_denial("creating the Cloud KMS key", key_name, ROLE_KMS, project):
            try:
                self._client.get_crypto_key(name=key_name)
            except google_errors.NotFound:
                purpose = self._kms.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT
                self._client.create_crypto_key(
                    parent=ring_name,
                    crypto_key_id=key,
                    crypto_key={
                        "purpose": purpose,
                        # "If rotation_period is set, next_rotation_time must also be set" (CryptoKey,
                        # google/cloud/kms_v1/types/resources.py; https://cloud.google.com/kms/docs/reference/
                        # rest/v1/projects.locations.keyRings.cryptoKeys): first rotation one period from now.
                        "rotation_period": {"seconds": int(ROTATION.total_seconds())},
                        "next_rotation_time": self._now() + ROTATION,
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
            f"GCS bucket {name!r} cannot be read: either the name is taken by a project you cannot access "
            "(bucket names are global: pass another --bucket, e.g. with your project id in it), or it is "
            f"yours and your account lacks storage.buckets.get ({ROLE_STORAGE} on project {project})"
        ) from error
    if bucket is None:
        bucket = client.bucket(name)
        _apply_settings(bucket, project)
        try:
            with explain_denial("creating the GCS bucket", name, ROLE_STORAGE, project):
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
    *,
    services: ServiceUsage | None = None,
) -> StateBackend:
    """Enable the APIs, make (or check) the state bucket and the secrets key; return the URLs Pulumi needs.

    `services` defaults to the real Service Usage API with Application Default Credentials.
    """
    for label, value in (("--key-ring", key_ring), ("--key", key)):
        if not _KMS_ID.match(value):
            raise BootstrapError(
                f"{label} {value!r} is not a valid Cloud KMS id: use letters, digits, - or _"
            )
    changes: list[str] = []
    enabled = (services or CloudServiceUsage()).ensure_enabled(project, REQUIRED_APIS)
    if enabled:
        changes.append(f"enabled {', '.join(enabled)} in project {project}")
    if kms.ensure_key(project, location, key_ring, key):
        changes.append(f"created Cloud KMS key {key_ring}/{key} in {location}")
    bucket = _create_or_claim_bucket(client, bucket_name, project, location, changes)
    drift = _drift(bucket, project)
    if drift:
        _apply_settings(bucket, project)
        with explain_denial("updating the GCS bucket's settings", bucket_name, ROLE_STORAGE, project):
            bucket.patch()
        changes.extend(drift)
    return StateBackend(
        login_url=f"gs://{bucket_name}",
        secrets_provider=f"gcpkms://projects/{project}/locations/{location}/keyRings/{key_ring}/cryptoKeys/{key}",
        changes=changes,
    )
