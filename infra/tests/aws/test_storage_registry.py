"""The artifact bucket and the registry, as the program would send them to AWS."""

import json

from infra.tests.aws.conftest import ACCOUNT_ID, REGION, bucket_name, run_aws, statements, with_model

BUCKET = "aws:s3/bucket:Bucket"
SECRET_MARKER = "4dabf18193072939515e22adb298388d"  # Pulumi's signature key of a secret value


def test_bucket_blocks_every_kind_of_public_access(environment: str) -> None:
    run = run_aws(environment)
    block = run.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    bucket = run.one(BUCKET)
    assert block["bucket"] == f"{bucket.name}-id"
    for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
        assert block[flag] is True, flag
    ownership = run.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs
    assert ownership["rule"]["objectOwnership"] == "BucketOwnerEnforced"


def test_bucket_is_versioned_and_encrypted_with_its_own_rotating_key(environment: str) -> None:
    run = run_aws(environment)
    assert run.one("aws:s3/bucketVersioning:BucketVersioning").inputs["versioningConfiguration"] == {
        "status": "Enabled"
    }
    key = run.one("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    (rule,) = run.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:{key.name}",
    }
    assert rule["bucketKeyEnabled"] is True


def test_bucket_policy_denies_every_request_without_tls(environment: str) -> None:
    run = run_aws(environment)
    bucket_arn = f"arn:aws:s3:::{bucket_name(run)}"
    policy = statements(run.one("aws:s3/bucketPolicy:BucketPolicy"))
    statement = policy["DenyInsecureTransport"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Action"] == ["s3:*"]
    assert statement["Resource"] == [bucket_arn, f"{bucket_arn}/*"]
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # And no role of another environment (infra/aws/fence.py; evaluated in test_ci_identity.py).
    assert set(policy) == {"DenyInsecureTransport", "DenyOtherEnvironments"}
    assert policy["DenyOtherEnvironments"]["Condition"]["StringNotEquals"] == {
        "aws:PrincipalTag/environment": environment
    }


def test_lifecycle_expires_noncurrent_versions(environment: str) -> None:
    run = run_aws(environment)
    (rule,) = run.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"]
    assert rule["status"] == "Enabled"
    days = rule["noncurrentVersionExpiration"]["noncurrentDays"]
    assert days == {"dev": 7, "prod": 14, "sandbox": 1}[environment]  # backupRetentionDays' defaults
    assert rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == 7


def test_only_sandboxes_can_lose_their_data_in_one_destroy(environment: str) -> None:
    run = run_aws(environment)
    assert run.one(BUCKET).inputs["forceDestroy"] is (environment == "sandbox")
    for repository in run.of_type("aws:ecr/repository:Repository"):
        assert repository.inputs["forceDelete"] is (environment == "sandbox")


def test_artifact_root_is_the_mlflow_prefix_of_the_bucket() -> None:
    run = run_aws("dev")
    assert run.outputs["artifactRoot"] == f"s3://{bucket_name(run)}/mlflow"


def test_repositories_are_immutable_scanned_and_pruned(environment: str) -> None:
    run = run_aws(environment)
    repositories = run.of_type("aws:ecr/repository:Repository")
    stack = run.outputs["registry"].rsplit("/", 1)[1]
    assert sorted(r.inputs["name"] for r in repositories) == [
        f"{stack}/mlflow-tracking",
        f"{stack}/model-api",
    ]
    for repository in repositories:
        assert repository.inputs["imageTagMutability"] == "IMMUTABLE"
        assert repository.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    for lifecycle in run.of_type("aws:ecr/lifecyclePolicy:LifecyclePolicy"):
        (rule,) = json.loads(lifecycle.inputs["policy"])["rules"]
        assert rule["selection"] == {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 10}
        assert rule["action"] == {"type": "expire"}


def test_images_are_pushed_with_ecr_short_lived_token_and_deployed_by_digest() -> None:
    run = run_aws("dev", with_model("dev"))
    assert len(run.of_type("docker-build:index:Image")) == 2
    assert ("aws:ecr/getAuthorizationToken:getAuthorizationToken", {}) in [
        (token, {}) for token, _ in run.calls
    ]
    for image in run.of_type("docker-build:index:Image"):
        # The registry login holds the token, so Pulumi keeps it secret (a wrapped value under mocks).
        wrapped = image.inputs["registries"]
        assert SECRET_MARKER in wrapped
        (registry,) = wrapped["value"]
        assert registry["address"] == f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com"
        assert registry["username"] == "AWS"
        assert image.inputs["tags"][0].startswith(f"{run.outputs['registry']}/")
        if image.name.endswith("-api-image"):
            assert image.inputs["buildArgs"] == {"CLOUD": "aws"}
