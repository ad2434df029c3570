"""Promotion against a real tracking server: who gets `champion`, and the reason given."""

import os
import subprocess
import sys
from pathlib import Path

import mlflow.pyfunc
import pytest
from mlflow.tracking import MlflowClient

from scripts.promote import (
    CHAMPION_ALIAS,
    PromotionError,
    champion_pin,
    main,
    promote,
    save_requirements,
    version_by_alias,
)
from scripts.tests.sizes import STRONG, WEAK
from scripts.train import train_and_register
from service.image_build.environment import parse
from testing.mlflow_server import MlflowServer

pytestmark = pytest.mark.slow

PROMOTE_CLI = [sys.executable, "-m", "scripts.promote"]


def test_the_first_challenger_becomes_champion_unopposed(
    mlflow_client_env: MlflowServer, model_name: str
) -> None:
    first = train_and_register(model_name=model_name, **WEAK)
    client = MlflowClient()

    decision = promote(client, model_name)

    assert decision.promoted
    assert decision.champion_version == first.version
    assert "no @champion yet" in decision.reason
    assert version_by_alias(client, model_name, CHAMPION_ALIAS) == first.version

    again = promote(client, model_name)
    assert not again.promoted
    assert "already @champion" in again.reason


def test_a_better_challenger_is_promoted_and_a_worse_one_is_not(
    mlflow_client_env: MlflowServer, model_name: str
) -> None:
    client = MlflowClient()
    weak = train_and_register(model_name=model_name, **WEAK)
    promote(client, model_name)
    strong = train_and_register(model_name=model_name, **STRONG)
    assert strong.metrics["mae"] < weak.metrics["mae"]

    better = promote(client, model_name)

    assert better.promoted
    assert better.champion_version == strong.version
    assert f"challenger v{strong.version}={strong.metrics['mae']:.4f}" in better.reason
    assert f"champion v{weak.version}={weak.metrics['mae']:.4f}" in better.reason
    assert "lower is better" in better.reason

    worse_version = train_and_register(model_name=model_name, **WEAK).version
    worse = promote(client, model_name)

    assert not worse.promoted
    assert worse.reason.startswith("challenger does not beat the champion")
    assert f"challenger v{worse_version}" in worse.reason
    assert version_by_alias(client, model_name, CHAMPION_ALIAS) == strong.version


def test_the_metric_and_its_direction_are_configurable(
    mlflow_client_env: MlflowServer, model_name: str
) -> None:
    client = MlflowClient()
    weak = train_and_register(model_name=model_name, **WEAK)
    promote(client, model_name)
    strong = train_and_register(model_name=model_name, **STRONG)
    assert strong.metrics["r2"] > weak.metrics["r2"]

    # Judged as if a lower r2 were better, the strong model loses: the direction really decides.
    wrong_way = promote(client, model_name, metric="r2", higher_is_better=False)
    assert not wrong_way.promoted
    assert "r2: challenger" in wrong_way.reason
    assert "lower is better" in wrong_way.reason

    right_way = promote(client, model_name, metric="r2", higher_is_better=True)
    assert right_way.promoted
    assert right_way.champion_version == strong.version
    assert "higher is better" in right_way.reason


def test_a_metric_the_run_did_not_log_is_an_error_naming_the_logged_ones(
    mlflow_client_env: MlflowServer, model_name: str
) -> None:
    train_and_register(model_name=model_name, **WEAK)
    with pytest.raises(PromotionError, match=r"logged no 'rmse' metric \(logged: mae, r2\)"):
        promote(MlflowClient(), model_name, metric="rmse")


def test_no_challenger_is_an_error(mlflow_client_env: MlflowServer, model_name: str) -> None:
    with pytest.raises(PromotionError, match="has no @challenger version: train one first"):
        promote(MlflowClient(), model_name)


def test_cli_promotes_then_prints_a_pin_that_points_at_the_model_files(
    mlflow_client_env: MlflowServer, model_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    mlflow_server = mlflow_client_env
    version = train_and_register(model_name=model_name, **WEAK).version
    capsys.readouterr()  # MLflow's own "View run ..." lines from training

    main(["--model-name", model_name])
    assert capsys.readouterr().out.startswith(f"{model_name}: promoted: no @champion yet")

    destination = mlflow_server.artifacts_dir.as_uri()
    # A real `python -m` run, as a deploy workflow would call it.
    pinned = subprocess.run(
        [*PROMOTE_CLI, "--print-pin", "--artifacts-destination", destination, "--model-name", model_name],
        env={**os.environ, **mlflow_server.client_env()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert pinned.returncode == 0, pinned.stderr
    lines = dict(line.split("=", 1) for line in pinned.stdout.splitlines())
    assert lines["modelVersion"] == version
    source = lines["modelSource"]
    assert source.startswith(destination)
    # The pin is usable without the tracking server: the model's files are right there.
    assert (Path(source.removeprefix("file://")) / "MLmodel").is_file()
    assert champion_pin(MlflowClient(), model_name).source.startswith("mlflow-artifacts:/")


def test_cli_without_a_challenger_fails_with_the_reason(
    mlflow_client_env: MlflowServer, model_name: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--model-name", model_name])
    assert f"promotion failed: model '{model_name}' has no @challenger version" in str(exit_info.value.code)


def test_the_champions_logged_requirements_are_saved_for_its_image(
    mlflow_client_env: MlflowServer, model_name: str, tmp_path: Path
) -> None:
    """What `--save-requirements` writes is the version's own requirements.txt, which the API image build
    (service/image_build/environment.py) takes as it is."""
    version = train_and_register(model_name=model_name, **WEAK).version
    saved = save_requirements(model_name, version, tmp_path / model_name / version)
    assert saved == tmp_path / model_name / version / "requirements.txt"
    logged = mlflow.pyfunc.get_model_dependencies(f"models:/{model_name}/{version}")
    assert saved.read_text() == Path(logged).read_text()
    names = {requirement.name for requirement in parse(saved.read_text(), str(saved))}
    assert {"mlflow", "scikit-learn", "skops"} <= names


def test_save_requirements_goes_with_print_pin(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--save-requirements"])
    assert "--save-requirements and --artifacts-destination go with --print-pin" in capsys.readouterr().err
