"""Sandbox lifecycle against a fake Pulumi that keeps config in each checkout and tags, outputs and state in
the shared backend, as the real one does: the guard, up, destroy, the sweep, and a whole lifecycle across
checkouts (a PR's runner creates the sandbox; other runners update, destroy and sweep it)."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from mlops_stack.pulumi_cli import PulumiError
from scripts import sandbox
from scripts.sandbox import NotASandboxError, SandboxError
from testing.fake_pulumi import FakeBackend, FakePulumi

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PAST = "2026-11-23T11:59:59Z"
FUTURE = "2026-11-23T12:00:01Z"
PROVIDER = (
    "gcpkms://projects/acme-ml/locations/europe-west1/keyRings/mlops-stack/cryptoKeys/pulumi-secrets-sandbox"
)
# What the SANDBOX_CONFIG variable gives every run (the program refuses a stack without these).
GCP_CONFIG = {
    "gcp:project": "acme-ml",
    "gcp:region": "europe-west1",
    "mlops-stack:githubRepository": "acme-ml/mlops-stack",
}
FALLBACK = {"PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER": "true"}


def sandbox_tags(cloud: str = "gcp", expires: str | None = PAST) -> dict[str, str]:
    tags = {"mlops-stack:environment": "sandbox", "mlops-stack:cloud": cloud}
    if expires is not None:
        tags["mlops-stack:expires-at"] = expires
    return tags


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def pulumi(backend: FakeBackend, tmp_path: Path) -> FakePulumi:
    """A fresh runner's checkout: no stack files, the workflow's environment."""
    return FakePulumi(backend, tmp_path / "checkout", environ=FALLBACK)


def destroyed(backend: FakeBackend) -> list[str]:
    return [stack for call, stack in backend.calls if call == "destroy"]


# --- the guard -------------------------------------------------------------------------------------


def test_guard_accepts_a_sandbox_by_name_and_tags(backend: FakeBackend, pulumi: FakePulumi) -> None:
    backend.add("aws-sandbox-pr7", tags=sandbox_tags("aws"))
    sandbox.ensure_sandbox(pulumi, "aws-sandbox-pr7")


@pytest.mark.parametrize(
    "name", ["gcp-dev", "gcp-prod", "sandbox-gcp-1", "gcp-sandbox-", "gcp-sandboxpr1", "x-sandbox-1"]
)
def test_guard_refuses_a_non_sandbox_name_even_with_sandbox_tags(
    backend: FakeBackend, pulumi: FakePulumi, name: str
) -> None:
    backend.add(name, tags=sandbox_tags())
    with pytest.raises(NotASandboxError, match="name is not"):
        sandbox.ensure_sandbox(pulumi, name)


@pytest.mark.parametrize("environment", ["prod", "dev", "staging", None])
def test_guard_refuses_a_sandbox_name_whose_tag_is_not_sandbox(
    backend: FakeBackend, pulumi: FakePulumi, environment: str | None
) -> None:
    tags = sandbox_tags()
    if environment is None:
        del tags["mlops-stack:environment"]
    else:
        tags["mlops-stack:environment"] = environment
    backend.add("gcp-sandbox-pr1", tags=tags)
    with pytest.raises(NotASandboxError, match="tag mlops-stack:environment is"):
        sandbox.ensure_sandbox(pulumi, "gcp-sandbox-pr1")


def test_guard_ignores_a_local_stack_file_that_says_sandbox(backend: FakeBackend, pulumi: FakePulumi) -> None:
    """A stack file on one machine proves nothing: only the backend's tags do."""
    backend.add("gcp-sandbox-pr1", tags={"mlops-stack:environment": "prod"})
    pulumi.set_config("gcp-sandbox-pr1", "mlops-stack:environment", "sandbox")
    with pytest.raises(NotASandboxError):
        sandbox.ensure_sandbox(pulumi, "gcp-sandbox-pr1")


def test_guard_refuses_when_the_cloud_tag_contradicts_the_name(
    backend: FakeBackend, pulumi: FakePulumi
) -> None:
    backend.add("gcp-sandbox-pr1", tags=sandbox_tags("aws"))
    with pytest.raises(NotASandboxError, match="name says gcp"):
        sandbox.ensure_sandbox(pulumi, "gcp-sandbox-pr1")


def test_guard_reads_the_short_name_of_a_fully_qualified_stack(
    backend: FakeBackend, pulumi: FakePulumi
) -> None:
    backend.add("organization/mlops-stack/azure-sandbox-a1", tags=sandbox_tags("azure"))
    sandbox.ensure_sandbox(pulumi, "organization/mlops-stack/azure-sandbox-a1")
    backend.add("organization/mlops-stack/azure-prod", tags=sandbox_tags("azure"))
    with pytest.raises(NotASandboxError):
        sandbox.ensure_sandbox(pulumi, "organization/mlops-stack/azure-prod")


# --- destroy ----------------------------------------------------------------------------------------


def test_destroy_removes_a_sandbox_and_its_stack(backend: FakeBackend, pulumi: FakePulumi) -> None:
    backend.add("gcp-sandbox-pr3", tags=sandbox_tags())
    assert sandbox.main(["destroy", "--stack", "gcp-sandbox-pr3"], pulumi=pulumi, now=NOW) == 0
    assert "gcp-sandbox-pr3" not in backend.stacks
    assert destroyed(backend) == ["gcp-sandbox-pr3"]


def test_destroy_of_a_prod_stack_is_refused_and_touches_nothing(
    backend: FakeBackend, pulumi: FakePulumi, capsys: pytest.CaptureFixture[str]
) -> None:
    backend.add("gcp-prod", tags={"mlops-stack:environment": "prod"})
    assert sandbox.main(["destroy", "--stack", "gcp-prod"], pulumi=pulumi, now=NOW) == 2
    assert "refusing to touch 'gcp-prod'" in capsys.readouterr().err
    assert destroyed(backend) == []
    assert backend.stacks["gcp-prod"].has_resources
    assert not pulumi.stack_file("gcp-prod").exists()  # not even its config was written


def test_destroy_of_a_missing_stack_is_a_no_op(
    backend: FakeBackend, pulumi: FakePulumi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sandbox.main(["destroy", "--stack", "aws-sandbox-pr9"], pulumi=pulumi, now=NOW) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert destroyed(backend) == []


# --- up -----------------------------------------------------------------------------------------------


def test_up_creates_a_sandbox_tags_it_in_the_backend_and_writes_the_comment(
    backend: FakeBackend, pulumi: FakePulumi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    comment = tmp_path / "comment.md"
    monkeypatch.setenv("SANDBOX_CONFIG", "gcp:project=acme-ml\n\ngcp:region=europe-west1\n")
    argv = ["up", "--cloud", "gcp", "--id", "pr12", "--ttl", "36h", "--secrets-provider", PROVIDER]
    argv += ["--config", "githubRepository=acme-ml/mlops-stack", "--comment-file", str(comment)]
    assert sandbox.main(argv, pulumi=pulumi, now=NOW) == 0
    stack = backend.stacks["gcp-sandbox-pr12"]
    assert stack.tags == {
        "pulumi:project": "mlops-stack",
        "mlops-stack:environment": "sandbox",
        "mlops-stack:cloud": "gcp",
        "mlops-stack:expires-at": "2026-11-25T00:00:00Z",
    }
    assert stack.secrets_manager == PROVIDER
    written = yaml.safe_load(pulumi.stack_file("gcp-sandbox-pr12").read_text())
    assert written["secretsprovider"] == PROVIDER
    assert written["config"] == {
        "mlops-stack:cloud": "gcp",
        "mlops-stack:environment": "sandbox",
        "mlops-stack:sandboxExpiresAt": "2026-11-25T00:00:00Z",
        **GCP_CONFIG,
    }
    # The program's own outputs agree with the tags.
    assert stack.outputs["environment"] == "sandbox"
    assert stack.outputs["sandboxExpiresAt"] == "2026-11-25T00:00:00Z"
    text = comment.read_text()
    for expected in ("https://gcp-sandbox-pr12-tracking.example", "2026-11-25T00:00:00Z"):
        assert expected in text
    assert "s3cret-admin" not in text


def test_a_failed_first_up_still_leaves_a_tagged_stack_the_sweep_removes(
    backend: FakeBackend, pulumi: FakePulumi
) -> None:
    with pytest.raises(PulumiError, match="config problem"):  # no project/region: the program refuses
        sandbox.up_sandbox(pulumi, "gcp", "pr5", timedelta(hours=1), NOW, PROVIDER, {})
    assert backend.stacks["gcp-sandbox-pr5"].tags["mlops-stack:expires-at"] == "2026-11-23T13:00:00Z"
    report = sandbox.sweep(pulumi, NOW + timedelta(hours=2))
    assert report.destroyed == ["gcp-sandbox-pr5"]
    assert backend.stacks == {}


def test_up_refuses_to_turn_an_existing_non_sandbox_stack_into_one(
    backend: FakeBackend, pulumi: FakePulumi
) -> None:
    backend.add("gcp-sandbox-pr5", tags={"mlops-stack:environment": "prod"})
    with pytest.raises(NotASandboxError):
        sandbox.up_sandbox(pulumi, "gcp", "pr5", timedelta(hours=2), NOW, PROVIDER, GCP_CONFIG)
    assert backend.stacks["gcp-sandbox-pr5"].tags["mlops-stack:environment"] == "prod"
    assert not [call for call in backend.calls if call[0] in ("config set", "tag set", "up")]


def test_up_without_a_secrets_provider_for_a_new_stack_says_how_to_fix_it(
    backend: FakeBackend, pulumi: FakePulumi
) -> None:
    with pytest.raises(SandboxError, match="PULUMI_SECRETS_PROVIDER"):
        sandbox.up_sandbox(pulumi, "gcp", "pr5", timedelta(hours=2), NOW, None, GCP_CONFIG)
    assert backend.stacks == {}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--id", "PR_1"], "invalid sandbox id"),
        (["--id", "pr1", "--ttl", "2w"], "invalid TTL"),
        (["--id", "pr1", "--ttl", "15d"], "maximum of 14d"),
        (["--id", "pr1", "--config", "novalue"], "KEY=VALUE"),
        (["--id", "pr1", "--config", "environment=prod"], "set by this script"),
    ],
)
def test_up_rejects_bad_input_with_a_clear_message(
    backend: FakeBackend,
    pulumi: FakePulumi,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    code = sandbox.main(
        ["up", "--cloud", "gcp", "--secrets-provider", PROVIDER, *argv], pulumi=pulumi, now=NOW
    )
    assert code == 2
    assert message in capsys.readouterr().err
    assert backend.stacks == {}


# --- a whole lifecycle, each step on another runner -------------------------------------------------


def test_created_in_one_checkout_updated_destroyed_and_swept_from_others(
    backend: FakeBackend, tmp_path: Path
) -> None:
    first = FakePulumi(backend, tmp_path / "run-1", environ=FALLBACK)
    stack, _ = sandbox.up_sandbox(first, "gcp", "pr7", timedelta(hours=48), NOW, PROVIDER, GCP_CONFIG)
    sandbox.up_sandbox(first, "gcp", "pr8", timedelta(hours=1), NOW, PROVIDER, GCP_CONFIG)

    # A push to the PR: a new runner, a fresh checkout without the stack file. It finds the sandbox by its
    # tags, takes the secrets provider from the state, and renews the expiry.
    second = FakePulumi(backend, tmp_path / "run-2", environ=FALLBACK)
    assert not second.stack_file(stack).exists()
    later = NOW + timedelta(hours=1)
    sandbox.up_sandbox(second, "gcp", "pr7", timedelta(hours=48), later, None, GCP_CONFIG)
    assert backend.stacks[stack].tags["mlops-stack:expires-at"] == "2026-11-25T13:00:00Z"
    assert yaml.safe_load(second.stack_file(stack).read_text())["secretsprovider"] == PROVIDER
    assert ("stack init", stack) not in backend.calls[2:]

    # The nightly sweep, on a third runner: pr8 expired, pr7 was renewed.
    third = FakePulumi(backend, tmp_path / "run-3", environ=FALLBACK)
    report = sandbox.sweep(third, NOW + timedelta(hours=3), GCP_CONFIG)
    assert (report.destroyed, report.failed) == (["gcp-sandbox-pr8"], {})
    assert report.kept[stack] == "expires 2026-11-25T13:00:00Z"

    # The PR closes: a fourth runner destroys it.
    fourth = FakePulumi(backend, tmp_path / "run-4", environ=FALLBACK)
    assert sandbox.destroy_sandbox(fourth, stack, GCP_CONFIG) is True
    assert backend.stacks == {}


def test_without_the_fallback_a_fresh_checkout_cannot_decrypt_and_says_so(
    backend: FakeBackend, tmp_path: Path
) -> None:
    """Why sandbox.yml sets PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER: Pulumi's passphrase default."""
    first = FakePulumi(backend, tmp_path / "run-1", environ=FALLBACK)
    stack, _ = sandbox.up_sandbox(first, "gcp", "pr7", timedelta(hours=1), NOW, PROVIDER, GCP_CONFIG)
    bare = FakePulumi(backend, tmp_path / "run-2", environ={})
    with pytest.raises(PulumiError, match="passphrase must be set"):
        sandbox.destroy_sandbox(bare, stack, GCP_CONFIG)
    assert backend.stacks[stack].has_resources


# --- sweep ------------------------------------------------------------------------------------------


def test_sweep_destroys_only_expired_sandboxes(
    backend: FakeBackend, pulumi: FakePulumi, capsys: pytest.CaptureFixture[str]
) -> None:
    backend.add("gcp-sandbox-old", tags=sandbox_tags("gcp", PAST))
    backend.add("aws-sandbox-old", tags=sandbox_tags("aws", "2026-11-23T13:00:00+02:00"))  # 11:00 UTC: past
    backend.add("gcp-sandbox-fresh", tags=sandbox_tags("gcp", FUTURE))
    # Not sandboxes by name, tags, or both, although everything else about them says expired:
    backend.add("gcp-prod", tags=sandbox_tags("gcp", PAST))
    backend.add("gcp-sandbox-liar", tags={**sandbox_tags("gcp", PAST), "mlops-stack:environment": "prod"})
    backend.add("aws-staging", tags={"mlops-stack:environment": "staging"})
    backend.add("azure-sandbox-nottl", tags=sandbox_tags("azure", None))

    assert sandbox.main(["sweep"], pulumi=pulumi, now=NOW) == 0
    assert sorted(destroyed(backend)) == ["aws-sandbox-old", "gcp-sandbox-old"]
    assert set(backend.stacks) == {
        "gcp-sandbox-fresh",
        "gcp-prod",
        "gcp-sandbox-liar",
        "aws-staging",
        "azure-sandbox-nottl",
    }
    assert all(found.has_resources for found in backend.stacks.values())
    assert "mlops-stack:expires-at" in capsys.readouterr().out


def test_sweep_skips_a_sandbox_another_run_is_updating(backend: FakeBackend, pulumi: FakePulumi) -> None:
    backend.add("gcp-sandbox-busy", tags=sandbox_tags())
    backend.add("gcp-sandbox-old", tags=sandbox_tags())
    backend.stacks["gcp-sandbox-busy"].locked_by = "sandbox.yml run 42"
    report = sandbox.sweep(pulumi, NOW)
    assert report.destroyed == ["gcp-sandbox-old"]
    assert report.kept["gcp-sandbox-busy"].startswith("in use, skipped")
    assert report.failed == {}


def test_sweep_goes_on_after_a_failed_destroy_and_fails_at_the_end(
    backend: FakeBackend, pulumi: FakePulumi
) -> None:
    backend.add("gcp-sandbox-stuck", tags=sandbox_tags())
    backend.add("gcp-sandbox-old", tags=sandbox_tags())
    backend.failing_destroys.add("gcp-sandbox-stuck")
    report = sandbox.sweep(pulumi, NOW)
    assert report.destroyed == ["gcp-sandbox-old"]
    assert "resource still in use" in report.failed["gcp-sandbox-stuck"]
    assert sandbox.main(["sweep"], pulumi=pulumi, now=NOW) == 1


def test_sweep_reports_an_unreadable_expiry_instead_of_guessing(
    backend: FakeBackend, pulumi: FakePulumi
) -> None:
    backend.add("gcp-sandbox-bad", tags=sandbox_tags("gcp", "tomorrow"))
    report = sandbox.sweep(pulumi, NOW)
    assert report.destroyed == []
    assert "invalid timestamp" in report.failed["gcp-sandbox-bad"]
