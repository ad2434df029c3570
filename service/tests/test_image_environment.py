"""The API image's environment: our serving packages plus the pinned model's own requirements.

`service/image_build/environment.py` is what the Dockerfile runs; here it builds a real environment (uv, from
PyPI or uv's cache) for the example model's logged requirements.txt, and the API serves the model from it:
the join between what MLflow logs with a model and what the image installs.
"""

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import mlflow.pyfunc
import pandas as pd
import pytest

from mlops_stack.example_model import LoggedModel
from service.image_build.environment import (
    UV,
    Requirement,
    RequirementsError,
    compose,
    main,
    parse,
    serving_requirements,
)
from service.tests.api_process import api_process
from testing.model_fixtures import FlavorModel

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


def _requirements(*lines: str) -> list[Requirement]:
    return parse("\n".join(lines), "test")


def test_the_models_pins_win_except_mlflow_which_we_serve_with() -> None:
    serving = _requirements(
        "mlflow-skinny==3.17.2", "numpy==2.4.6 ; python_full_version < '3.12'", "orjson==3.13"
    )
    model = _requirements("mlflow==3.10.0", "NumPy==2.2.0", "scikit_learn==1.9.1  # trained with", "skops")
    environment = compose(serving, model)
    assert environment.requirements == [
        "mlflow-skinny==3.17.2",
        "orjson==3.13",
        "NumPy==2.2.0",
        "scikit_learn==1.9.1",
        "skops",
    ]
    assert environment.notes == [
        "the model names mlflow==3.10.0; it is served with mlflow-skinny==3.17.2",
        "the model's NumPy==2.2.0 replaces our numpy==2.4.6 ; python_full_version < '3.12'",
    ]


def test_a_model_logged_with_our_mlflow_needs_no_note() -> None:
    environment = compose(
        _requirements("mlflow-skinny==3.17.2"), _requirements("mlflow==3.17.2", "xgboost==3.1")
    )
    assert environment.requirements == ["mlflow-skinny==3.17.2", "xgboost==3.1"]
    assert environment.notes == []


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("-r other.txt", "'-r other.txt' is a pip option"),
        ("--extra-index-url https://example.com", "is a pip option"),
        ("==1.0", "does not start with a package name"),
    ],
)
def test_lines_the_build_cannot_install_are_refused_by_line(line: str, problem: str) -> None:
    with pytest.raises(RequirementsError, match="test line 2: ") as raised:
        _requirements("scikit-learn==1.9.1", line)
    assert problem in str(raised.value)


def test_each_cloud_gets_our_serving_pins_and_its_own_storage_client_only() -> None:
    clients = {"gcp": "google-cloud-storage", "aws": "boto3", "azure": "azure-storage-blob"}
    for cloud, client in clients.items():
        names = {requirement.name for requirement in serving_requirements(cloud, REPOSITORY_ROOT)}
        assert {"mlflow-skinny", "fastapi", "uvicorn", "prometheus-client", client} <= names
        assert not names & (set(clients.values()) - {client}), cloud
        assert not names & {"scikit-learn", "skops", "mlflow"}  # a model brings its own


def test_a_bad_requirements_file_stops_the_build_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("mlflow==3.17.2\n-c constraints.txt\n")
    status = main(
        ["--cloud", "gcp", "--model-requirements", str(requirements), "--venv", str(tmp_path / "v")]
    )
    assert status == 2
    assert f"{requirements} line 2: '-c constraints.txt' is a pip option" in capsys.readouterr().err
    assert not (tmp_path / "v").exists()


@dataclass(frozen=True)
class ServedInImage:
    """A model, and the environment the GCP image would get for it, built from its logged requirements."""

    model_path: Path
    rows: pd.DataFrame
    venv: Path


@pytest.fixture(scope="module", params=["scikit-learn", "lightgbm"])
def image_environment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedInImage]:
    """The example forest (scikit-learn + skops) and a LightGBM booster: the second's image has no
    scikit-learn at all, only what its own requirements name."""
    if request.param == "scikit-learn":
        example: LoggedModel = request.getfixturevalue("example_model")
        model_path, rows = Path(example.local_path), example.sample.head(3)
    else:
        booster: FlavorModel = request.getfixturevalue("lightgbm_model")
        model_path, rows = Path(booster.local_path), booster.sample.head(3)
    venv = tmp_path_factory.mktemp("image") / "venv"
    subprocess.run(
        [
            sys.executable,
            "service/image_build/environment.py",
            "--cloud",
            "gcp",
            "--model-requirements",
            str(model_path / "requirements.txt"),
            "--venv",
            str(venv),
        ],
        cwd=REPOSITORY_ROOT,
        check=True,
    )
    yield ServedInImage(model_path, rows, venv)
    shutil.rmtree(venv, ignore_errors=True)


def _installed(venv: Path) -> set[str]:
    listed = subprocess.run(
        [UV, "pip", "list", "--python", str(venv / "bin" / "python"), "--format", "freeze"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {line.split("==")[0].lower() for line in listed.splitlines()}


@pytest.mark.slow
def test_the_image_environment_serves_the_model_as_it_was_logged(
    image_environment: ServedInImage, tmp_path: Path, api_key: str
) -> None:
    served = image_environment
    installed = _installed(served.venv)
    logged = (served.model_path / "requirements.txt").read_text().split()
    for line in logged:
        if not line.startswith("mlflow=="):
            assert line.split("==")[0].lower() in installed, f"the model's {line} is not installed"
    assert "mlflow" not in installed
    assert "mlflow-skinny" in installed
    assert not installed & {"boto3", "azure-storage-blob", "pytest"}  # one cloud's client, no dev tools
    if any(line.startswith("scikit-learn") for line in logged):
        assert "treelite" in installed  # the compiled fast path for its tree ensembles
    else:
        assert "scikit-learn" not in installed  # the image holds what this model needs, not the example's
        assert "treelite" not in installed  # nor a speed-up for models it does not serve (and its scipy)
    with api_process(
        tmp_path,
        python=str(served.venv / "bin" / "python"),
        MODEL_URI=str(served.model_path),
        API_KEY=api_key,
        WORKERS="1",
        PYTHONPATH=str(REPOSITORY_ROOT),
    ) as api:
        api.wait_for("/readyz")
        response = httpx.post(
            f"{api.url}/invocations",
            json={"dataframe_records": served.rows.to_dict(orient="records")},
            headers={"X-API-Key": api_key},
        )
    assert response.status_code == 200, response.text
    expected = mlflow.pyfunc.load_model(str(served.model_path)).predict(served.rows)
    assert response.json()["predictions"] == pytest.approx(list(expected), rel=0, abs=0)
