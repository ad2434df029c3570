"""Bootstrap against real stand-ins: moto's server (S3 + KMS), the GCS emulator and Azurite.

Cloud KMS and Service Usage have no emulator: the real clients talk REST to scripts/tests/fake_google_apis.py,
which models the documented behaviour. Azure's management plane: a fake of its small interface records calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from azure.storage.blob import BlobServiceClient, PublicAccess
from botocore.exceptions import ClientError
from google.api_core import exceptions as google_errors
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import AuthorizedSession
from google.cloud import storage

from scripts import bootstrap
from scripts.state_backends import BootstrapError, StateBackend
from scripts.state_backends.aws import ensure_aws_backend
from scripts.state_backends.azure import ensure_azure_backend
from scripts.state_backends.gcp import CloudKmsKeys, CloudServiceUsage, ensure_gcp_backend
from scripts.tests.fake_google_apis import FakeGoogleApis
from scripts.tests.fake_pulumi import FakePulumi
from testing.storage_emulators import AzuriteBlob, GcsEmulator, S3Emulator

REGION: Any = "eu-west-1"  # Any: the stubs type regions as literals
_counter = iter(range(1_000_000))


def unique(prefix: str) -> str:
    """A fresh name per test: the emulators live for the whole session."""
    return f"{prefix}{next(_counter)}"


# --- AWS: moto's server -------------------------------------------------------------------------------


@pytest.fixture
def aws_env(s3_emulator: S3Emulator, monkeypatch: pytest.MonkeyPatch) -> S3Emulator:
    """boto3 reads these, so `bootstrap` reaches moto exactly as it would reach AWS."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_emulator.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_emulator.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_emulator.secret_access_key)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return s3_emulator


def aws_clients() -> tuple[Any, Any]:
    return boto3.client("s3", region_name=REGION), boto3.client("kms", region_name=REGION)


def test_aws_bootstrap_makes_a_private_encrypted_state_and_key_per_environment_and_inits_the_stack(
    aws_env: S3Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bucket, pulumi = unique("state-aws-"), FakePulumi(work_dir=tmp_path)
    alias = f"alias/{bucket}"
    argv = [
        "--cloud",
        "aws",
        "--bucket",
        bucket,
        "--region",
        REGION,
        "--key-alias",
        alias,
        "--stack",
        "aws-dev",
    ]
    assert bootstrap.main(argv, pulumi=pulumi) == 0

    out = capsys.readouterr().out
    state = json.loads(out.split("GitHub repository variable PULUMI_STATE:\n", 1)[1].splitlines()[0])
    assert state == {
        env: {
            "backendUrl": f"s3://{bucket}-{env}?region={REGION}&awssdk=v2",
            "secretsProvider": f"awskms://{alias}-{env}?region={REGION}",
        }
        for env in ("dev", "prod", "sandbox")
    }
    assert f"pulumi login 's3://{bucket}-prod?region={REGION}&awssdk=v2'" in out
    # The stack is made on dev's state; its file names dev's key and points the stack at dev's state (and,
    # hosting sandboxes, at theirs), so the stack grants its CI identities exactly those.
    assert pulumi.backend.stacks["aws-dev"].tags["pulumi:project"] == "mlops-stack"
    written = yaml.safe_load(pulumi.stack_file("aws-dev").read_text())
    assert written["secretsprovider"] == f"awskms://{alias}-dev?region={REGION}"
    assert written["config"] == {
        "mlops-stack:stateBackend": state["dev"]["backendUrl"],
        "mlops-stack:stateSecretsProvider": state["dev"]["secretsProvider"],
        "mlops-stack:sandboxes": "true",
        "mlops-stack:sandboxStateBackend": state["sandbox"]["backendUrl"],
        "mlops-stack:sandboxStateSecretsProvider": state["sandbox"]["secretsProvider"],
    }

    s3, kms = aws_clients()
    keys = {env: kms.describe_key(KeyId=f"{alias}-{env}")["KeyMetadata"] for env in state}
    assert len({key["KeyId"] for key in keys.values()}) == 3  # one key per environment
    for env, key in keys.items():
        name = f"{bucket}-{env}"
        assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"]
        assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
        assert all(s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"].values())
        rule = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert rule["ApplyServerSideEncryptionByDefault"] == {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": key["Arn"],
        }
        assert s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"] == [
            {"ObjectOwnership": "BucketOwnerEnforced"}
        ]
        # moto enforces the bucket policy: plain HTTP (which is all moto speaks here) is refused.
        with pytest.raises(ClientError, match="403"):
            s3.put_object(Bucket=name, Key="probe", Body=b"x")


def test_aws_rerun_changes_nothing_and_leaves_an_existing_stack_alone(
    aws_env: S3Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = unique("state-aws-")
    s3, kms = aws_clients()
    first = ensure_aws_backend(s3, kms, f"{bucket}-prod", REGION, f"alias/{bucket}-prod")
    assert len(first.changes) >= 6
    policy_before = s3.get_bucket_policy(Bucket=f"{bucket}-prod")["Policy"]

    pulumi = FakePulumi()
    pulumi.backend.add("aws-prod")
    argv = ["--cloud", "aws", "--bucket", bucket, "--region", REGION, "--key-alias", f"alias/{bucket}"]
    argv += ["--environments", "prod", "--stack", "aws-prod"]
    assert bootstrap.main(argv, pulumi=pulumi) == 0
    out = capsys.readouterr().out
    assert "(no change: already in place)" in out
    assert "already exists on this backend" in out
    assert ("stack init", "aws-prod") not in pulumi.backend.calls
    assert s3.get_bucket_policy(Bucket=f"{bucket}-prod")["Policy"] == policy_before
    assert "mlops-stack:sandboxes" not in pulumi.config("aws-prod")  # only dev hosts sandboxes


def test_a_stack_whose_environment_has_no_state_is_refused(
    aws_env: S3Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    pulumi = FakePulumi()
    argv = ["--cloud", "aws", "--bucket", unique("state-aws-"), "--region", REGION, "--environments", "dev"]
    assert bootstrap.main([*argv, "--stack", "aws-staging"], pulumi=pulumi) == 2
    assert "add staging to --environments" in capsys.readouterr().err
    assert bootstrap.main([*argv, "--stack", "aws-sandbox-pr1"], pulumi=pulumi) == 2
    assert "sandboxes are made by scripts/sandbox.py" in capsys.readouterr().err
    assert pulumi.backend.stacks == {}


def test_aws_bucket_of_another_account_is_a_clear_error(
    aws_env: S3Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = unique("state-aws-") + "-dev"
    sts = boto3.client("sts", region_name=REGION)
    credentials = sts.assume_role(
        RoleArn="arn:aws:iam::111111111111:role/other-team", RoleSessionName="other"
    )["Credentials"]
    other = boto3.client(
        "s3",
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    other.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    pulumi = FakePulumi()
    argv = [
        "--cloud",
        "aws",
        "--bucket",
        bucket.removesuffix("-dev"),
        "--region",
        REGION,
        "--stack",
        "aws-dev",
    ]
    assert bootstrap.main(argv, pulumi=pulumi) == 2
    assert "taken by another AWS account" in capsys.readouterr().err
    assert pulumi.backend.stacks == {}


def test_aws_own_bucket_not_made_by_bootstrap_is_not_adopted(aws_env: S3Emulator) -> None:
    bucket = unique("state-aws-")
    s3, kms = aws_clients()
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    with pytest.raises(BootstrapError, match="was not made by bootstrap"):
        ensure_aws_backend(s3, kms, bucket, REGION, f"alias/{bucket}")
    with pytest.raises(ClientError):
        s3.get_bucket_policy(Bucket=bucket)


def test_aws_keeps_existing_policy_statements(aws_env: S3Emulator) -> None:
    bucket = unique("state-aws-")
    s3, kms = aws_clients()
    ensure_aws_backend(s3, kms, bucket, REGION, f"alias/{bucket}")
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    extra = {"Sid": "Audit", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket",
             "Resource": f"arn:aws:s3:::{bucket}"}  # fmt: skip
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({**policy, "Statement": [extra]}))
    again = ensure_aws_backend(s3, kms, bucket, REGION, f"alias/{bucket}")
    assert again.changes == ["denied requests without TLS (bucket policy)"]
    sids = [
        statement["Sid"]
        for statement in json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    ]
    assert sids == ["Audit", "DenyInsecureTransport"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cloud", "aws", "--bucket", "b"], "needs --region"),
        (["--cloud", "gcp", "--bucket", "b"], "needs --project, --location"),
        (
            ["--cloud", "azure", "--location", "westeurope"],
            "needs --subscription-id, --tenant-id, --storage-account",
        ),
        (
            ["--cloud", "aws", "--bucket", "b", "--region", REGION, "--key-alias", "secrets"],
            "must start with 'alias/'",
        ),
    ],
)
def test_bad_arguments_say_what_is_missing(
    aws_env: S3Emulator, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert bootstrap.main(argv, pulumi=FakePulumi()) == 2
    assert message in capsys.readouterr().err


# --- GCP: the GCS emulator, and Cloud KMS + Service Usage over their REST API (fake_google_apis) -----------

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
KEY = "projects/acme-ml/locations/europe-west1/keyRings/mlops-stack/cryptoKeys/pulumi-secrets"


@pytest.fixture
def google() -> Iterator[FakeGoogleApis]:
    with FakeGoogleApis() as apis:
        yield apis


@dataclass
class GoogleClients:
    """The real clients bootstrap uses, pointed at the local stand-in."""

    kms: CloudKmsKeys
    services: CloudServiceUsage
    raw_kms: Any


@pytest.fixture
def clients(google: FakeGoogleApis) -> GoogleClients:
    from google.cloud import kms

    raw = kms.KeyManagementServiceClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options={"api_endpoint": google.endpoint},
    )
    services = CloudServiceUsage(
        AuthorizedSession(AnonymousCredentials()), google.endpoint, sleep=lambda _: None
    )
    return GoogleClients(CloudKmsKeys(raw, now=lambda: NOW), services, raw)


@pytest.fixture
def gcs(gcs_emulator: GcsEmulator, monkeypatch: pytest.MonkeyPatch) -> storage.Client:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.endpoint_url)
    return storage.Client(project="acme-ml", credentials=AnonymousCredentials())


def backend(
    gcs: storage.Client, clients: GoogleClients, name: str, project: str = "acme-ml", **names: str
) -> StateBackend:
    ring, key = names.get("key_ring", "mlops-stack"), names.get("key", "pulumi-secrets")
    location = names.get("location", "europe-west1")
    return ensure_gcp_backend(gcs, clients.kms, project, location, name, ring, key, services=clients.services)


def test_gcp_bootstrap_enables_the_apis_then_makes_a_rotating_key_and_a_locked_down_bucket(
    gcs: storage.Client, clients: GoogleClients, google: FakeGoogleApis
) -> None:
    name = unique("state-gcp-")
    first = backend(gcs, clients, name)
    assert first.login_url == f"gs://{name}"
    assert first.secrets_provider == f"gcpkms://{KEY}"
    assert first.changes[0] == (
        "enabled cloudresourcemanager.googleapis.com, cloudkms.googleapis.com in project acme-ml"
    )
    assert "created Cloud KMS key mlops-stack/pulumi-secrets in europe-west1" in first.changes
    # the operation was polled to completion before KMS was called (a disabled KMS API refuses every call)
    calls = [path for _, path in google.state.requests]
    assert calls.index("/v1/operations/acf.p2-1") < calls.index(
        "/v1/projects/acme-ml/locations/europe-west1/keyRings/mlops-stack"
    )
    key = google.state.crypto_keys[KEY]
    assert key["rotationPeriod"] == "7776000s"
    assert datetime.fromisoformat(key["nextRotationTime"].replace("Z", "+00:00")) == NOW + timedelta(days=90)
    assert key["labels"] == {"mlops-stack-role": "pulumi-state"}
    bucket = gcs.get_bucket(name)
    assert bucket.versioning_enabled
    assert bucket.iam_configuration.uniform_bucket_level_access_enabled
    assert bucket.iam_configuration.public_access_prevention == "enforced"
    assert bucket.labels == {"mlops-stack-role": "pulumi-state", "mlops-stack-project": "acme-ml"}

    google.state.requests.clear()
    again = backend(gcs, clients, name)
    assert again.changes == []
    assert [method for method, _ in google.state.requests] == ["GET"] * len(google.state.requests)
    assert gcs.get_bucket(name).metageneration == bucket.metageneration


def test_gcp_kms_refuses_a_rotation_period_without_a_next_rotation_time(
    clients: GoogleClients, google: FakeGoogleApis
) -> None:
    """What bootstrap sent before: the documented rule, through the real client."""
    google.state.services("acme-ml").add("cloudkms.googleapis.com")
    ring = "projects/acme-ml/locations/europe-west1/keyRings/mlops-stack"
    clients.raw_kms.create_key_ring(
        parent=ring.rsplit("/keyRings", 1)[0], key_ring_id="mlops-stack", key_ring={}
    )
    crypto_key = {"purpose": 1, "rotation_period": {"seconds": 90 * 24 * 3600}}
    with pytest.raises(google_errors.BadRequest, match="next_rotation_time must be set"):
        clients.raw_kms.create_crypto_key(parent=ring, crypto_key_id="k", crypto_key=crypto_key)


@pytest.mark.parametrize(
    ("denied", "expected"),
    [
        (
            "serviceusage.services.enable",
            "permission denied: enabling cloudresourcemanager.googleapis.com, cloudkms.googleapis.com on "
            "project acme-ml. The account running bootstrap needs roles/serviceusage.serviceUsageAdmin on "
            "project acme-ml: gcloud projects add-iam-policy-binding acme-ml --member=user:<you@example.com> "
            "--role=roles/serviceusage.serviceUsageAdmin",
        ),
        (
            "cloudkms.keyRings.create",
            "permission denied: creating the Cloud KMS key ring on "
            "projects/acme-ml/locations/europe-west1/keyRings/mlops-stack. The account running bootstrap "
            "needs roles/cloudkms.admin on project acme-ml",
        ),
        (
            "cloudkms.cryptoKeys.create",
            f"permission denied: creating the Cloud KMS key on {KEY}. The account running bootstrap needs "
            "roles/cloudkms.admin",
        ),
    ],
)
def test_gcp_permission_denied_says_what_was_denied_and_which_role_grants_it(
    gcs: storage.Client,
    clients: GoogleClients,
    google: FakeGoogleApis,
    denied: str,
    expected: str,
) -> None:
    google.state.denied.add(denied)
    name = unique("state-gcp-")
    with pytest.raises(BootstrapError) as raised:
        backend(gcs, clients, name)
    assert expected in str(raised.value)
    assert f"Permission '{denied}' denied" in str(raised.value)
    assert gcs.lookup_bucket(name) is None  # nothing after the refusal was attempted


def test_gcp_an_api_still_propagating_says_to_retry_not_to_grant_a_role(
    gcs: storage.Client, clients: GoogleClients, google: FakeGoogleApis
) -> None:
    class AlreadyEnabled:
        """Service Usage said enabled, but KMS has not heard yet (propagation takes minutes)."""

        def ensure_enabled(self, project: str, services: Sequence[str]) -> list[str]:
            return []

    with pytest.raises(BootstrapError, match=r"not enabled yet in project acme-ml .* run bootstrap again"):
        ensure_gcp_backend(
            gcs, clients.kms, "acme-ml", "eu", unique("s-"), "r", "k", services=AlreadyEnabled()
        )


def test_gcp_bucket_made_by_someone_else_is_a_clear_error(
    gcs: storage.Client, clients: GoogleClients
) -> None:
    name = unique("state-gcp-")
    gcs.create_bucket(name)
    with pytest.raises(BootstrapError, match="was not made by bootstrap for project acme-ml"):
        backend(gcs, clients, name)
    other_team = unique("state-gcp-")
    backend(gcs, clients, other_team, project="other-team", key="k")
    with pytest.raises(BootstrapError, match="not made by bootstrap for project acme-ml"):
        backend(gcs, clients, other_team, key="k")


def test_gcp_drifted_settings_are_converged(gcs: storage.Client, clients: GoogleClients) -> None:
    name = unique("state-gcp-")
    backend(gcs, clients, name, location="eu", key_ring="ring", key="key")
    bucket = gcs.get_bucket(name)
    bucket.versioning_enabled = False
    bucket.patch()
    assert backend(gcs, clients, name, location="eu", key_ring="ring", key="key").changes == [
        "enabled versioning"
    ]
    assert gcs.get_bucket(name).versioning_enabled


def test_gcp_invalid_kms_name_is_rejected_before_anything_is_made(
    gcs: storage.Client, clients: GoogleClients, google: FakeGoogleApis
) -> None:
    with pytest.raises(BootstrapError, match="--key-ring 'my ring' is not a valid"):
        backend(gcs, clients, unique("state-gcp-"), key_ring="my ring")
    assert google.state.requests == []


# --- Azure: Azurite and a fake management plane --------------------------------------------------------


@dataclass
class FakeArm:
    """Azure Resource Manager as far as bootstrap uses it; names in `taken` belong to someone else."""

    taken: set[str] = field(default_factory=set)
    made: set[str] = field(default_factory=set)

    def _ensure(self, kind: str, name: str) -> list[str]:
        if name in self.taken:
            raise BootstrapError(f"{kind} name {name!r} is taken")
        if (kind, name) in {tuple(entry.split(":", 1)) for entry in self.made}:
            return []
        self.made.add(f"{kind}:{name}")
        return [f"created {kind} {name}"]

    def ensure_resource_group(self, name: str, location: str) -> list[str]:
        return self._ensure("resource group", name)

    def ensure_storage_account(self, resource_group: str, name: str, location: str) -> list[str]:
        return self._ensure("storage account", name)

    def ensure_key(self, resource_group: str, vault: str, key: str, location: str) -> list[str]:
        return self._ensure("Key Vault", vault) + self._ensure("key", f"{vault}/{key}")


@pytest.fixture
def blobs(azurite_blob: AzuriteBlob) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(azurite_blob.connection_string)


def test_azure_bootstrap_makes_a_private_container_and_rerun_changes_nothing(
    blobs: BlobServiceClient,
) -> None:
    arm, container = FakeArm(), unique("state-azure-")
    args = ("rg", "westeurope", "acmestate", container, "acme-kv", "pulumi-secrets")
    backend = ensure_azure_backend(arm, blobs, *args)
    assert backend.login_url == f"azblob://{container}?storage_account=acmestate"
    assert backend.secrets_provider == "azurekeyvault://acme-kv.vault.azure.net/keys/pulumi-secrets"
    assert f"created private blob container {container}" in backend.changes
    properties = blobs.get_container_client(container).get_container_properties()
    assert properties.public_access is None
    assert ensure_azure_backend(arm, blobs, *args).changes == []


def test_azure_public_container_of_ours_is_made_private(blobs: BlobServiceClient) -> None:
    container = unique("state-azure-")
    blobs.create_container(
        container, metadata={"mlops_stack_role": "pulumi_state"}, public_access=PublicAccess.BLOB
    )
    changes = ensure_azure_backend(FakeArm(), blobs, "rg", "westeurope", "acct", container, "kv", "k").changes
    assert f"made blob container {container} private" in changes
    assert blobs.get_container_client(container).get_container_properties().public_access is None


def test_azure_foreign_container_or_taken_names_are_clear_errors(blobs: BlobServiceClient) -> None:
    container = unique("state-azure-")
    blobs.create_container(container)
    with pytest.raises(BootstrapError, match="was not made by bootstrap"):
        ensure_azure_backend(FakeArm(), blobs, "rg", "westeurope", "acct", container, "kv", "k")
    with pytest.raises(BootstrapError, match="'acct' is taken"):
        ensure_azure_backend(
            FakeArm(taken={"acct"}), blobs, "rg", "westeurope", "acct", unique("c-"), "kv", "k"
        )
