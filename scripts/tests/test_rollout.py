"""scripts/rollout.py against the fake Pulumi: config (the model pin) in the checkout's stack file, outputs
(the recorded rollout) in the backend, and the program's rollout plan (infra/rollout.py) run on each `up`."""

import shutil
from pathlib import Path

import pytest
import yaml

from infra.rollout import RolloutState
from scripts import rollout
from testing.fake_pulumi import FakeBackend, FakePulumi
from testing.pulumi_program import stack_config

STACK = "gcp-prod"
SOURCE = "gs://acme-ml-gcp-prod-mlflow/mlflow/1/models/m-{}/artifacts"


def image(version: int) -> str:
    return f"registry.example/model-api@sha256:{version:064x}"


def pin(version: int) -> dict[str, str]:
    """A model version and a prebuilt image for it (`apiImage`), as a stack that pins its images has them."""
    return {
        "mlops-stack:modelVersion": str(version),
        "mlops-stack:modelSource": SOURCE.format(version),
        "mlops-stack:apiImage": image(version),
    }


def checkout(backend: FakeBackend, where: Path) -> FakePulumi:
    return FakePulumi(backend, where, environ={})


def deploy(pulumi: FakePulumi, **config: str) -> None:
    """What a push to main does: the stack file says what to pin, the deploy workflow runs up."""
    for key, value in config.items():
        pulumi.set_config(STACK, key, value)
    pulumi.up(STACK)


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def pulumi(backend: FakeBackend, tmp_path: Path) -> FakePulumi:
    """A checkout whose prod stack has served v1 and now runs a 10% canary of v2."""
    cli = checkout(backend, tmp_path / "checkout")
    cli.init_stack(STACK, "gcpkms://projects/acme-ml/locations/global/keyRings/state/cryptoKeys/prod")
    location = {"gcp:project": "acme-ml", "gcp:region": "europe-west1"}
    base = stack_config("gcp", "prod", location, "acme-ml/mlops-stack")
    deploy(cli, **base, **pin(1), **{"mlops-stack:canaryPercent": "10"})
    deploy(cli, **pin(2))
    return cli


def stack_file(pulumi: FakePulumi) -> dict[str, object]:
    return dict(yaml.safe_load(pulumi.stack_file(STACK).read_text())["config"])


def test_a_new_version_is_deployed_as_a_canary_next_to_the_previous_one(pulumi: FakePulumi) -> None:
    state = rollout.read_rollout(pulumi, STACK)
    assert (state.state, state.current.model_version, state.current_percent) == (RolloutState.CANARY, "2", 10)
    assert state.previous is not None
    assert state.previous.model_version == "1"
    assert state.bake_minutes == 15  # prod's default


def test_rollback_re_pins_the_previous_version_in_the_stack_file_and_deploys_it(
    pulumi: FakePulumi, backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    backend.calls.clear()
    after = rollout.rollback(pulumi, STACK)
    assert stack_file(pulumi)["mlops-stack:modelVersion"] == "1"
    assert stack_file(pulumi)["mlops-stack:modelSource"] == SOURCE.format(1)
    assert stack_file(pulumi)["mlops-stack:apiImage"] == image(1)  # the stack pins images: the image too
    assert ("up", STACK) in backend.calls
    assert after.state is RolloutState.ROLLED_BACK
    assert (after.current.model_version, after.current_percent) == ("1", 100)
    assert after.previous is not None
    assert after.previous.model_version == "2"
    said = capsys.readouterr().out
    assert f"{STACK}: rolled back from model v2" in said
    assert "to model v1" in said
    assert "now pins v1 (modelVersion, modelSource, apiImage)" in said
    assert f"commit stacks/Pulumi.{STACK}.yaml, or the next deploy from the repository pins v2 again" in said


def test_rollback_refuses_when_no_previous_version_is_recorded(backend: FakeBackend, tmp_path: Path) -> None:
    cli = checkout(backend, tmp_path / "fresh")
    cli.init_stack(STACK, "gcpkms://k")
    location = {"gcp:project": "acme-ml", "gcp:region": "europe-west1"}
    deploy(cli, **stack_config("gcp", "prod", location, "acme-ml/mlops-stack"), **pin(1))
    backend.calls.clear()
    with pytest.raises(
        rollout.RolloutError, match=r"records no revision before model v1.*nothing to roll back"
    ):
        rollout.rollback(cli, STACK)
    assert ("up", STACK) not in backend.calls
    assert stack_file(cli)["mlops-stack:modelVersion"] == "1"


def test_rollback_refuses_a_stack_without_a_model_api(backend: FakeBackend, tmp_path: Path) -> None:
    cli = checkout(backend, tmp_path / "empty")
    cli.init_stack(STACK, "gcpkms://k")
    location = {"gcp:project": "acme-ml", "gcp:region": "europe-west1"}
    deploy(cli, **stack_config("gcp", "prod", location, "acme-ml/mlops-stack"))
    with pytest.raises(rollout.RolloutError, match="has no apiRollout output"):
        rollout.rollback(cli, STACK)


def test_a_second_rollback_refuses_to_redeploy_the_version_it_rolled_back_from(pulumi: FakePulumi) -> None:
    rollout.rollback(pulumi, STACK)
    with pytest.raises(rollout.RolloutError, match=r"already rolled back.*redeploy v2"):
        rollout.rollback(pulumi, STACK)
    assert stack_file(pulumi)["mlops-stack:modelVersion"] == "1"


def test_rollback_works_from_another_checkout_because_the_record_is_in_the_backend(
    pulumi: FakePulumi, backend: FakeBackend, tmp_path: Path
) -> None:
    """A workflow's checkout has the committed stack file but never ran the earlier ups."""
    other = checkout(backend, tmp_path / "ci")
    other.stack_file(STACK).parent.mkdir(parents=True)
    shutil.copy(pulumi.stack_file(STACK), other.stack_file(STACK))
    rollout.rollback(other, STACK)
    assert stack_file(other)["mlops-stack:modelVersion"] == "1"
    assert stack_file(pulumi)["mlops-stack:modelVersion"] == "2"  # the first checkout's file is its own
    assert rollout.read_rollout(pulumi, STACK).current.model_version == "1"  # the backend is shared


def test_rollback_refuses_when_this_checkout_pins_something_not_deployed(pulumi: FakePulumi) -> None:
    for key, value in pin(3).items():
        pulumi.set_config(STACK, key, value)
    with pytest.raises(rollout.RolloutError, match=r"this checkout pins model v3 .* serves v2"):
        rollout.rollback(pulumi, STACK)


def test_promote_gives_the_canary_all_traffic_and_leaves_no_promote_key(
    pulumi: FakePulumi, backend: FakeBackend
) -> None:
    backend.calls.clear()
    after = rollout.promote(pulumi, STACK)
    assert (after.state, after.current.model_version, after.current_percent) == (
        RolloutState.PROMOTED,
        "2",
        100,
    )
    assert backend.calls[:2] == [("config set", f"{STACK} mlops-stack:rolloutPromote=true"), ("up", STACK)]
    assert "mlops-stack:rolloutPromote" not in stack_file(pulumi)
    # The next deploy (no promote key) keeps it promoted.
    pulumi.up(STACK)
    assert rollout.read_rollout(pulumi, STACK).state is RolloutState.PROMOTED
    with pytest.raises(rollout.RolloutError, match="already has all traffic"):
        rollout.promote(pulumi, STACK)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Watch:
    def __init__(self, problems_at: dict[int, str] | None = None) -> None:
        self.rounds = 0
        self.problems_at = problems_at or {}

    def problems(self) -> list[str]:
        self.rounds += 1
        return [self.problems_at[self.rounds]] if self.rounds in self.problems_at else []


def test_a_clean_bake_watches_for_the_whole_bake_time_then_promotes(pulumi: FakePulumi) -> None:
    clock, watch = Clock(), Watch()
    assert rollout.bake(pulumi, STACK, [watch], 60, clock=clock, sleep=clock.sleep)
    assert clock.now == 15 * 60
    assert watch.rounds == 16  # at 0, 1, ..., 15 minutes
    assert rollout.read_rollout(pulumi, STACK).state is RolloutState.PROMOTED


def test_a_problem_during_the_bake_rolls_back_at_once(
    pulumi: FakePulumi, capsys: pytest.CaptureFixture[str]
) -> None:
    clock, watch = Clock(), Watch({3: "alert api-5xx-rate is firing"})
    assert not rollout.bake(pulumi, STACK, [watch], 60, clock=clock, sleep=clock.sleep)
    assert clock.now == 2 * 60
    state = rollout.read_rollout(pulumi, STACK)
    assert (state.state, state.current.model_version) == (RolloutState.ROLLED_BACK, "1")
    assert "problem: alert api-5xx-rate is firing" in capsys.readouterr().out


def test_bake_has_nothing_to_do_once_promoted(pulumi: FakePulumi, backend: FakeBackend) -> None:
    rollout.promote(pulumi, STACK)
    backend.calls.clear()
    watch = Watch()
    assert rollout.bake(pulumi, STACK, [watch], 60, sleep=lambda _: None)
    assert watch.rounds == 0
    assert ("up", STACK) not in backend.calls


def test_the_command_line_reports_a_refusal_and_fails(
    backend: FakeBackend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = checkout(backend, tmp_path / "fresh")
    cli.init_stack(STACK, "gcpkms://k")
    location = {"gcp:project": "acme-ml", "gcp:region": "europe-west1"}
    deploy(cli, **stack_config("gcp", "prod", location, "acme-ml/mlops-stack"), **pin(1))
    assert rollout.main(["rollback", "--stack", STACK], pulumi=cli) == 1
    assert (
        "rollout rollback failed: stack gcp-prod records no revision before model v1"
        in capsys.readouterr().err
    )
    assert rollout.main(["status", "--stack", STACK], pulumi=cli) == 0
    assert "gcp-prod: promoted: model v1" in capsys.readouterr().out


def test_the_workflows_rollback_after_a_failed_smoke_test_leaves_a_promoted_revision_alone(
    pulumi: FakePulumi, backend: FakeBackend
) -> None:
    rollout.promote(pulumi, STACK)
    backend.calls.clear()
    assert rollout.main(["rollback", "--stack", STACK, "--only-while-baking"], pulumi=pulumi) == 0
    assert ("up", STACK) not in backend.calls
    assert stack_file(pulumi)["mlops-stack:modelVersion"] == "2"


def test_the_workflows_rollback_after_a_failed_smoke_test_rolls_back_a_canary(pulumi: FakePulumi) -> None:
    assert rollout.main(["rollback", "--stack", STACK, "--only-while-baking"], pulumi=pulumi) == 0
    assert rollout.read_rollout(pulumi, STACK).current.model_version == "1"


def test_the_bake_smoke_tests_the_canary_on_its_own_url_too(pulumi: FakePulumi) -> None:
    targets = rollout.smoke_targets(pulumi, STACK)
    assert {name: target.api_url for name, target in targets.items()} == {
        "API": f"https://{STACK}-api.example",
        "canary": f"https://canary---{STACK}-api.example",
    }
    assert targets["canary"].api_key == targets["API"].api_key
    rollout.promote(pulumi, STACK)
    assert list(rollout.smoke_targets(pulumi, STACK)) == ["API"]
