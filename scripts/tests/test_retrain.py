"""Retraining against a real tracking server: train, gate, and the stack-file pin a pull request carries."""

import shutil
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from scripts.promote import CHAMPION_ALIAS, version_by_alias
from scripts.retrain import main, retrain, set_config_values
from scripts.tests.sizes import STRONG, WEAK
from testing.mlflow_server import MlflowServer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the repository's real stack files, for retraining to edit."""
    (tmp_path / "stacks").mkdir()
    for stack in ("gcp-dev", "gcp-prod"):
        shutil.copy(REPO / "stacks" / f"Pulumi.{stack}.yaml", tmp_path / "stacks")
    return tmp_path


def comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith("#")]


def test_set_config_values_replaces_the_commented_example_and_keeps_every_other_line() -> None:
    original = (REPO / "stacks" / "Pulumi.gcp-dev.yaml").read_text()
    pin = {
        "mlops-stack:modelVersion": "12",
        "mlops-stack:modelSource": "gs://b/mlflow/1/models/m-1/artifacts",
    }

    edited = set_config_values(original, pin)

    config = yaml.safe_load(edited)["config"]
    assert config["mlops-stack:modelVersion"] == "12"  # a string, as the program reads it
    assert config["mlops-stack:modelSource"] == pin["mlops-stack:modelSource"]
    old_config = yaml.safe_load(original)["config"]
    assert {key: config[key] for key in old_config} == old_config
    # Only the two example lines changed: every other comment is still there.
    assert set(comments(original)) - set(comments(edited)) == {
        line for line in original.splitlines() if "# mlops-stack:model" in line
    }
    # Set again: replaced in place, nothing added.
    again = set_config_values(edited, {"mlops-stack:modelVersion": "13"})
    assert yaml.safe_load(again)["config"]["mlops-stack:modelVersion"] == "13"
    assert len(again.splitlines()) == len(edited.splitlines())


def test_set_config_values_adds_a_key_the_file_does_not_mention() -> None:
    edited = set_config_values(
        "# a stack\nconfig:\n  mlops-stack:cloud: aws\n", {"mlops-stack:modelVersion": "1"}
    )
    assert edited == '# a stack\nconfig:\n  mlops-stack:cloud: aws\n  mlops-stack:modelVersion: "1"\n'


@pytest.mark.slow
def test_a_winning_challenger_is_pinned_and_a_losing_one_changes_nothing(
    mlflow_client_env: MlflowServer, model_name: str, checkout: Path
) -> None:
    client = MlflowClient()
    destination = "gs://bucket/mlflow"
    body = checkout / "body.md"
    first = retrain(
        client, checkout, ["gcp-dev"], body, model_name=model_name, artifacts_destination=destination, **WEAK
    )
    assert first.decision.promoted
    assert "(no champion before)" in body.read_text()
    weak_version = first.challenger_version

    second = retrain(
        client,
        checkout,
        ["gcp-dev", "gcp-prod"],
        body,
        model_name=model_name,
        artifacts_destination=destination,
        **STRONG,
    )

    version = second.challenger_version
    assert second.decision.promoted
    assert version_by_alias(client, model_name, CHAMPION_ALIAS) == version
    for stack in ("gcp-dev", "gcp-prod"):
        config = yaml.safe_load((checkout / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
        assert config["mlops-stack:modelVersion"] == version
        source = config["mlops-stack:modelSource"]
        assert source.startswith(f"{destination}/")
        assert source.endswith("/artifacts")
    requirements = checkout / "stacks" / "models" / model_name / version / "requirements.txt"
    assert "scikit-learn" in requirements.read_text()
    assert set(second.changed_files) == {
        requirements,
        checkout / "stacks" / "Pulumi.gcp-dev.yaml",
        checkout / "stacks" / "Pulumi.gcp-prod.yaml",
    }
    text = body.read_text()
    assert f"v{weak_version} (previous champion)" in text
    assert f"v{version} (challenger)" in text
    # The gate's metric comes first, then the other logged one, with both runs' values.
    mae_row, r2_row = (line for line in text.splitlines() if line.startswith("| ") and "metric" not in line)
    assert mae_row.startswith("| **mae** (gate, lower is better) |")
    assert r2_row.startswith("| r2 |")

    before = {path: path.read_bytes() for path in checkout.rglob("*") if path.is_file()}
    third = retrain(
        client, checkout, ["gcp-dev"], body, model_name=model_name, artifacts_destination=destination, **WEAK
    )
    assert not third.decision.promoted
    assert third.decision.reason.startswith("challenger does not beat the champion")
    assert third.changed_files == ()
    assert {path: path.read_bytes() for path in checkout.rglob("*") if path.is_file()} == before


@pytest.mark.slow
def test_cli_refuses_an_unknown_stack_before_training(
    mlflow_client_env: MlflowServer, model_name: str, checkout: Path
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "--stack",
                "gcp-staging",
                "--artifacts-destination",
                "gs://b",
                "--pr-body",
                str(checkout / "b.md"),
                "--work-dir",
                str(checkout),
                "--model-name",
                model_name,
            ]
        )
    assert "no such stack file" in str(exit_info.value.code)
    assert version_by_alias(MlflowClient(), model_name, "challenger") is None
