"""Drift and input quality in the API: the numbers checked against an independent computation from the raw
rows (pandas bins, scipy's KL divergence), the window sliding by rows and by time, and every way a model
can be served: with a reference, without one, with monitoring off, behind an API key."""

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from scipy.stats import entropy

from infra import alerts
from mlops_stack import example_model as example
from service.app import create_app
from service.drift import SMOOTHING, psi
from service.monitoring import DRIFT_EVENT, DriftMonitor, MonitoredModel, WindowSettings
from service.reference_profile import (
    CategoricalReference,
    ProfileError,
    build_reference_profile,
    parse_profile,
    profile_from_model_metadata,
)
from service.served_model import ModelIdentity, ServedModel
from service.settings import Settings
from service.tests.conftest import wait_until_ready
from service.tests.test_metrics import sample
from testing.model_fixtures import LoggedModel

WINDOW = 500  # rows: slices of 50, so requests of 50 rows close one slice each and the window is exact
BATCH = WINDOW // 10


@pytest.fixture(scope="module")
def monitored(settings: Settings) -> Iterator[TestClient]:
    watched = settings.model_copy(
        update={"monitoring_window_rows": WINDOW, "monitoring_min_rows": 100, "max_rows": BATCH}
    )
    with TestClient(create_app(watched), raise_server_exceptions=False) as client:
        yield wait_until_ready(client)


@pytest.fixture(scope="module")
def training() -> example.TrainedModel:
    """The session's example model trained again: same data, same seed, so the same forest and rows."""
    return example.train(n_estimators=10)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {str(k): (None if pd.isna(v) else float(v)) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def send(client: TestClient, frame: pd.DataFrame) -> list[float]:
    """Predict `frame` in requests of BATCH rows; the predictions in order."""
    predictions: list[float] = []
    for start in range(0, len(frame), BATCH):
        response = client.post(
            "/invocations", json={"dataframe_records": records(frame[start : start + BATCH])}
        )
        assert response.status_code == 200, response.text
        predictions += response.json()["predictions"]
    return predictions


def independent_psi(reference: pd.Series, current: pd.Series) -> float:
    """PSI written differently: decile edges from pandas, bins from pd.cut, nulls as a bin of their own,
    Jeffreys smoothing, then PSI as the symmetric KL divergence from scipy."""
    edges = sorted(set(reference.quantile(np.linspace(0.1, 0.9, 9)).tolist()))
    cuts = [-np.inf, *edges, np.inf]

    def counts(values: pd.Series) -> np.ndarray:
        binned = pd.cut(values.dropna(), cuts, right=False).value_counts(sort=False).to_numpy()
        return np.append(binned, values.isna().sum()).astype(float) + SMOOTHING

    expected, actual = counts(reference), counts(current)
    return float(entropy(actual, expected) + entropy(expected, actual))


def test_psi_is_the_symmetric_kl_divergence_of_the_smoothed_counts() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        reference, current = rng.integers(0, 300, 11).astype(float), rng.integers(0, 300, 11).astype(float)
        current[rng.integers(0, 11)] = 0  # an empty bin stays finite
        smoothed_ref, smoothed_cur = reference + SMOOTHING, current + SMOOTHING
        assert psi(reference, current) == pytest.approx(
            entropy(smoothed_cur, smoothed_ref) + entropy(smoothed_ref, smoothed_cur), rel=1e-9
        )
    assert psi(np.array([10.0, 20, 30]), np.array([20.0, 40, 60])) == pytest.approx(0, abs=1e-3)


def test_window_scores_match_an_independent_computation_and_shifted_rows_drift(
    monitored: TestClient, training: example.TrainedModel
) -> None:
    reference = training.train_features
    reference_predictions = pd.Series(training.model.predict(reference))
    rng = np.random.default_rng(11)
    steady = example.make_dataset(n_rows=WINDOW, seed=21)[list(example.FEATURES)]
    steady.loc[rng.choice(WINDOW, 40, replace=False), "humidity_pct"] = np.nan  # 8% missing

    predictions = pd.Series(send(monitored, steady))
    report = monitored.get("/monitoring").json()
    assert report["window"]["rows"] == WINDOW
    for feature in example.FEATURES:
        expected = independent_psi(reference[feature], steady[feature])
        assert report["features"][feature]["psi"] == pytest.approx(expected, rel=1e-9), feature
    assert report["prediction"]["psi"] == pytest.approx(independent_psi(reference_predictions, predictions))
    assert report["features"]["humidity_pct"]["nulls"] == 40
    assert report["drifting"] == ["humidity_pct"], "nulls the training data never had are a shift"
    steady_scores = {name: score["psi"] for name, score in report["features"].items()}
    assert max(v for k, v in steady_scores.items() if k != "humidity_pct") < 0.1, steady_scores

    shifted = example.make_dataset(n_rows=WINDOW, seed=22)[list(example.FEATURES)]
    shifted["rpm"] += 1500.0  # past the training maximum (3000) for about two thirds of the rows
    before = monitored.get("/metrics").text
    send(monitored, shifted)
    report = monitored.get("/monitoring").json()  # brings the gauges up to date (they lag up to a second)
    after = monitored.get("/metrics").text
    assert report["status"] == "drift"
    assert report["drifting"] == ["rpm", "prediction"], "rpm drives throughput, so the predictions move too"
    assert report["features"]["rpm"]["psi"] == pytest.approx(
        independent_psi(reference["rpm"], shifted["rpm"])
    )
    beyond = int((shifted["rpm"] > reference["rpm"].max()).sum())
    assert report["features"]["rpm"]["out_of_range"] == beyond
    assert sample(after, "model_feature_drift_psi", feature="rpm") == pytest.approx(
        report["features"]["rpm"]["psi"]
    )
    assert sample(after, "model_feature_drift_psi", feature="rpm") > sample(
        after, "model_drift_psi_threshold"
    )
    counted = sample(after, "model_input_out_of_range_total", feature="rpm")
    assert counted - sample(before, "model_input_out_of_range_total", feature="rpm") == beyond
    assert sample(after, "model_input_nulls_total", feature="humidity_pct") >= 40
    assert sample(after, "model_drift_window_rows") == WINDOW
    assert sample(after, "model_drift_reference") == 1


def test_feature_labels_come_from_the_signature_only(monitored: TestClient) -> None:
    """A request naming another column is refused before the monitor sees it: no new label on /metrics."""
    response = monitored.post("/invocations", json={"dataframe_records": [{"made_up": 1.0}]})
    assert response.status_code == 400
    labels = {
        line.split('feature="')[1].split('"')[0]
        for line in monitored.get("/metrics").text.splitlines()
        if line.startswith("model_") and 'feature="' in line
    }
    assert "made_up" not in labels
    assert labels >= set(example.FEATURES)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_window_slides_by_rows_and_by_time_and_logs_one_line_per_window(monitored: TestClient) -> None:
    model = monitored.app.state.model  # type: ignore[attr-defined]
    profile = profile_from_model_metadata(model.pyfunc.metadata.metadata)
    assert profile is not None
    clock = FakeClock()
    lines: list[dict[str, Any]] = []
    window = WindowSettings(max_rows=100, seconds=60.0, min_rows=30, threshold=0.25)
    monitor = DriftMonitor(model, profile, window, emit=lines.append, clock=clock)
    rows = example.make_dataset(n_rows=300, seed=5)[list(example.FEATURES)].to_numpy()
    for start in range(0, 300, 10):  # 30 requests of 10 rows, 1 s apart
        monitor.observe(rows[start : start + 10], model.predict_matrix(rows[start : start + 10]), 10)
        clock.now += 1.0
    assert monitor.scores().rows == 100, "by rows: only the newest 100 of 300"
    assert monitor.scores().status == "ok"
    assert lines == [], "no line before a window's time is up"

    clock.now += 35.0  # 65 s after the monitor started: the first window's time is up, one line
    monitor.observe(rows[:10], model.predict_matrix(rows[:10]), 10)
    assert len(lines) == 1
    line = lines[0]
    assert line["event"] == DRIFT_EVENT
    assert line["status"] == "ok"
    assert line["rows"] == 100
    assert set(line["psi"]) == set(example.FEATURES)
    assert line["max_psi"] == max(*line["psi"].values(), line["prediction_psi"])
    # The join with the clouds' log-based metrics and alerts: they match this event and read this field.
    assert line["event"] == alerts.DRIFT_EVENT
    assert isinstance(line[alerts.DRIFT_FIELD], float)
    assert set(line) >= {"model_name", "model_version", "run_id", "threshold", "drifting", "out_of_range"}

    clock.now += 30.0  # the first 30 requests are now more than 60 s old
    monitor.observe(rows[:10], model.predict_matrix(rows[:10]), 10)
    scores = monitor.scores()
    assert scores.rows == 20, "by time: only the two requests of the last 60 s"
    assert scores.status == "not_enough_rows"
    assert all(score.psi is None for score in scores.features.values())
    assert len(lines) == 1, "one line per window"


def test_a_model_without_a_reference_serves_and_says_so(
    example_model_without_reference: LoggedModel, rows: list[dict[str, float]]
) -> None:
    settings = Settings(model_uri=example_model_without_reference.local_path)
    with TestClient(create_app(settings)) as client:
        wait_until_ready(client)
        assert client.post("/invocations", json={"dataframe_records": rows}).status_code == 200
        assert client.get("/monitoring").json()["status"] == "no_reference"
        assert sample(client.get("/metrics").text, "model_drift_reference") == 0
        assert not isinstance(client.app.state.plane.model, MonitoredModel)  # type: ignore[attr-defined]


def test_monitoring_off_leaves_the_prediction_path_alone(
    settings: Settings, rows: list[dict[str, float]]
) -> None:
    with TestClient(create_app(settings.model_copy(update={"monitoring_enabled": False}))) as client:
        wait_until_ready(client)
        assert client.post("/invocations", json={"dataframe_records": rows}).status_code == 200
        assert client.get("/monitoring").json()["status"] == "off"
        plane = client.app.state.plane  # type: ignore[attr-defined]
        assert plane.model is client.app.state.model  # type: ignore[attr-defined]


def test_monitoring_needs_the_api_key_when_one_is_set(settings: Settings, api_key: str) -> None:
    with TestClient(create_app(settings.model_copy(update={"api_key": SecretStr(api_key)}))) as client:
        wait_until_ready(client)
        assert client.get("/monitoring").status_code == 401
        assert client.get("/monitoring", headers={"X-API-Key": api_key}).status_code == 200


@pytest.mark.parametrize(
    ("stored", "problem"),
    [
        ({"format": 2}, "expected format 1, found 2"),
        ({"format": 1, "rows": 3, "features": [{"kind": "numeric", "name": "x"}]}, "malformed profile"),
        (
            {"format": 1, "rows": 3, "features": [
                {"kind": "numeric", "name": "x", "edges": [2.0, 1.0], "counts": [1, 1, 1], "nulls": 0,
                 "min": 0, "max": 3}]},
            "not increasing",
        ),
    ],
)  # fmt: skip
def test_a_damaged_profile_is_refused_with_the_reason(stored: dict[str, Any], problem: str) -> None:
    with pytest.raises(ProfileError, match=problem):
        parse_profile(stored)
    assert profile_from_model_metadata({"reference_profile": stored}) is None, "served as no reference"


def test_min_rows_above_the_window_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"MONITORING_MIN_ROWS \(300\) must be at most MONITORING_WINDOW_ROWS"
    ):
        Settings(model_uri="models:/m/1", monitoring_window_rows=200, monitoring_min_rows=300)


def test_categorical_inputs_and_predictions_count_other_values_and_nulls() -> None:
    """Categories (the DataFrame path, for models MLflow's parser serves): values the reference never saw
    and nulls are bins of their own, counted and scored like the rest."""
    rng = np.random.default_rng(0)
    train = pd.DataFrame(
        {"site": rng.choice(["a", "b", "c"], 600, p=[0.5, 0.3, 0.2]), "load": rng.normal(size=600)}
    )
    profile = parse_profile(build_reference_profile(train, np.where(train["load"] > 0, "high", "low")))
    assert isinstance(profile.features[0], CategoricalReference)
    assert isinstance(profile.prediction, CategoricalReference)
    model = SimpleNamespace(identity=ModelIdentity("m", "m", "1", None), column_names=("site", "load"))
    window = WindowSettings(max_rows=100, seconds=60.0, min_rows=50, threshold=0.25)
    monitor = DriftMonitor(cast(ServedModel, model), profile, window, emit=lambda line: None)

    live = pd.DataFrame({"site": ["a"] * 40 + ["d"] * 40 + [None] * 20, "load": rng.normal(size=100)})
    labels = np.where(live["load"] > 0, "high", "low")
    for start in range(0, 100, 10):
        monitor.observe(live[start : start + 10], labels[start : start + 10], 10)
    without_load = live[["site"]].head(10)  # an optional input left out: nulls, not a failure
    monitor.observe(without_load, labels[:10], 10)
    scores = monitor.scores()
    assert scores.features["load"].nulls == 10

    site = scores.features["site"]
    assert (site.unseen_categories, site.nulls) == (40, 20)  # the window: the latest 100 of 110 rows
    reference = train["site"].value_counts().reindex(["a", "b", "c"]).to_numpy(dtype=float)
    expected = np.append(reference, [0, 0]) + SMOOTHING  # a, b, c, other values, nulls
    actual = np.array([40, 0, 0, 40, 20], dtype=float) + SMOOTHING
    assert site.psi == pytest.approx(entropy(actual, expected) + entropy(expected, actual))
    assert scores.drifting == ["site", "load"], "load: 10% nulls where training had none"
    assert scores.prediction is not None
    assert scores.prediction.psi is not None
    assert scores.prediction.psi < 0.25
