"""Bootstrap against real stand-ins: moto's server (S3 + KMS), the GCS emulator and Azurite.

Cloud KMS and Azure's management plane have no emulator: fakes of their small interfaces record calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from azure.storage.blob import BlobServiceClient, PublicAccess
from botocore.exceptions import ClientError
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from scripts import bootstrap
from scripts.state_backends import BootstrapError
from scripts.state_backends.aws import ensure_aws_backend
from scripts.state_backends.azure import ensure_azure_backend
from scripts.state_backends.gcp import ensure_gcp_backend
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


# --- GCP: the GCS emulator and a fake Cloud KMS ------------------------------------------------------------


@dataclass
class FakeKms:
    keys: set[str] = field(default_factory=set)

    def ensure_key(self, project: str, location: str, key_ring: str, key: str) -> bool:
        name = f"projects/{project}/locations/{location}/keyRings/{key_ring}/cryptoKeys/{key}"
        created = name not in self.keys
        self.keys.add(name)
        return created


@pytest.fixture
def gcs(gcs_emulator: GcsEmulator, monkeypatch: pytest.MonkeyPatch) -> storage.Client:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.endpoint_url)
    return storage.Client(project="acme-ml", credentials=AnonymousCredentials())


def test_gcp_bootstrap_creates_a_locked_down_versioned_bucket_and_rerun_changes_nothing(
    gcs: storage.Client,
) -> None:
    name, kms = unique("state-gcp-"), FakeKms()
    backend = ensure_gcp_backend(gcs, kms, "acme-ml", "europe-west1", name, "mlops-stack", "pulumi-secrets")
    key = "projects/acme-ml/locations/europe-west1/keyRings/mlops-stack/cryptoKeys/pulumi-secrets"
    assert backend.login_url == f"gs://{name}"
    assert backend.secrets_provider == f"gcpkms://{key}"
    assert kms.keys == {key}
    bucket = gcs.get_bucket(name)
    assert bucket.versioning_enabled
    assert bucket.iam_configuration.uniform_bucket_level_access_enabled
    assert bucket.iam_configuration.public_access_prevention == "enforced"
    assert bucket.labels == {"mlops-stack-role": "pulumi-state", "mlops-stack-project": "acme-ml"}

    again = ensure_gcp_backend(gcs, kms, "acme-ml", "europe-west1", name, "mlops-stack", "pulumi-secrets")
    assert again.changes == []
    assert gcs.get_bucket(name).metageneration == bucket.metageneration


def test_gcp_bucket_made_by_someone_else_is_a_clear_error(gcs: storage.Client) -> None:
    name = unique("state-gcp-")
    gcs.create_bucket(name)
    with pytest.raises(BootstrapError, match="was not made by bootstrap for project acme-ml"):
        ensure_gcp_backend(gcs, FakeKms(), "acme-ml", "europe-west1", name, "mlops-stack", "pulumi-secrets")
    other_team = unique("state-gcp-")
    ensure_gcp_backend(gcs, FakeKms(), "other-team", "europe-west1", other_team, "mlops-stack", "k")
    with pytest.raises(BootstrapError, match="not made by bootstrap for project acme-ml"):
        ensure_gcp_backend(gcs, FakeKms(), "acme-ml", "europe-west1", other_team, "mlops-stack", "k")


def test_gcp_drifted_settings_are_converged(gcs: storage.Client) -> None:
    name = unique("state-gcp-")
    ensure_gcp_backend(gcs, FakeKms(), "acme-ml", "eu", name, "ring", "key")
    bucket = gcs.get_bucket(name)
    bucket.versioning_enabled = False
    bucket.patch()
    assert ensure_gcp_backend(gcs, FakeKms(), "acme-ml", "eu", name, "ring", "key").changes == [
        "created Cloud KMS key ring/key in eu",
        "enabled versioning",
    ]
    assert gcs.get_bucket(name).versioning_enabled


def test_gcp_invalid_kms_name_is_rejected_before_anything_is_made(gcs: storage.Client) -> None:
    kms = FakeKms()
    with pytest.raises(BootstrapError, match="--key-ring 'my ring' is not a valid"):
        ensure_gcp_backend(gcs, kms, "acme-ml", "eu", unique("state-gcp-"), "my ring", "key")
    assert kms.keys == set()


@dataclass
class FakeApis:
    """Service Usage as documented: batchEnable turns on what is off; what is on stays on."""

    enabled: set[str] = field(default_factory=lambda: {"storage.googleapis.com"})

    def enable(self, project: str, apis: tuple[str, ...]) -> list[str]:
        off = [api for api in apis if api not in self.enabled]
        self.enabled |= set(off)
        return off


def test_gcp_bootstrap_enables_kms_and_resource_manager_first(gcs: storage.Client) -> None:
    apis, name = FakeApis(), unique("state-gcp-")
    backend = ensure_gcp_backend(gcs, FakeKms(), "acme-ml", "eu", name, "ring", "key", apis)
    assert backend.changes[:2] == [
        "enabled cloudkms.googleapis.com",
        "enabled cloudresourcemanager.googleapis.com",
    ]
    again = ensure_gcp_backend(gcs, FakeKms(), "acme-ml", "eu", name, "ring", "key", apis)
    assert not [change for change in again.changes if change.startswith("enabled ")]


def test_gcp_kms_key_rotates_and_says_when_first(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    from scripts.state_backends.gcp import ROTATION_SECONDS, key_settings

    now = datetime(2026, 11, 24, tzinfo=UTC)
    settings = key_settings(now)
    assert settings["rotation_period"] == {"seconds": ROTATION_SECONDS}
    # The KMS API refuses a rotation period without the first rotation time.
    assert settings["next_rotation_time"] == {"seconds": int(now.timestamp()) + ROTATION_SECONDS}
    assert settings["purpose"] == "ENCRYPT_DECRYPT"


def test_gcp_permission_denied_names_the_roles_to_ask_for(gcs: storage.Client) -> None:
    from google.api_core import exceptions as google_errors

    class DeniedKms:
        def ensure_key(self, project: str, location: str, key_ring: str, key: str) -> bool:
            raise google_errors.PermissionDenied("Permission 'cloudkms.keyRings.create' denied on resource")

    with pytest.raises(BootstrapError) as raised:
        ensure_gcp_backend(gcs, DeniedKms(), "acme-ml", "eu", unique("state-gcp-"), "ring", "key")
    message = str(raised.value)
    assert (
        "Google refused a call for project acme-ml: Permission 'cloudkms.keyRings.create' denied" in message
    )
    assert "roles/cloudkms.admin" in message


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
