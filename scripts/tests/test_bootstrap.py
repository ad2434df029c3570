"""Bootstrap against real stand-ins: moto's server (S3 + KMS), the GCS emulator and Azurite.

Cloud KMS and Service Usage have no emulator: the real clients talk REST to scripts/tests/fake_google_apis.py,
which models the documented behaviour. Azure's management plane: a fake of its small interface records calls.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
import yaml
from azure.core.exceptions import ResourceNotFoundError
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import BlobServiceClient, PublicAccess
from botocore.exceptions import ClientError
from google.api_core import exceptions as google_errors
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import AuthorizedSession
from google.cloud import storage
from requests.adapters import HTTPAdapter
from urllib3.response import HTTPResponse

from mlops_stack.state_backends import MARKER_KEY, MARKER_VALUE, BootstrapError, StateBackend
from mlops_stack.state_backends.aws import ENVIRONMENT_TAG, ensure_aws_backend, other_environments_statement
from mlops_stack.state_backends.azure import ensure_azure_backend, ensure_container
from mlops_stack.state_backends.azure_arm import ArmManagement
from mlops_stack.state_backends.gcp import CloudKmsKeys, CloudServiceUsage, ensure_gcp_backend
from scripts import bootstrap
from scripts.tests.fake_arm import OPERATOR, SUBSCRIPTION, TENANT, FakeArmService, FakeCredential
from scripts.tests.fake_google_apis import FakeGoogleApis
from testing.fake_pulumi import FakePulumi
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
    from infra.naming import labels
    from infra.platform import load_stack_settings

    config = {"mlops-stack:cloud": "aws", "mlops-stack:environment": "prod", "aws:region": REGION,
              "mlops-stack:githubRepository": "acme-ml/mlops-stack"}  # fmt: skip
    assert labels(load_stack_settings(config.get, stack="aws-prod"))[ENVIRONMENT_TAG] == "prod"


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


@pytest.fixture
def blobs(azurite_blob: AzuriteBlob) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(azurite_blob.connection_string)


@dataclass
class Azure:
    """The real `ArmManagement` talking to the fake ARM service, and the waits it made."""

    service: FakeArmService
    management: ArmManagement
    sleeps: list[float]


def azure(**service_options: Any) -> Azure:
    service, sleeps = FakeArmService(**service_options), list[float]()
    management = ArmManagement(
        SUBSCRIPTION, TENANT, credential=FakeCredential(), transport=service.transport(), sleep=sleeps.append
    )
    return Azure(service, management, sleeps)


def backend_args(container: str, key: str = "pulumi-secrets-dev") -> tuple[str, str, str, str, str, str]:
    return ("mlops-stack-state", "westeurope", "acmemlstate", container, "acme-ml-kv", key)


GROUP_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/mlops-stack-state/providers"
ACCOUNT_ID = f"{GROUP_ID}/Microsoft.Storage/storageAccounts/acmemlstate"
VAULT_ID = f"{GROUP_ID}/Microsoft.KeyVault/vaults/acme-ml-kv"


def test_azure_bootstrap_makes_everything_grants_you_the_data_roles_and_rerun_changes_nothing(
    blobs: BlobServiceClient,
) -> None:
    arm, container = azure(), unique("state-dev-")
    backend = ensure_azure_backend(arm.management, blobs, *backend_args(container), sleep=arm.sleeps.append)
    assert backend.login_url == f"azblob://{container}?storage_account=acmemlstate"
    assert backend.secrets_provider == "azurekeyvault://acme-ml-kv.vault.azure.net/keys/pulumi-secrets-dev"
    assert backend.changes == [
        "created resource group mlops-stack-state",
        "created storage account acmemlstate",
        "enabled blob versioning and soft delete on acmemlstate",
        "created Key Vault acme-ml-kv",
        "created Key Vault key pulumi-secrets-dev",
        f"granted you ({OPERATOR}) Storage Blob Data Contributor on account acmemlstate",
        f"granted you ({OPERATOR}) Key Vault Crypto User on vault acme-ml-kv",
        "Key Vault acme-ml-kv now lets you use key pulumi-secrets-dev",
        f"created private blob container {container}",
    ]
    service = arm.service
    assert service.ignored == []  # every body in ARM's REST shape: nothing silently dropped
    assert service.accounts["acmemlstate"]["properties"] == {
        "supportsHttpsTrafficOnly": True,
        "minimumTlsVersion": "TLS1_2",
        "allowBlobPublicAccess": False,
        "allowSharedKeyAccess": False,
        "defaultToOAuthAuthentication": True,
        "allowCrossTenantReplication": False,
        "provisioningState": "Succeeded",
    }
    assert service.blob_services["acmemlstate"]["properties"] == {
        "isVersioningEnabled": True,
        "deleteRetentionPolicy": {"enabled": True, "days": 30},
        "containerDeleteRetentionPolicy": {"enabled": True, "days": 30},
    }
    vault = service.vaults["acme-ml-kv"]["properties"]
    assert (vault["tenantId"], vault["enableRbacAuthorization"], vault["enablePurgeProtection"]) == (
        TENANT,
        True,
        True,
    )
    assert service.keys["acme-ml-kv/pulumi-secrets-dev"]["properties"] == {
        "kty": "RSA",
        "keySize": 3072,
        "keyOps": ["encrypt", "decrypt", "wrapKey", "unwrapKey"],
    }
    granted = {
        (a["properties"]["scope"], a["properties"]["roleDefinitionId"].rsplit("/", 1)[-1])
        for a in service.assignments.values()
        if a["properties"]["principalId"] == OPERATOR and a["properties"]["principalType"] == "User"
    }
    assert granted == {
        (ACCOUNT_ID, "ba92f5b4-2d11-453d-a403-e96b0029c9fe"),  # Storage Blob Data Contributor
        (VAULT_ID, "12338af0-0e69-4776-bea7-57ae8d297424"),  # Key Vault Crypto User
    }
    assert arm.sleeps == [15, 15]  # Key Vault refused the key until the grant was in force
    properties = blobs.get_container_client(container).get_container_properties()
    assert properties.public_access is None
    assert properties.metadata == {"mlops_stack_role": "pulumi_state"}

    writes = len(service.writes())
    again = ensure_azure_backend(arm.management, blobs, *backend_args(container), sleep=arm.sleeps.append)
    assert again.changes == []
    assert len(service.writes()) == writes
    assert arm.sleeps == [15, 15]


def test_azure_next_environment_gets_its_own_container_and_key_and_no_new_grant(
    blobs: BlobServiceClient,
) -> None:
    arm = azure()
    ensure_azure_backend(arm.management, blobs, *backend_args(unique("state-dev-")))
    prod = unique("state-prod-")
    backend = ensure_azure_backend(arm.management, blobs, *backend_args(prod, "pulumi-secrets-prod"))
    assert backend.changes == [
        "created Key Vault key pulumi-secrets-prod",
        f"created private blob container {prod}",
    ]
    assert len(arm.service.assignments) == 2


def test_azure_says_which_role_assignments_to_ask_for_when_you_may_not_grant_them(
    blobs: BlobServiceClient,
) -> None:
    arm, container = azure(may_assign_roles=False), unique("state-dev-")
    with pytest.raises(BootstrapError) as raised:
        ensure_azure_backend(arm.management, blobs, *backend_args(container))
    message = str(raised.value)
    for role, scope in (("Storage Blob Data Contributor", ACCOUNT_ID), ("Key Vault Crypto User", VAULT_ID)):
        assert (
            f"az role assignment create --assignee-object-id {OPERATOR} --assignee-principal-type User "
            f"--role '{role}' --scope {scope}"
        ) in message
    with pytest.raises(ResourceNotFoundError):  # stopped before touching the data plane
        blobs.get_container_client(container).get_container_properties()


def test_azure_taken_or_foreign_names_are_clear_errors(blobs: BlobServiceClient) -> None:
    with pytest.raises(BootstrapError, match="storage account name 'acmemlstate' is taken"):
        ensure_azure_backend(azure(taken_names={"acmemlstate"}).management, blobs, *backend_args("c-1"))
    with pytest.raises(BootstrapError, match="Key Vault name 'acme-ml-kv' is taken"):
        ensure_azure_backend(azure(taken_names={"acme-ml-kv"}).management, blobs, *backend_args("c-1"))
    arm = azure()
    arm.service.accounts["acmemlstate"] = {"name": "acmemlstate", "tags": {}, "properties": {}}
    with pytest.raises(BootstrapError, match="was not made by bootstrap"):
        ensure_azure_backend(arm.management, blobs, *backend_args("c-1"))
    container = unique("state-azure-")
    blobs.create_container(container)
    with pytest.raises(BootstrapError, match="was not made by bootstrap"):
        ensure_azure_backend(azure().management, blobs, *backend_args(container))


def test_azure_names_azure_would_refuse_fail_before_any_call(blobs: BlobServiceClient) -> None:
    arm = azure()
    args = ("mlops-stack-state.", "westeurope", "Acme_ML_State", "pulumi--state", "kv", "pulumi_secrets")
    with pytest.raises(BootstrapError) as raised:
        ensure_azure_backend(arm.management, blobs, *args)
    problems = str(raised.value).splitlines()[1:]
    assert [problem.split()[0] for problem in problems] == [
        "--resource-group",
        "--storage-account",
        "--container",
        "--vault",
        "--key",
    ]
    assert "is 2 characters; allowed 3-24" in problems[3]
    assert arm.service.requests == []


def test_azure_public_container_of_ours_is_made_private(blobs: BlobServiceClient) -> None:
    container = unique("state-azure-")
    blobs.create_container(
        container, metadata={"mlops_stack_role": "pulumi_state"}, public_access=PublicAccess.BLOB
    )
    changes = ensure_azure_backend(azure().management, blobs, *backend_args(container)).changes
    assert f"made blob container {container} private" in changes
    assert blobs.get_container_client(container).get_container_properties().public_access is None


class NotYetAuthorized(HTTPAdapter):
    """Azurite behind the answer Azure's Blob service gives while a new data role is not yet in force: 403
    with `x-ms-error-code: AuthorizationPermissionMismatch`
    (https://learn.microsoft.com/rest/api/storageservices/blob-service-error-codes), `refusals` times."""

    def __init__(self, refusals: int) -> None:
        super().__init__()
        self.refusals = refusals

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if self.refusals == 0:
            return super().send(request, *args, **kwargs)
        self.refusals -= 1
        headers = {"x-ms-error-code": "AuthorizationPermissionMismatch", "Content-Length": "0"}
        raw = HTTPResponse(body=io.BytesIO(b""), headers=headers, status=403, preload_content=False)
        return self.build_response(request, raw)


def test_azure_waits_for_the_blob_data_role_to_take_effect(azurite_blob: AzuriteBlob) -> None:
    session = requests.Session()
    session.mount("http://", NotYetAuthorized(refusals=2))
    blobs = BlobServiceClient.from_connection_string(
        azurite_blob.connection_string, transport=RequestsTransport(session=session, session_owner=False)
    )
    container, changes, sleeps = unique("state-azure-"), list[str](), list[float]()
    ensure_container(blobs, container, changes, sleep=sleeps.append)
    assert sleeps == [15, 15]
    assert changes == [f"created private blob container {container}"]


def test_the_fake_arm_catches_a_body_in_the_sdk_s_python_names(blobs: BlobServiceClient) -> None:
    """The failure the model classes prevent: the TypeSpec SDKs send a dict as written, and ARM drops what it
    does not know (here every security setting of the state account)."""
    arm = azure()
    storage = arm.management._storage  # the same client bootstrap uses
    old_body: dict[str, Any] = {
        "location": "westeurope",
        "kind": "StorageV2",
        "sku": {"name": "Standard_ZRS"},
    }
    old_body |= {"enable_https_traffic_only": True, "allow_blob_public_access": False}
    # A dict body is json.dumps'd as it is: the same bytes as this.
    sent = io.BytesIO(json.dumps(old_body).encode())
    storage.storage_accounts.begin_create("mlops-stack-state", "acmemlstate", sent).result()
    assert sorted(arm.service.ignored) == [
        "storageAccount.allow_blob_public_access",
        "storageAccount.enable_https_traffic_only",
    ]


def test_azure_state_group_bootstrap_makes_by_default_is_the_one_stacks_grant_ci_access_in() -> None:
    """The stacks build the state container's and key's resource ids from `mlops-stack:stateResourceGroup`
    (default below); bootstrap's `--resource-group` default must be that group, or CI is granted nothing."""
    from infra.platform import load_stack_settings

    args = bootstrap._parser().parse_args(["--cloud", "azure"])
    config = {
        "mlops-stack:cloud": "azure",
        "mlops-stack:environment": "dev",
        "mlops-stack:githubRepository": "acme-ml/mlops-stack",
        "azure-native:location": "westeurope",
    }
    settings = load_stack_settings(read=config.get, stack="azure-dev")
    assert args.resource_group == settings.state_resource_group == "mlops-stack-state"


def test_a_stack_is_told_a_non_default_state_resource_group(tmp_path: Path) -> None:
    """Azure: the stack builds its CI identities' state grants from mlops-stack:stateResourceGroup."""
    pulumi = FakePulumi(work_dir=tmp_path)
    dev = StateBackend(
        "azblob://pulumi-state-dev?storage_account=acme", "azurekeyvault://kv.vault.azure.net/keys/k"
    )
    bootstrap.init_stack(pulumi, "azure-dev", {"dev": dev}, {"mlops-stack:stateResourceGroup": "mlops-state"})
    assert pulumi.config("azure-dev")["mlops-stack:stateResourceGroup"] == "mlops-state"
