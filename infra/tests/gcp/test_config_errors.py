"""GCP-specific config errors stop the program before the mocks see a single resource or invoke."""

import pytest
from pulumi.runtime import MockCallArgs, MockResourceArgs

from infra.config import ConfigError, load_settings
from infra.tests.gcp.conftest import config_for
from testing.pulumi_program import run_program


def fails_before_anything(config: dict[str, str]) -> str:
    seen: list[str] = []

    def record_resource(args: MockResourceArgs) -> dict[str, str]:
        seen.append(args.name)
        return {}

    def record_call(args: MockCallArgs) -> dict[str, str]:
        seen.append(args.token)
        return {}

    with pytest.raises(ConfigError) as raised:
        run_program(config, "gcp-dev", record_resource, record_call)
    assert seen == []
    return str(raised.value)


def test_missing_project_and_region_are_both_reported() -> None:
    message = fails_before_anything(config_for("dev", **{"gcp:project": None, "gcp:region": None}))
    assert "gcp:project: is not set; pulumi config set gcp:project <value>" in message
    assert "gcp:region: is not set; pulumi config set gcp:region <value>" in message


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"trackingCpu": "1", "trackingMemoryMiB": "8192"}, "trackingMemoryMiB: 8192 MiB does not fit 1 CPU"),
        ({"apiCpu": "0.5"}, "apiCpu: 0.5 CPUs is not a size this cloud offers"),
        ({"apiCpu": "2", "apiMemoryMiB": "300"}, "apiMemoryMiB: 300 MiB does not fit 2 CPU"),
    ],
)
def test_bad_cloud_run_sizes_say_what_cloud_run_accepts(overrides: dict[str, str], expected: str) -> None:
    message = fails_before_anything(config_for("dev", **overrides))
    assert expected in message
    assert "Cloud Run takes 1 CPU with 512-4096 MiB, 2 with 512-8192" in message


def test_model_source_must_be_in_gcs() -> None:
    message = fails_before_anything(config_for("dev", modelVersion="3", modelSource="s3://bucket/model"))
    assert "modelSource: 's3://bucket/model' is not in this cloud's artifact store; expected gs://" in message


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"githubRepositoryId": "812345678"},
            "mlops-stack:githubOwnerId: is not set but the other GitHub id is; set both: "
            "gh api repos/OWNER/REPO --jq .id,.owner.id prints both",
        ),
        (
            {"githubRepositoryId": "acme-ml/mlops-stack", "githubOwnerId": "98765432"},
            "mlops-stack:githubRepositoryId: 'acme-ml/mlops-stack' is malformed; "
            "expected GitHub's numeric id",
        ),
        (
            {"gcpSandboxProject": "acme-ml-sandboxes"},
            "mlops-stack:gcpSandboxProject: is set but sandboxes is not true",
        ),
        (
            {"sandboxes": "true", "gcpSandboxProject": "Acme_Sandboxes"},
            "mlops-stack:gcpSandboxProject: 'Acme_Sandboxes' is malformed; expected a GCP project id",
        ),
    ],
)
def test_github_ids_and_the_sandbox_project_are_checked(overrides: dict[str, str], expected: str) -> None:
    assert expected in fails_before_anything(config_for("dev", **overrides))


# `repo:acme-ml/mlops-stack:ref:refs/heads/` is 40 bytes; Workload Identity Federation maps at most 127 into
# google.subject, so prod's preview subject fits with an 87-byte branch and not with 88.
def test_prods_preview_subject_must_fit_google_subject() -> None:
    message = fails_before_anything(config_for("prod", githubBranch="release/" + "x" * 80))
    assert (
        "mlops-stack:githubBranch: makes the preview identity's OIDC subject 128 bytes long, over the 127 "
        "that Workload Identity Federation maps" in message
    )
    assert load_settings(config_for("prod", githubBranch="release/" + "x" * 79).get, stack="gcp-prod")


def test_githubs_ids_are_read_as_given() -> None:
    config = config_for("dev", githubRepositoryId="812345678", githubOwnerId="98765432")
    settings = load_settings(config.get, stack="gcp-dev")
    assert (settings.github_repository_id, settings.github_owner_id) == ("812345678", "98765432")
