"""Large artifacts on Cloud Run: the tracking server signs multipart part URLs through IAM signBlob.

Real here: MLflow 3.17's `GCSArtifactRepository.create_multipart_upload` (what the server's
`POST /mlflow-artifacts/mpu/create` calls), google-cloud-storage's V4 signing, google-auth's metadata-server
credentials and our `gcs_signing.install()`. Faked, at the HTTP boundary of `requests` (which all three
libraries use), is Google's side: no emulator covers the metadata server, IAM Credentials or the GCS XML
multipart API (gcp-storage-emulator serves the JSON API only). `FakeGoogle` answers as the documented APIs
do and enforces the one permission that matters: signBlob succeeds only for a caller that holds
`roles/iam.serviceAccountTokenCreator` on the target account in the mocked stack.
"""

import base64
import datetime
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from google.auth import compute_engine
from google.cloud import storage
from google.oauth2 import service_account
from mlflow.environment_variables import (
    MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE,
)
from mlflow.store.artifact.gcs_artifact_repo import GCSArtifactRepository

from infra.gcp.tracking import URL_SIGNER
from infra.mlflow_server import gcs_signing
from infra.tests.gcp.conftest import PROJECT, run_gcp
from testing.pulumi_program import ProgramRun

MIB = 2**20
TOKEN_CREATOR = "roles/iam.serviceAccountTokenCreator"
METADATA = "http://metadata.google.internal/computeMetadata/v1/"
SIGN_BLOB = re.compile(
    r"^https://iamcredentials\.googleapis\.com/v1/projects/-/serviceAccounts/([^/:]+):signBlob"
)
XML_API = "https://storage.googleapis.com/"
FIXED_NOW = datetime.datetime(2026, 11, 25, 9, 30, tzinfo=datetime.UTC)


def _response(
    request: requests.PreparedRequest, status: int, body: bytes, content_type: str
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers["Content-Type"] = content_type
    response.headers["Metadata-Flavor"] = "Google"
    response.url = request.url or ""
    response.request = request
    return response


@dataclass
class FakeGoogle:
    """Google's APIs as the libraries reach them, one account running on Cloud Run.

    - Metadata server (https://cloud.google.com/run/docs/container-contract#metadata-server): answers only
      requests carrying `Metadata-Flavor: Google`; `instance/service-accounts/default/?recursive=true` gives
      the account's email, `.../token` an access token.
    - IAM Credentials `signBlob` (https://cloud.google.com/iam/docs/reference/credentials/rest/v1/
      projects.serviceAccounts/signBlob): `{"payload": base64}` in, `{"keyId", "signedBlob"}` out, an
      RSA-SHA256 signature with one of the account's Google-managed keys; 403 PERMISSION_DENIED unless the
      bearer holds `iam.serviceAccounts.signBlob` on the account.
    - GCS XML API, initiate multipart upload (https://cloud.google.com/storage/docs/xml-api/
      post-object-multipart): `POST /<bucket>/<object>?uploads` with a bearer token returns
      `InitiateMultipartUploadResult` with an `UploadId`.
    """

    email: str
    signers: set[tuple[str, str]]  # (caller email, target email) pairs allowed to signBlob
    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    token: str = "ya29.fake-metadata-token"
    upload_id: str = "ABPnzm7-fake-upload-id"
    signed_payloads: list[bytes] = field(default_factory=list)
    initiated: list[str] = field(default_factory=list)

    def send(self, request: requests.PreparedRequest) -> requests.Response:
        url = request.url or ""
        if url.startswith(METADATA):
            return self._metadata(request, url.removeprefix(METADATA))
        if match := SIGN_BLOB.match(url):
            return self._sign_blob(request, match.group(1))
        if url.startswith(XML_API) and urlsplit(url).query == "uploads" and request.method == "POST":
            return self._initiate(request, url)
        raise AssertionError(f"unexpected request to Google: {request.method} {url}")

    def _metadata(self, request: requests.PreparedRequest, path: str) -> requests.Response:
        if request.headers.get("Metadata-Flavor") != "Google":
            return _response(request, 403, b"Missing Metadata-Flavor:Google header", "text/html")
        account, _, rest = path.removeprefix("instance/service-accounts/").partition("/")
        if path.startswith("instance/service-accounts/") and account in ("default", self.email):
            if rest.startswith("token"):
                token = {"access_token": self.token, "expires_in": 3599, "token_type": "Bearer"}
                return _response(request, 200, json.dumps(token).encode(), "application/json")
            if rest.startswith("?recursive=true") or rest == "":
                scopes = ["https://www.googleapis.com/auth/cloud-platform"]
                info = {"aliases": ["default"], "email": self.email, "scopes": scopes}
                return _response(request, 200, json.dumps(info).encode(), "application/json")
        if path.startswith("universe/universe-domain"):
            return _response(request, 200, b"googleapis.com", "application/text")
        return _response(request, 404, b"Not Found", "text/html")

    def _sign_blob(self, request: requests.PreparedRequest, target: str) -> requests.Response:
        caller = self.email if request.headers.get("Authorization") == f"Bearer {self.token}" else None
        if caller is None or (caller, target) not in self.signers:
            denied = {
                "error": {
                    "code": 403,
                    "status": "PERMISSION_DENIED",
                    "message": (
                        "Permission 'iam.serviceAccounts.signBlob' denied on resource (or it may not exist)."
                    ),
                }
            }
            return _response(request, 403, json.dumps(denied).encode(), "application/json")
        body = request.body if isinstance(request.body, bytes) else str(request.body).encode()
        payload = base64.b64decode(json.loads(body)["payload"])
        self.signed_payloads.append(payload)
        signature = self.key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
        answer = {"keyId": "fake-key-1", "signedBlob": base64.b64encode(signature).decode()}
        return _response(request, 200, json.dumps(answer).encode(), "application/json")

    def _initiate(self, request: requests.PreparedRequest, url: str) -> requests.Response:
        assert request.headers.get("Authorization") == f"Bearer {self.token}", (
            "initiate without the account's token"
        )
        bucket, _, key = urlsplit(url).path.lstrip("/").partition("/")
        self.initiated.append(f"{bucket}/{key}")
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Bucket>{bucket}</Bucket><Key>{key}</Key><UploadId>{self.upload_id}</UploadId>"
            "</InitiateMultipartUploadResult>"
        )
        return _response(request, 200, xml.encode(), "application/xml")

    def key_file_credentials(self) -> service_account.Credentials:
        """What a key file of the same account would be: the reference a key-signed URL is made with."""
        pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        info = {
            "type": "service_account",
            "client_email": self.email,
            "private_key": pem,
            "private_key_id": "fake-key-1",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
        return service_account.Credentials.from_service_account_info(info)


@dataclass(frozen=True)
class TrackingIdentity:
    email: str
    signers: set[tuple[str, str]]


def tracking_identity(run: ProgramRun) -> TrackingIdentity:
    """The tracking service's account and every signBlob grant the mocked stack makes."""
    service = run.one("gcp:cloudrunv2/service:Service", "-tracking-service")
    email = service.inputs["template"]["serviceAccount"]
    signers = set()
    for grant in run.of_type("gcp:serviceaccount/iAMMember:IAMMember"):
        if grant.inputs["role"] == TOKEN_CREATOR:
            target = grant.inputs["serviceAccountId"].rpartition("/")[2]
            signers.add((grant.inputs["member"].removeprefix("serviceAccount:"), target))
    return TrackingIdentity(email, signers)


@pytest.fixture(scope="module")
def identity() -> TrackingIdentity:
    return tracking_identity(run_gcp("dev"))


@pytest.fixture
def unpatched_blob() -> Iterator[None]:
    """Each test decides whether the hook is installed; the original method is restored after."""
    original = storage.Blob.generate_signed_url
    yield
    storage.Blob.generate_signed_url = original


def create_upload(google: FakeGoogle, model: Path) -> Any:
    """What the server does for `POST /mlflow-artifacts/mpu/create` of `model`, with Cloud Run's identity."""
    parts = math.ceil(model.stat().st_size / MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE.get())
    with (
        mock.patch.object(
            requests.adapters.HTTPAdapter, "send", lambda _, request, **__: google.send(request)
        ),
        mock.patch("google.cloud.storage._signing._NOW", return_value=FIXED_NOW),
    ):
        client = storage.Client(project=PROJECT, credentials=compute_engine.Credentials())
        repo = GCSArtifactRepository("gs://acme-ml-gcp-dev-mlflow/mlflow/1/abc/artifacts", client=client)
        return repo.create_multipart_upload(str(model), num_parts=parts, artifact_path="model")


@pytest.fixture
def model_600_mib(tmp_path: Path) -> Path:
    """A 600 MiB model file, sparse: its size is real, writing it costs nothing."""
    path = tmp_path / "model.safetensors"
    with path.open("wb") as handle:
        handle.truncate(600 * MIB)
    return path


def test_without_the_hook_metadata_credentials_cannot_sign_part_urls(
    identity: TrackingIdentity, model_600_mib: Path, unpatched_blob: None
) -> None:
    """The 500 a 600 MiB upload got on Cloud Run: MLflow signs locally, and there is no key."""
    google = FakeGoogle(identity.email, identity.signers)
    with pytest.raises(AttributeError, match="private key to sign"):
        create_upload(google, model_600_mib)


def test_part_urls_are_signed_through_iam_as_the_tracking_account(
    identity: TrackingIdentity, model_600_mib: Path, unpatched_blob: None
) -> None:
    google = FakeGoogle(identity.email, identity.signers)
    gcs_signing.install()
    gcs_signing.install()  # idempotent: one wrapper, not two
    created = create_upload(google, model_600_mib)

    assert created.upload_id == google.upload_id
    assert google.initiated == ["acme-ml-gcp-dev-mlflow/mlflow/1/abc/artifacts/model/model.safetensors"]
    assert len(created.credentials) == 60 == len(google.signed_payloads)
    reference = storage.Client(project=PROJECT, credentials=google.key_file_credentials())
    blob = reference.bucket("acme-ml-gcp-dev-mlflow").blob("mlflow/1/abc/artifacts/model/model.safetensors")
    for part in created.credentials:
        query = parse_qs(urlsplit(part.url).query)
        assert query["partNumber"] == [str(part.part_number)]
        assert query["uploadId"] == [google.upload_id]
        assert query["X-Goog-Credential"][0].startswith(f"{identity.email}/20261125/")
        # Byte for byte the URL a key file of the same account signs: GCS cannot tell them apart.
        with mock.patch("google.cloud.storage._signing._NOW", return_value=FIXED_NOW):
            expected = blob.generate_signed_url(
                method="PUT",
                version="v4",
                expiration=datetime.timedelta(minutes=60),
                query_parameters={"partNumber": part.part_number, "uploadId": google.upload_id},
            )
        assert part.url == expected


def test_signing_needs_the_token_creator_grant_the_stack_makes(
    identity: TrackingIdentity, model_600_mib: Path, unpatched_blob: None
) -> None:
    assert (identity.email, identity.email) in identity.signers, "the tracking account cannot sign as itself"
    assert URL_SIGNER == TOKEN_CREATOR
    gcs_signing.install()
    google = FakeGoogle(identity.email, signers=set())
    with pytest.raises(Exception, match="signBlob"):
        create_upload(google, model_600_mib)


def test_only_the_tracking_account_may_sign_as_itself(identity: TrackingIdentity) -> None:
    """Least privilege: the one token-creator grant is the account on itself."""
    assert identity.signers == {(identity.email, identity.email)}
