"""Bootstrap against real stand-ins: moto's server (S3 + KMS), the GCS emulator and Azurite.

Cloud KMS and Azure's management plane have no emulator: fakes of their small interfaces record calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from azure.storage.blob import BlobServiceClient, PublicAccess
from botocore.exceptions import ClientError
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from scripts import bootstrap
from scripts.state_backends import MARKER_KEY, MARKER_VALUE, BootstrapError
from scripts.state_backends.aws import ENVIRONMENT_TAG, ensure_aws_backend, other_environments_statement
from scripts.state_backends.azure import ensure_azure_backend
from scripts.state_backends.gcp import ensure_gcp_backend
from scripts.tests.fake_pulumi import FakePulumi
from testing.iam_policy import Decision, Principal, Request, ResourcePolicy, decide
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


def test_aws_bootstrap_creates_a_private_versioned_kms_encrypted_bucket_and_inits_the_stack(
    aws_env: S3Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket, pulumi = unique("state-aws-"), FakePulumi()
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
    assert f"pulumi login 's3://{bucket}?region={REGION}&awssdk=v2'" in out
    assert f"awskms://{alias}?region={REGION}" in out
    assert pulumi.stacks["aws-dev"].secrets_provider == f"awskms://{alias}?region={REGION}"

    s3, kms = aws_clients()
    key = kms.describe_key(KeyId=alias)["KeyMetadata"]
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": key["Arn"],
    }
    assert s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}
    ]
    # moto enforces the bucket policy: plain HTTP (which is all moto speaks here) is refused.
    with pytest.raises(ClientError, match="403"):
        s3.put_object(Bucket=bucket, Key="probe", Body=b"x")


def test_aws_rerun_changes_nothing_and_leaves_an_existing_stack_alone(
    aws_env: S3Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = unique("state-aws-")
    s3, kms = aws_clients()
    first = ensure_aws_backend(s3, kms, bucket, REGION, f"alias/{bucket}")
    assert len(first.changes) >= 6
    policy_before = s3.get_bucket_policy(Bucket=bucket)["Policy"]

    pulumi = FakePulumi()
    pulumi.add("aws-dev", {"mlops-stack:environment": "dev"})
    argv = ["--cloud", "aws", "--bucket", bucket, "--region", REGION, "--key-alias", f"alias/{bucket}"]
    assert bootstrap.main([*argv, "--stack", "aws-dev"], pulumi=pulumi) == 0
    out = capsys.readouterr().out
    assert "none: everything was already in place" in out
    assert "already exists on this backend" in out
    assert ("stack init", "aws-dev") not in pulumi.calls
    assert s3.get_bucket_policy(Bucket=bucket)["Policy"] == policy_before
    aliases = [a["AliasName"] for a in kms.list_aliases()["Aliases"] if a["AliasName"] == f"alias/{bucket}"]
    assert aliases == [f"alias/{bucket}"]


def test_aws_bucket_of_another_account_is_a_clear_error(
    aws_env: S3Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = unique("state-aws-")
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
    argv = ["--cloud", "aws", "--bucket", bucket, "--region", REGION, "--stack", "aws-dev"]
    assert bootstrap.main(argv, pulumi=pulumi) == 2
    assert "taken by another AWS account" in capsys.readouterr().err
    assert pulumi.stacks == {}


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


# Per environment (the isolation model): bucket and key tagged with it, other environments' roles denied.


def managed_policy(name: str) -> dict[str, Any]:
    """An AWS managed policy as moto ships it."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    return dict(json.loads(aws_managed_policies_data)[name]["Document"])


def test_aws_environment_state_is_tagged_and_closed_to_other_environments_roles(aws_env: S3Emulator) -> None:
    bucket = unique("state-aws-prod-")
    s3, kms = aws_clients()
    ensure_aws_backend(s3, kms, bucket, REGION, f"alias/{bucket}", environment="prod")
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    assert tags == {MARKER_KEY: MARKER_VALUE, ENVIRONMENT_TAG: "prod"}
    key = kms.describe_key(KeyId=f"alias/{bucket}")["KeyMetadata"]
    key_tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key["KeyId"])["Tags"]}
    assert key_tags[ENVIRONMENT_TAG] == "prod"

    # The policy as S3 keeps it, evaluated for roles as the stacks tag them (infra.naming.labels).
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert other_environments_statement(bucket, "prod") in policy["Statement"]
    bucket_policy = ResourcePolicy(policy)
    power_user = [managed_policy("PowerUserAccess")]
    state = f"arn:aws:s3:::{bucket}/.pulumi/stacks/mlops-stack/aws-prod.json"
    over_tls = {"aws:SecureTransport": "true"}
    for action, resource in (
        ("s3:GetObject", state),
        ("s3:PutObject", state),
        ("s3:PutBucketPolicy", f"arn:aws:s3:::{bucket}"),
    ):
        request = Request(action, resource, over_tls)
        dev_role = Principal(power_user, tags={ENVIRONMENT_TAG: "dev"})
        assert decide(dev_role, request, [bucket_policy]) is Decision.EXPLICIT_DENY, action
        prod_role = Principal(power_user, tags={ENVIRONMENT_TAG: "prod"})
        assert decide(prod_role, request, [bucket_policy]) is Decision.ALLOW
        assert decide(Principal(power_user), request, [bucket_policy]) is Decision.ALLOW  # the admins
    # AWS always sets aws:SecureTransport; over plain HTTP even the admins are refused.
    plain_http = Request("s3:GetObject", state, {"aws:SecureTransport": "false"})
    assert decide(Principal(power_user), plain_http, [bucket_policy]) is Decision.EXPLICIT_DENY


def test_aws_the_key_policy_bootstrap_leaves_lets_the_stacks_iam_grants_work(aws_env: S3Emulator) -> None:
    bucket = unique("state-aws-dev-")
    s3, kms = aws_clients()
    ensure_aws_backend(s3, kms, bucket, REGION, f"alias/{bucket}", environment="dev")
    key = kms.describe_key(KeyId=f"alias/{bucket}")["KeyMetadata"]
    key_policy = ResourcePolicy(
        json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"]),
        key["AWSAccountId"],
        delegates_to_iam_required=True,
    )
    # What the stack grants its preview role (infra/aws/state_access.py): decrypt with this key, by ARN.
    preview = Principal(
        [{"Statement": [{"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": [key["Arn"]]}]}]
    )
    assert decide(preview, Request("kms:Decrypt", key["Arn"]), [key_policy]) is Decision.ALLOW


def test_aws_a_key_whose_policy_shuts_out_iam_is_refused_with_the_fix(aws_env: S3Emulator) -> None:
    alias = f"alias/{unique('closed-key-')}"
    s3, kms = aws_clients()
    account = boto3.client("sts", region_name=REGION).get_caller_identity()["Account"]
    only_one_role = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:role/key-admin"},
                       "Action": "kms:*", "Resource": "*"}],
    }  # fmt: skip
    key = kms.create_key(Policy=json.dumps(only_one_role), BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    with pytest.raises(
        BootstrapError, match=r"does not let IAM policies grant access.*Enable IAM User Permissions"
    ):
        ensure_aws_backend(s3, kms, unique("state-aws-"), REGION, alias, environment="dev")


def test_aws_one_environments_bucket_or_key_is_refused_to_another(aws_env: S3Emulator) -> None:
    bucket, alias = unique("state-aws-dev-"), f"alias/{unique('dev-key-')}"
    s3, kms = aws_clients()
    ensure_aws_backend(s3, kms, bucket, REGION, alias, environment="dev")
    with pytest.raises(BootstrapError, match="holds the state of environment 'dev', not 'prod'"):
        ensure_aws_backend(s3, kms, bucket, REGION, f"alias/{unique('prod-key-')}", environment="prod")
    with pytest.raises(BootstrapError, match=r"KMS key .* belongs to environment 'dev', not 'prod'"):
        ensure_aws_backend(s3, kms, unique("state-aws-prod-"), REGION, alias, environment="prod")


def test_aws_state_made_before_environments_is_tagged_and_closed_on_the_next_run(aws_env: S3Emulator) -> None:
    bucket = unique("state-aws-")
    s3, kms = aws_clients()
    ensure_aws_backend(s3, kms, bucket, REGION, f"alias/{bucket}")
    upgraded = ensure_aws_backend(s3, kms, bucket, REGION, f"alias/{bucket}", environment="staging")
    assert upgraded.changes == [
        f"tagged KMS key alias/{bucket} environment=staging",
        f"tagged S3 bucket {bucket} environment=staging",
        "denied principals tagged with an environment other than staging (bucket policy)",
    ]
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    assert tags == {MARKER_KEY: MARKER_VALUE, ENVIRONMENT_TAG: "staging"}  # the marker kept
    again = ensure_aws_backend(s3, kms, bucket, REGION, f"alias/{bucket}", environment="staging")
    assert again.changes == []


def test_aws_bootstrap_tags_with_the_environment_tag_the_stacks_use() -> None:
    from infra.config import load_settings
    from infra.naming import labels

    config = {"mlops-stack:cloud": "aws", "mlops-stack:environment": "prod", "aws:region": REGION,
              "mlops-stack:githubRepository": "acme-ml/mlops-stack"}  # fmt: skip
    assert labels(load_settings(config.get, stack="aws-prod"))[ENVIRONMENT_TAG] == "prod"


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
