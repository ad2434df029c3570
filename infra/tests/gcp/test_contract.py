"""Contract: the environment the mocked tracking Cloud Run service gets, run through the real entrypoint
against local PostgreSQL (over its unix socket, as Cloud Run's /cloudsql connection is) and the GCS
emulator. Secret Manager references are resolved to freshly generated values; the overrides point the
server at the local database and the emulator (in Cloud Run the GCS client uses the service account).

On top of the shared contract, what Cloud Run's front end does to this service: its port is `h2c`, so Google's
front end terminates TLS and forwards every request as cleartext HTTP/2 with prior knowledge
(https://cloud.google.com/run/docs/configuring/http2), with the service's URL as `:authority`. That is what
these checks send, with a body past the 32 MiB Cloud Run allows over HTTP/1 (https://cloud.google.com/run/quotas),
and with both hosts Cloud Run serves the service at.
"""

import hashlib
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import httpx
import pytest
from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository

from infra.tests.gcp.conftest import PROJECT_NUMBER, REGION, STACKS, run_gcp
from testing.postgres import PostgresDatabase
from testing.pulumi_program import Registered
from testing.storage_emulators import GcsEmulator
from testing.tracking_contract import RunningServer, run_tracking_contract

pytestmark = pytest.mark.slow

MIB = 2**20
OVER_HTTP1_LIMIT = 40 * MIB  # Cloud Run refuses HTTP/1 request bodies over 32 MiB
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
STACK = STACKS["dev"]
DETERMINISTIC_HOST = f"{STACK}-tracking-{PROJECT_NUMBER}.{REGION}.run.app"
# The hash-based URL Cloud Run also serves (10 lowercase alphanumerics, then the region's short code).
LEGACY_HOST = f"{STACK}-tracking-2iazkcj7pq-ew.a.run.app"


def tracking_service(environment: str) -> Registered:
    return run_gcp(environment).one("gcp:cloudrunv2/service:Service", "-tracking-service")


def tracking_service_environment(service: Registered) -> dict[str, str]:
    """Plain values as recorded; each secret reference resolved to one generated value per secret."""
    test_secrets: dict[str, str] = {}
    env: dict[str, str] = {}
    for variable in service.inputs["template"]["containers"][0]["envs"]:
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        else:
            secret = variable["valueSource"]["secretKeyRef"]["secret"]
            env[variable["name"]] = test_secrets.setdefault(secret, secrets.token_urlsafe(24))
    return env


def as_cloud_run_forwards(server: RunningServer, host: str) -> httpx.Client:
    """HTTP/2 only, prior knowledge (no HTTP/1 upgrade), `host` as :authority: what the front end sends."""
    return httpx.Client(
        base_url=server.base_url,
        http1=False,
        http2=True,
        auth=(server.username, server.password),
        headers={"Host": host},
        timeout=120,
    )


def _chunks(data: bytes, size: int = MIB) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def large_artifact_over_http2(server: RunningServer) -> None:
    """A 40 MiB upload and download through the server over h2c, landing in the bucket byte for byte."""
    started = time.monotonic()
    content = secrets.token_bytes(OVER_HTTP1_LIMIT)
    path = f"0/h2c-{secrets.token_hex(4)}/artifacts/model/weights.bin"
    with as_cloud_run_forwards(server, DETERMINISTIC_HOST) as client:
        # Streamed without a length, as a large model file is: no Content-Length for the server to trust.
        upload = client.put(f"{ARTIFACTS}/{path}", content=_chunks(content))
        assert upload.http_version == "HTTP/2", upload.http_version
        assert upload.status_code == 200, f"upload: {upload.status_code} {upload.text[:300]}"
        assert server.storage is not None
        stored = server.storage.read_artifact(server.destination, path)
        assert hashlib.sha256(stored).digest() == hashlib.sha256(content).digest(), (
            "the bucket holds other bytes"
        )
        download = client.get(f"{ARTIFACTS}/{path}")
        assert download.status_code == 200, f"download: {download.status_code}"
        assert download.http_version == "HTTP/2"
        assert download.content == content, "the download differs from the upload"
    print(f"\n40 MiB up and down over h2c: {time.monotonic() - started:.1f}s")


def a_default_client_sends_600_mib_in_parts_and_40_mib_through_the_server(server: RunningServer) -> None:
    """Why both mechanisms: MLflow's own client, with no setting, asks this server's /server-info and uploads
    files from its multipart threshold (500 MB) up in parts to URLs the server signs (test_upload_signing.py),
    smaller ones through the server (the HTTP/2 check above)."""
    credentials = {"MLFLOW_TRACKING_USERNAME": server.username, "MLFLOW_TRACKING_PASSWORD": server.password}
    with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, credentials):
        for mib, in_parts in ((600, True), (40, False)):
            model = Path(tmp, f"model-{mib}.bin")
            with model.open("wb") as handle:
                handle.truncate(mib * MIB)  # sparse: the size is real, writing it costs nothing
            repo = MlflowArtifactsRepository(
                "mlflow-artifacts:/0/run/artifacts", tracking_uri=server.base_url
            )
            assert repo._should_multipart_upload(str(model)) is in_parts, f"{mib} MiB"


def both_cloud_run_hosts_are_accepted(server: RunningServer) -> None:
    """MLflow's host check and CORS take the deterministic and the hash-based URL; other hosts are refused."""
    url = "/api/2.0/mlflow/experiments/search?max_results=1"
    for host in (DETERMINISTIC_HOST, LEGACY_HOST):
        with as_cloud_run_forwards(server, host) as client:
            assert client.get(url).status_code == 200, host
            # The UI's own POSTs carry Origin: the host it was loaded from.
            created = client.post(
                "/api/2.0/mlflow/experiments/create",
                json={"name": f"origin-{secrets.token_hex(4)}"},
                headers={"Origin": f"https://{host}"},
            )
            assert created.status_code == 200, f"{host}: {created.status_code} {created.text[:200]}"
    for foreign in ("attacker.example", "other-service-2iazkcj7pq-ew.a.run.app"):
        with as_cloud_run_forwards(server, foreign) as client:
            assert client.get(url).status_code == 403, foreign
    with as_cloud_run_forwards(server, DETERMINISTIC_HOST) as client:
        cross_site = client.post(
            "/api/2.0/mlflow/experiments/create",
            json={"name": f"cross-{secrets.token_hex(4)}"},
            headers={"Origin": "https://attacker.example"},
        )
        assert cross_site.status_code == 403, cross_site.status_code


def test_tracking_service_environment_runs_the_real_server(
    postgres_database: PostgresDatabase, gcs_emulator: GcsEmulator
) -> None:
    service = tracking_service("dev")
    env = tracking_service_environment(service)
    assert env["MLFLOW_DB_HOST"].startswith("/cloudsql/")
    assert env["MLFLOW_ARTIFACTS_DESTINATION"].startswith("gs://")
    assert set(env) >= {"MLFLOW_DB_PASSWORD", "MLFLOW_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"}
    # The join: the port Cloud Run forwards HTTP/2 to is the port the server listens on, told to speak h2c.
    container = service.inputs["template"]["containers"][0]
    assert container["ports"]["name"] == "h2c"
    assert env["MLFLOW_HTTP2"] == "true"
    overrides = {**postgres_database.server_env(via_socket=True), **gcs_emulator.server_env()}
    outcome = run_tracking_contract(
        env,
        overrides,
        storage=gcs_emulator,
        extra_checks={
            "40 MiB artifact up and down over HTTP/2 (h2c), as Cloud Run sends it": large_artifact_over_http2,
            "MLflow's client: 600 MiB in signed parts, 40 MiB through the server": (
                a_default_client_sends_600_mib_in_parts_and_40_mib_through_the_server
            ),
            "both Cloud Run URLs pass the host check and CORS, no other": both_cloud_run_hosts_are_accepted,
        },
    )
    print(f"\ngcp tracking contract: server healthy after {outcome.startup_seconds:.1f}s")
    assert outcome.artifact_key.endswith("/artifacts/contract/model-card.txt")
