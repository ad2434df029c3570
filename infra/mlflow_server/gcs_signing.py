"""Signed GCS URLs from a keyless identity, so MLflow's multipart uploads work on Cloud Run.

Why this exists (MLflow 3.17.2, the version the image pins):

- A client uploading a file of at least `MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE` (500 MB by default) to a
  proxying server asks `/api/3.0/mlflow/server-info`, and the server advertises multipart uploads whenever
  its artifact repository is a `MultipartUploadMixin`, which `GCSArtifactRepository` is
  (mlflow/server/handlers.py `build_server_info_payload`; mlflow/store/artifact/mlflow_artifacts_repo.py
  `_is_multipart_upload_enabled`: the client's `MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD` only overrides that
  when it is set, so a default client follows the server).
- The server's `POST /mlflow-artifacts/mpu/create` (handlers.py `_create_multipart_upload_artifact`) calls
  `GCSArtifactRepository.create_multipart_upload` (mlflow/store/artifact/gcs_artifact_repo.py), which starts
  an XML multipart upload and then calls `blob.generate_signed_url(method="PUT", version="v4", ...)` once
  per part, with no credentials of its own.
- google-cloud-storage then signs locally with the client's credentials, which must hold a private key
  (`google.auth.credentials.Signing`, google/cloud/storage/_signing.py `ensure_signed_credentials`). On Cloud
  Run the credentials come from the metadata server (`google.auth.compute_engine.Credentials`) and hold
  none: `AttributeError: you need a private key to sign credentials`, and the server answers 500. Reported
  upstream as mlflow/mlflow#21847 (open; the fix proposed in #21978 was not merged).

The fix is google-cloud-storage's own keyless path: given `service_account_email` and `access_token`,
`Blob.generate_signed_url` signs through the IAM Credentials `signBlob` API as that account
(`_signing._sign_message`, added by googleapis/python-storage ad280bf "add support for signing URLs using
token"). The caller needs `iam.serviceAccounts.signBlob` on the account, which
`roles/iam.serviceAccountTokenCreator` carries, and the account itself must be allowed what the URL does
(https://cloud.google.com/storage/docs/authentication/creating-signatures): infra/gcp/tracking.py grants the
tracking account that role on its own account and nothing else, next to objectAdmin on the bucket.

`install()` wraps `Blob.generate_signed_url` so that a call without credentials of its own, on a client whose
credentials cannot sign, is given the account's email and current access token. Calls that bring
credentials, or clients that hold a key, are untouched. The entrypoint loads this in every server process
through `startup/sitecustomize.py` (see `command.build_launch`), only for `gs://` destinations.
"""

import functools
from collections.abc import Callable
from typing import Any

SIGNS_THROUGH_IAM = "_signs_through_iam"  # marks the wrapper, so installing twice wraps once


class KeylessSigningError(RuntimeError):
    """The storage client's credentials neither hold a key nor name a service account to sign as."""


def iam_signing_arguments(credentials: Any) -> dict[str, str]:
    """`service_account_email` and `access_token` for `generate_signed_url`, refreshed if needed.

    Metadata-server credentials learn their account's email on their first refresh (before it they say
    "default"), so a token is fetched first when there is none yet.
    """
    from google.auth.transport.requests import Request

    if not credentials.valid:
        credentials.refresh(Request())
    email = getattr(credentials, "service_account_email", None)
    if not email or email == "default" or not credentials.token:
        raise KeylessSigningError(
            f"cannot sign a URL: the storage client's credentials ({type(credentials).__name__}) hold no "
            "private key and name no service account to sign as through IAM signBlob"
        )
    return {"service_account_email": email, "access_token": credentials.token}


def install() -> None:
    """Make `Blob.generate_signed_url` sign through IAM when the client's credentials cannot sign."""
    from google.auth.credentials import Signing
    from google.cloud.storage import Blob

    original: Callable[..., str] = Blob.generate_signed_url
    if getattr(original, SIGNS_THROUGH_IAM, False):
        return

    @functools.wraps(original)
    def generate_signed_url(self: Blob, *args: Any, **kwargs: Any) -> str:
        brings_its_own = any(
            kwargs.get(key) for key in ("credentials", "service_account_email", "access_token")
        )
        # The client's credentials, as generate_signed_url itself reads them (there is no public accessor).
        credentials = self.client._credentials
        if not brings_its_own and not isinstance(credentials, Signing):
            kwargs.update(iam_signing_arguments(credentials))
        return original(self, *args, **kwargs)

    setattr(generate_signed_url, SIGNS_THROUGH_IAM, True)
    Blob.generate_signed_url = generate_signed_url
