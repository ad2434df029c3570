"""Local stand-ins for the three clouds' object storage, as real servers on free 127.0.0.1 ports.

- `s3_emulator`: moto's server (in a thread of the test process) speaking the S3 API.
- `gcs_emulator`: `gcp-storage-emulator` (in a thread) speaking the GCS JSON API.
- `azurite_blob`: Azurite's blob service (a Node.js process), with an account and key generated per
  session; skipped, with the reason, only when Node.js is absent.

Each is session-scoped and gives what a client needs: `create_bucket(name)` (a bucket or container of
exactly the name infra chose, so the environment of a mocked deployment can be used unchanged),
`server_env()` (the variables a tracking server needs to reach the emulator instead of the cloud) and
`read_artifact(destination, key)` (to check what the server really stored).
"""

import base64
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import boto3
import pytest
from azure.storage.blob import BlobServiceClient
from gcp_storage_emulator.server import create_server
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from moto.server import ThreadedMotoServer

from mlops_stack.ports import free_port, wait_for_port

REPO_ROOT = Path(__file__).resolve().parents[1]
AZURITE_BLOB = REPO_ROOT / "node_modules" / ".bin" / "azurite-blob"
AZURITE_ACCOUNT = "mlopstest"
S3_REGION = "us-east-1"


class StorageEmulator(Protocol):
    """What the tracking contract needs from a storage stand-in."""

    def create_bucket(self, name: str) -> None:
        """Create the bucket (or blob container) `name`; creating an existing one is fine."""

    def server_env(self) -> dict[str, str]:
        """Environment overrides that point a tracking server's storage client at the emulator."""

    def read_artifact(self, destination: str, key: str) -> bytes:
        """The bytes stored at `key` under the artifacts destination URI `destination`."""


def _bucket_and_prefix(destination: str) -> tuple[str, str]:
    """`gs://b/p`, `s3://b/p` -> (`b`, `p/`); `wasbs://c@acct.blob.core.windows.net/p` -> (`c`, `p/`)."""
    parsed = urlparse(destination)
    bucket = parsed.netloc.split("@", 1)[0]
    path = parsed.path.strip("/")
    return bucket, f"{path}/" if path else ""


@dataclass
class S3Emulator:
    """moto's server as S3, with generated (meaningless to moto, but never hard-coded) keys."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str

    def _client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=S3_REGION,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )

    def create_bucket(self, name: str) -> None:
        self._client().create_bucket(Bucket=name)

    def server_env(self) -> dict[str, str]:
        return {
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": S3_REGION,
        }

    def read_artifact(self, destination: str, key: str) -> bytes:
        bucket, prefix = _bucket_and_prefix(destination)
        return bytes(self._client().get_object(Bucket=bucket, Key=prefix + key)["Body"].read())


@dataclass
class GcsEmulator:
    """gcp-storage-emulator as GCS; clients find it through `STORAGE_EMULATOR_HOST`, anonymously."""

    endpoint_url: str

    def _client(self) -> storage.Client:
        return storage.Client(
            project="mlops-test",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.endpoint_url},
        )

    def create_bucket(self, name: str) -> None:
        client = self._client()
        if client.lookup_bucket(name) is None:
            client.create_bucket(name)

    def server_env(self) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.endpoint_url, "GOOGLE_CLOUD_PROJECT": "mlops-test"}

    def read_artifact(self, destination: str, key: str) -> bytes:
        bucket, prefix = _bucket_and_prefix(destination)
        return bytes(self._client().bucket(bucket).blob(prefix + key).download_as_bytes())


@dataclass
class AzuriteBlob:
    """Azurite's blob service. MLflow's `wasbs://` repository uses the connection string's account and
    endpoint when `AZURE_STORAGE_CONNECTION_STRING` is set, so infra's real account name may stay in
    the destination URI."""

    connection_string: str

    def _client(self) -> BlobServiceClient:
        return BlobServiceClient.from_connection_string(self.connection_string)

    def create_bucket(self, name: str) -> None:
        container = self._client().get_container_client(name)
        if not container.exists():
            container.create_container()

    def server_env(self) -> dict[str, str]:
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string}

    def read_artifact(self, destination: str, key: str) -> bytes:
        container, prefix = _bucket_and_prefix(destination)
        return self._client().get_blob_client(container, prefix + key).download_blob().readall()


@pytest.fixture(scope="session")
def s3_emulator() -> Iterator[S3Emulator]:
    """moto's S3 on a free loopback port for the session."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Emulator(
            endpoint_url=f"http://127.0.0.1:{port}",
            access_key_id=f"AKIA{secrets.token_hex(8).upper()}",
            secret_access_key=secrets.token_urlsafe(30),
        )
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[GcsEmulator]:
    """gcp-storage-emulator (in memory) on a free loopback port for the session."""
    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    try:
        yield GcsEmulator(endpoint_url=f"http://127.0.0.1:{port}")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def azurite_blob() -> Iterator[AzuriteBlob]:
    """Azurite's blob service (in memory) on a free loopback port, with a generated account key."""
    if shutil.which("node") is None:
        pytest.skip("Azurite needs Node.js, which is not installed: run .ci/install_test_deps.sh")
    if not AZURITE_BLOB.exists():
        pytest.fail(f"{AZURITE_BLOB} is missing: run .ci/install_test_deps.sh (npm ci)")
    port = free_port()
    key = base64.b64encode(secrets.token_bytes(64)).decode()
    workspace = Path(tempfile.mkdtemp(prefix="mlops-azurite-"))
    log = (workspace / "azurite.log").open("wb")
    command = [str(AZURITE_BLOB), "--blobHost", "127.0.0.1", "--blobPort", str(port)]
    command += ["--inMemoryPersistence", "--silent"]
    command += ["--loose", "--skipApiVersionCheck", "--disableTelemetry"]
    node_dir = str(Path(shutil.which("node") or "node").parent)
    process = subprocess.Popen(
        command,
        env={"PATH": node_dir, "AZURITE_ACCOUNTS": f"{AZURITE_ACCOUNT}:{key}"},
        cwd=workspace,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        try:
            wait_for_port(port, timeout=30)
        except TimeoutError as error:
            log.flush()
            output = (workspace / "azurite.log").read_text(errors="replace")
            pytest.fail(f"Azurite did not start ({error}):\n{output}")
        yield AzuriteBlob(
            connection_string=(
                f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={key};"
                f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
            )
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(workspace, ignore_errors=True)
