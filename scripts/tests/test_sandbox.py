"""Sandbox lifecycle against an in-memory Pulumi backend: the guard, up, destroy and the sweep."""

from datetime import UTC, datetime, timedelta

import pytest

from scripts import sandbox
from scripts.sandbox import NotASandboxError, SandboxError
from scripts.tests.fake_pulumi import FakePulumi

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PAST = "2026-11-23T11:59:59Z"
FUTURE = "2026-11-23T12:00:01Z"


def sandbox_config(cloud: str = "gcp", expires: str = PAST) -> dict[str, str]:
    return {
        "mlops-stack:cloud": cloud,
        "mlops-stack:environment": "sandbox",
        "mlops-stack:sandboxExpiresAt": expires,
    }


@pytest.fixture
def pulumi() -> FakePulumi:
    return FakePulumi()


def destroyed(pulumi: FakePulumi) -> list[str]:
    return [stack for call, stack in pulumi.calls if call == "destroy"]


# --- the guard -------------------------------------------------------------------------------------


def test_guard_accepts_a_sandbox_by_name_and_config(pulumi: FakePulumi) -> None:
    pulumi.add("aws-sandbox-pr7", sandbox_config("aws"))
    sandbox.ensure_sandbox(pulumi, "aws-sandbox-pr7")


@pytest.mark.parametrize(
    "name", ["gcp-dev", "gcp-prod", "sandbox-gcp-1", "gcp-sandbox-", "gcp-sandboxpr1", "x-sandbox-1"]
)
def test_guard_refuses_a_non_sandbox_name_even_with_sandbox_config(pulumi: FakePulumi, name: str) -> None:
    pulumi.add(name, sandbox_config())
    with pytest.raises(NotASandboxError, match="name is not"):
        sandbox.ensure_sandbox(pulumi, name)


@pytest.mark.parametrize("environment", ["prod", "dev", "staging", None])
def test_guard_refuses_a_sandbox_name_whose_config_is_not_sandbox(
    pulumi: FakePulumi, environment: str | None
) -> None:
    config = sandbox_config()
    if environment is None:
        del config["mlops-stack:environment"]
    else:
        config["mlops-stack:environment"] = environment
    pulumi.add("gcp-sandbox-pr1", config)
    with pytest.raises(NotASandboxError, match="config says"):
        sandbox.ensure_sandbox(pulumi, "gcp-sandbox-pr1")


def test_guard_refuses_when_config_cloud_contradicts_the_name(pulumi: FakePulumi) -> None:
    pulumi.add("gcp-sandbox-pr1", sandbox_config("aws"))
    with pytest.raises(NotASandboxError, match="name says gcp"):
        sandbox.ensure_sandbox(pulumi, "gcp-sandbox-pr1")


def test_guard_reads_the_short_name_of_a_fully_qualified_stack(pulumi: FakePulumi) -> None:
    pulumi.add("organization/mlops-stack/azure-sandbox-a1", sandbox_config("azure"))
    sandbox.ensure_sandbox(pulumi, "organization/mlops-stack/azure-sandbox-a1")
    pulumi.add("organization/mlops-stack/azure-prod", sandbox_config("azure"))
    with pytest.raises(NotASandboxError):
        sandbox.ensure_sandbox(pulumi, "organization/mlops-stack/azure-prod")


# --- destroy ----------------------------------------------------------------------------------------


def test_destroy_removes_a_sandbox_and_its_stack(pulumi: FakePulumi) -> None:
    pulumi.add("gcp-sandbox-pr3", sandbox_config())
    assert sandbox.main(["destroy", "--stack", "gcp-sandbox-pr3"], pulumi=pulumi, now=NOW) == 0
    assert "gcp-sandbox-pr3" not in pulumi.stacks
    assert destroyed(pulumi) == ["gcp-sandbox-pr3"]


def test_destroy_of_a_prod_stack_is_refused_and_touches_nothing(
    pulumi: FakePulumi, capsys: pytest.CaptureFixture[str]
) -> None:
    pulumi.add("gcp-prod", {"mlops-stack:environment": "prod"})
    assert sandbox.main(["destroy", "--stack", "gcp-prod"], pulumi=pulumi, now=NOW) == 2
    assert "refusing to touch 'gcp-prod'" in capsys.readouterr().err
    assert destroyed(pulumi) == []
    assert pulumi.stacks["gcp-prod"].deployed


def test_destroy_of_a_missing_stack_is_a_no_op(
    pulumi: FakePulumi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sandbox.main(["destroy", "--stack", "aws-sandbox-pr9"], pulumi=pulumi, now=NOW) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert destroyed(pulumi) == []


# --- up -----------------------------------------------------------------------------------------------


def test_up_creates_a_sandbox_with_ttl_and_extra_config_and_writes_the_comment(
    pulumi: FakePulumi, tmp_path
) -> None:
    comment = tmp_path / "comment.md"
    argv = [
        "up",
        "--cloud",
        "aws",
        "--id",
        "pr12",
        "--ttl",
        "36h",
        "--secrets-provider",
        "awskms://alias/s?region=x",
    ]
    argv += ["--config", "aws:region=eu-west-1", "--config", "githubRepository=acme/ml"]
    argv += ["--comment-file", str(comment)]
    pulumi_outputs = {"apiUrl": "https://api.example", "trackingUri": "https://mlflow.example"}
    original_up = pulumi.up

    def up_with_outputs(stack: str) -> None:
        original_up(stack)
        pulumi.stacks[stack].outputs = dict(pulumi_outputs, apiKey="s3cr3t")

    pulumi.up = up_with_outputs  # type: ignore[method-assign]
    assert sandbox.main(argv, pulumi=pulumi, now=NOW) == 0
    stack = pulumi.stacks["aws-sandbox-pr12"]
    assert stack.secrets_provider == "awskms://alias/s?region=x"
    assert stack.config == {
        "mlops-stack:cloud": "aws",
        "mlops-stack:environment": "sandbox",
        "mlops-stack:sandboxExpiresAt": "2026-11-25T00:00:00Z",
        "aws:region": "eu-west-1",
        "mlops-stack:githubRepository": "acme/ml",
    }
    text = comment.read_text()
    for expected in ("https://api.example", "https://mlflow.example", "2026-11-25T00:00:00Z"):
        assert expected in text
    assert "s3cr3t" not in text


def test_up_again_extends_the_ttl_without_reinitialising(pulumi: FakePulumi) -> None:
    pulumi.add("gcp-sandbox-pr5", sandbox_config("gcp", PAST))
    stack, _ = sandbox.up_sandbox(pulumi, "gcp", "pr5", timedelta(hours=2), NOW, None, {})
    assert pulumi.stacks[stack].config["mlops-stack:sandboxExpiresAt"] == "2026-11-23T14:00:00Z"
    assert ("stack init", stack) not in pulumi.calls


def test_up_refuses_to_turn_an_existing_non_sandbox_stack_into_one(pulumi: FakePulumi) -> None:
    pulumi.add("gcp-sandbox-pr5", {"mlops-stack:environment": "prod"})
    with pytest.raises(NotASandboxError):
        sandbox.up_sandbox(pulumi, "gcp", "pr5", timedelta(hours=2), NOW, "gcpkms://k", {})
    assert pulumi.stacks["gcp-sandbox-pr5"].config == {"mlops-stack:environment": "prod"}
    assert not [call for call in pulumi.calls if call[0] in ("config set", "up")]


def test_up_without_a_secrets_provider_for_a_new_stack_says_how_to_fix_it(pulumi: FakePulumi) -> None:
    with pytest.raises(SandboxError, match="PULUMI_SECRETS_PROVIDER"):
        sandbox.up_sandbox(pulumi, "gcp", "pr5", timedelta(hours=2), NOW, None, {})
    assert pulumi.stacks == {}


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
    pulumi: FakePulumi, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code = sandbox.main(
        ["up", "--cloud", "gcp", "--secrets-provider", "gcpkms://k", *argv], pulumi=pulumi, now=NOW
    )
    assert code == 2
    assert message in capsys.readouterr().err
    assert pulumi.stacks == {}


# --- sweep ------------------------------------------------------------------------------------------


def test_sweep_destroys_only_expired_sandboxes(
    pulumi: FakePulumi, capsys: pytest.CaptureFixture[str]
) -> None:
    pulumi.add("gcp-sandbox-old", sandbox_config("gcp", PAST))
    pulumi.add("aws-sandbox-old", sandbox_config("aws", "2026-11-23T13:00:00+02:00"))  # 11:00 UTC: past
    pulumi.add("gcp-sandbox-fresh", sandbox_config("gcp", FUTURE))
    # Not sandboxes by name, config, or both, although everything else about them says expired:
    pulumi.add("gcp-prod", sandbox_config("gcp", PAST))
    pulumi.add("gcp-sandbox-liar", {**sandbox_config("gcp", PAST), "mlops-stack:environment": "prod"})
    pulumi.add("aws-staging", {"mlops-stack:environment": "staging"})
    pulumi.add("azure-sandbox-nottl", {"mlops-stack:environment": "sandbox"})

    assert sandbox.main(["sweep"], pulumi=pulumi, now=NOW) == 0
    assert sorted(destroyed(pulumi)) == ["aws-sandbox-old", "gcp-sandbox-old"]
    assert set(pulumi.stacks) == {
        "gcp-sandbox-fresh",
        "gcp-prod",
        "gcp-sandbox-liar",
        "aws-staging",
        "azure-sandbox-nottl",
    }
    assert all(pulumi.stacks[name].deployed for name in pulumi.stacks)
    assert "sandboxExpiresAt" in capsys.readouterr().out


def test_sweep_goes_on_after_a_failed_destroy_and_fails_at_the_end(pulumi: FakePulumi) -> None:
    pulumi.add("gcp-sandbox-stuck", sandbox_config())
    pulumi.add("gcp-sandbox-old", sandbox_config())
    pulumi.failing_destroys.add("gcp-sandbox-stuck")
    report = sandbox.sweep(pulumi, NOW)
    assert report.destroyed == ["gcp-sandbox-old"]
    assert "resource still in use" in report.failed["gcp-sandbox-stuck"]
    assert sandbox.main(["sweep"], pulumi=pulumi, now=NOW) == 1


def test_sweep_reports_an_unreadable_expiry_instead_of_guessing(pulumi: FakePulumi) -> None:
    pulumi.add("gcp-sandbox-bad", sandbox_config("gcp", "tomorrow"))
    report = sandbox.sweep(pulumi, NOW)
    assert report.destroyed == []
    assert "invalid timestamp" in report.failed["gcp-sandbox-bad"]
