"""Input drift and input quality of the served model, over a sliding window of the rows it predicted.

Each prediction's rows and predictions are handed to `DriftMonitor.observe` (by `MonitoredModel`, the
served model with its two predict paths observed). The window is a ring of up to WINDOW_SLICES slices:
a slice collects the raw rows of a tenth of the window (MONITORING_WINDOW_ROWS / 10 rows, or
MONITORING_WINDOW_SECONDS / 10 seconds, whichever comes first), then is counted into the reference's bins
in one vectorised pass and its rows dropped. The window is the newest slices holding at most
MONITORING_WINDOW_ROWS rows, none older than MONITORING_WINDOW_SECONDS: it slides a tenth at a time.

Per request that is one list append under a lock, whatever the model's width; the counting is amortised
over a slice's rows and the scoring (PSI per column, see service.drift) runs at most once a second, on the
first request or read after a slice closed. Both are lazy: a slice closes, and the gauges catch up, when a
request arrives or /monitoring is read after their time is up. So under traffic /metrics lags by at most a
second; after traffic stops it keeps the last published numbers (read /monitoring to bring them up to
date), it does not decay to an empty window.

Published:
- Prometheus (/metrics): `model_drift_reference` (1, or 0 for "no reference"), `model_feature_drift_psi`
  {feature}, `model_prediction_drift_psi`, `model_drift_psi_threshold`, `model_drift_window_rows`, and the
  counters `model_input_nulls_total`, `model_input_out_of_range_total` (outside the training minimum and
  maximum), `model_input_unseen_categories_total` {feature}. The PSI gauges are NaN until the window holds
  MONITORING_MIN_ROWS rows. The `feature` label takes only the names of the model's signature (through its
  profile, at most reference_profile.MAX_FEATURES), never a name a request sent.
- `/monitoring` (service.routes.monitoring): the same numbers as JSON, with the bins.
- One JSON log line per window (every MONITORING_WINDOW_SECONDS that saw traffic), `drift_log_line`, for
  log-based metrics and alerts in the clouds.

With several worker processes each watches its own share of the traffic; /metrics shows the largest PSI of
the workers (a conservative choice) and the sum of their window rows; /monitoring answers for the worker
that took the request.
"""

import logging
import math
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pandas as pd
from numpy.typing import NDArray
from prometheus_client import Counter, Gauge

from service.drift import NumericBins, count_categories, psi
from service.reference_profile import (
    CategoricalReference,
    ColumnReference,
    NumericReference,
    ReferenceProfile,
    profile_from_model_metadata,
)
from service.served_model import ServedModel
from service.settings import Settings
from service.tree_ensemble import MatrixPredictor

logger = logging.getLogger(__name__)

WINDOW_SLICES = 10
SCORE_INTERVAL_SECONDS = 1.0
DRIFT_EVENT = "model_drift"

REFERENCE = Gauge(
    "model_drift_reference",
    "1 when the served model carries a reference profile and its drift is scored; 0: no reference.",
    multiprocess_mode="max",
)
FEATURE_PSI = Gauge(
    "model_feature_drift_psi",
    "PSI of an input's distribution in the window against training (NaN until the window has enough rows).",
    ["feature"],
    multiprocess_mode="max",
)
PREDICTION_PSI = Gauge(
    "model_prediction_drift_psi",
    "PSI of the predictions in the window against the predictions on the training data.",
    multiprocess_mode="max",
)
PSI_THRESHOLD = Gauge(
    "model_drift_psi_threshold", "PSI above which a column counts as drifting.", multiprocess_mode="max"
)
WINDOW_ROWS = Gauge("model_drift_window_rows", "Rows in the drift window.", multiprocess_mode="sum")
NULLS = Counter("model_input_nulls_total", "Null (missing) input values received.", ["feature"])
OUT_OF_RANGE = Counter(
    "model_input_out_of_range_total",
    "Numeric input values outside the training minimum and maximum.",
    ["feature"],
)
UNSEEN = Counter(
    "model_input_unseen_categories_total",
    "Categorical input values not among the reference's categories.",
    ["feature"],
)


@dataclass(frozen=True)
class WindowSettings:
    """How the window slides and when it is judged (the MONITORING_* settings)."""

    max_rows: int
    seconds: float
    min_rows: int
    threshold: float


@dataclass
class _OpenSlice:
    """Raw rows of the slice being filled: what requests handed over, untouched until it closes."""

    started: float
    rows: int = 0
    inputs: list[NDArray[np.float64] | pd.DataFrame] = field(default_factory=list)
    predictions: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class _Tally:
    """A closed slice, counted: numeric slots (flat, see NumericBins), categorical slots per column, and
    the same for the predictions."""

    started: float
    ended: float
    rows: int
    numeric: NDArray[np.int64]
    out_of_range: NDArray[np.int64]
    categorical: tuple[NDArray[np.int64], ...]
    prediction: NDArray[np.int64] | None


@dataclass(frozen=True)
class ColumnScore:
    """One column's drift and input quality over the window."""

    psi: float | None
    nulls: int
    out_of_range: int
    unseen_categories: int
    reference: list[float]
    current: list[float]


@dataclass(frozen=True)
class Scores:
    """The window as judged at one moment."""

    rows: int
    seconds: float
    enough_rows: bool
    threshold: float
    features: dict[str, ColumnScore]
    prediction: ColumnScore | None

    @property
    def drifting(self) -> list[str]:
        """Columns whose PSI is over the threshold (`prediction` for the predictions)."""
        columns = {**self.features, **({"prediction": self.prediction} if self.prediction else {})}
        return [
            name for name, score in columns.items() if score.psi is not None and score.psi > self.threshold
        ]

    @property
    def status(self) -> str:
        """`not_enough_rows` until the window holds MONITORING_MIN_ROWS rows, then `drift` or `ok`."""
        if not self.enough_rows:
            return "not_enough_rows"
        return "drift" if self.drifting else "ok"


class DriftMonitor:
    """The sliding window of one served model against its reference profile (thread-safe)."""

    def __init__(
        self,
        model: ServedModel,
        profile: ReferenceProfile,
        window: WindowSettings,
        emit: Callable[[dict[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.identity = model.identity
        self.window = window
        self._emit = emit or write_log_line
        self._clock = clock
        positions = {name: index for index, name in enumerate(model.column_names)}
        # Only columns the signature names are watched: requests cannot add labels.
        watched = [column for column in profile.features if column.name in positions]
        self._order = tuple(column.name for column in watched)
        self.numeric = tuple(column for column in watched if isinstance(column, NumericReference))
        self.categorical = tuple(column for column in watched if isinstance(column, CategoricalReference))
        self._numeric_positions = np.array([positions[column.name] for column in self.numeric], dtype=np.intp)
        self._categorical_positions = [positions[column.name] for column in self.categorical]
        self._bins = NumericBins(self.numeric)
        self.prediction = profile.prediction
        self._prediction_bins = (
            NumericBins((self.prediction,)) if isinstance(self.prediction, NumericReference) else None
        )
        self._lock = threading.Lock()
        now = clock()
        self._open = _OpenSlice(started=now)
        self._closed: deque[_Tally] = deque()
        self._scored_at = -math.inf
        self._reported_at = now
        self._rows_since_report = 0
        self._scores = self._judge(now)
        self._slice_rows = max(1, window.max_rows // WINDOW_SLICES)
        self._slice_seconds = window.seconds / WINDOW_SLICES
        REFERENCE.set(1)
        PSI_THRESHOLD.set(window.threshold)
        watched_columns: tuple[ColumnReference, ...] = (*self.numeric, *self.categorical)
        for column in watched_columns:  # every series exists from the start, at 0
            NULLS.labels(column.name).inc(0)
            (OUT_OF_RANGE if isinstance(column, NumericReference) else UNSEEN).labels(column.name).inc(0)
        self._publish(self._scores)

    def observe(self, inputs: NDArray[np.float64] | pd.DataFrame, predictions: Any, rows: int) -> None:
        """Take one prediction's rows (a float64 matrix in signature order, or a DataFrame) and its
        predictions; they are counted when their slice closes."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            self._open.inputs.append(inputs)
            self._open.predictions.append(predictions)
            self._open.rows += rows
            self._rows_since_report += rows
            if self._open.rows >= self._slice_rows:
                self._close(now)
                self._advance(now)

    def scores(self) -> Scores:
        """The window now (slices whose time is up are closed first)."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            if self._scored_at < now:
                self._scores = self._judge(now)
                self._scored_at = now
                self._publish(self._scores)
            return self._scores

    def _advance(self, now: float) -> None:
        """Close the open slice if its time is up; rescore (at most once a second); report once a window."""
        if self._open.rows and now - self._open.started >= self._slice_seconds:
            self._close(now)
        elif not self._open.rows:
            self._open.started = now
        rescore_due = now >= self._scored_at + SCORE_INTERVAL_SECONDS
        if rescore_due and self._closed and self._closed[-1].ended > self._scored_at:
            self._scores = self._judge(now)
            self._scored_at = now
            self._publish(self._scores)
        if self._rows_since_report and now - self._reported_at >= self.window.seconds:
            # The line describes the window as it stood when its time was up, not as it stands after the
            # idle gap that may have passed before this request came and closed it.
            window_end = self._reported_at + self.window.seconds
            self._emit(drift_log_line(self, self._judge(window_end)))
            self._reported_at = now
            self._rows_since_report = 0

    def _close(self, now: float) -> None:
        """Count the open slice into bins, publish its quality counters, start a new one."""
        # The new slice first: if counting fails, this slice's rows are lost, never kept and retried.
        closing, self._open = self._open, _OpenSlice(started=now)
        tally = self._count(closing, now)
        self._closed.append(tally)
        # Older slices can never be part of a window again: not in time, or beyond the row budget.
        while self._closed and (
            self._closed[0].ended < now - self.window.seconds
            or sum(t.rows for t in self._closed) - self._closed[0].rows >= self.window.max_rows
        ):
            self._closed.popleft()
        for index, column in enumerate(self.numeric):
            nulls = int(self._bins.column_counts(tally.numeric, index)[-1])
            if nulls:
                NULLS.labels(column.name).inc(nulls)
            if tally.out_of_range[index]:
                OUT_OF_RANGE.labels(column.name).inc(int(tally.out_of_range[index]))
        for category_column, counts in zip(self.categorical, tally.categorical, strict=True):
            if counts[-1]:
                NULLS.labels(category_column.name).inc(int(counts[-1]))
            if counts[-2]:
                UNSEEN.labels(category_column.name).inc(int(counts[-2]))

    def _count(self, open_slice: _OpenSlice, now: float) -> _Tally:
        # Matrices (the fast path, all in signature order) are stacked first and their columns picked once:
        # one copy per slice rather than one per request.
        matrices = [inputs for inputs in open_slice.inputs if not isinstance(inputs, pd.DataFrame)]
        frames = [inputs for inputs in open_slice.inputs if isinstance(inputs, pd.DataFrame)]
        numeric_blocks: list[NDArray[np.float64]] = []
        categorical_blocks: list[list[pd.Series]] = []
        if matrices:
            stacked = np.vstack(matrices)
            numeric_blocks.append(stacked[:, self._numeric_positions])
            categorical_blocks.append([pd.Series(stacked[:, p]) for p in self._categorical_positions])
        for frame in frames:
            block = np.empty((len(frame), len(self.numeric)))
            for index, column in enumerate(self.numeric):
                block[:, index] = pd.to_numeric(_column(frame, column.name), errors="coerce")
            numeric_blocks.append(block)
            categorical_blocks.append([_column(frame, column.name) for column in self.categorical])
        numeric, out_of_range = self._bins.count(np.vstack(numeric_blocks))
        categorical = tuple(
            count_categories(column, pd.concat([block[index] for block in categorical_blocks]))
            for index, column in enumerate(self.categorical)
        )
        return _Tally(
            started=open_slice.started,
            ended=now,
            rows=open_slice.rows,
            numeric=numeric,
            out_of_range=out_of_range,
            categorical=categorical,
            prediction=self._count_predictions(open_slice.predictions),
        )

    def _count_predictions(self, predictions: list[Any]) -> NDArray[np.int64] | None:
        """Predictions that are one value per row (others, e.g. class probabilities, are not profiled)."""
        if self.prediction is None:
            return None
        vectors = [vector for vector in map(np.asarray, predictions) if vector.ndim == 1]
        values = np.concatenate(vectors) if vectors else np.array([])
        if self._prediction_bins is not None:
            numbers = (
                values.astype(np.float64)
                if values.dtype.kind in "fiub"
                else pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(np.float64)
            )
            counts, _ = self._prediction_bins.count(numbers.reshape(-1, 1))
            return counts
        assert isinstance(self.prediction, CategoricalReference)
        return count_categories(self.prediction, pd.Series(values, dtype=object))

    def _judge(self, now: float) -> Scores:
        """PSI and quality per column over the window ending at `now` (slices that started after it, too:
        a slice closed late still holds rows that came before)."""
        window = [t for t in self._closed if t.ended >= now - self.window.seconds]
        rows = sum(t.rows for t in window)
        seconds = window[-1].ended - window[0].started if window else 0.0
        enough = rows >= self.window.min_rows
        features: dict[str, ColumnScore] = {}
        numeric = np.sum([t.numeric for t in window], axis=0) if window else None
        out_of_range = np.sum([t.out_of_range for t in window], axis=0) if window else None
        for index, column in enumerate(self.numeric):
            current = (
                self._bins.column_counts(numeric, index) if numeric is not None else _empty(column.slots)
            )
            oor = int(out_of_range[index]) if out_of_range is not None else 0
            features[column.name] = _score(column, current, enough, out_of_range=oor, unseen=0)
        for index, category_column in enumerate(self.categorical):
            counts = np.sum([t.categorical[index] for t in window], axis=0) if window else None
            current = counts.astype(np.float64) if counts is not None else _empty(category_column.slots)
            features[category_column.name] = _score(
                category_column, current, enough, out_of_range=0, unseen=int(current[-2])
            )
        features = {name: features[name] for name in self._order}  # as the signature lists them
        prediction = None
        if self.prediction is not None:
            tallies = [t.prediction for t in window if t.prediction is not None]
            if self._prediction_bins is not None and tallies:
                current = self._prediction_bins.column_counts(np.sum(tallies, axis=0), 0)
            elif tallies:
                current = np.sum(tallies, axis=0).astype(np.float64)
            else:
                current = _empty(self.prediction.slots)
            prediction = _score(self.prediction, current, enough, out_of_range=0, unseen=0)
        return Scores(rows, seconds, enough, self.window.threshold, features, prediction)

    def _publish(self, scores: Scores) -> None:
        WINDOW_ROWS.set(scores.rows)
        for name, score in scores.features.items():
            FEATURE_PSI.labels(name).set(math.nan if score.psi is None else score.psi)
        if scores.prediction is not None:
            PREDICTION_PSI.set(math.nan if scores.prediction.psi is None else scores.prediction.psi)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A column of the request; an optional input the request left out counts as nulls."""
    if name in frame.columns:
        return frame[name]
    return pd.Series([None] * len(frame), index=frame.index, dtype=object)


def _empty(slots: int) -> NDArray[np.float64]:
    return np.zeros(slots, dtype=np.float64)


def _score(
    column: ColumnReference, current: NDArray[np.float64], enough: bool, out_of_range: int, unseen: int
) -> ColumnScore:
    reference = column.reference_counts()
    total = current.sum()
    return ColumnScore(
        psi=psi(reference, current) if enough else None,
        nulls=int(current[-1]),
        out_of_range=out_of_range,
        unseen_categories=unseen,
        reference=[round(float(value), 4) for value in reference / reference.sum()],
        current=[round(float(value), 4) for value in (current / total if total else current)],
    )


def drift_log_line(monitor: DriftMonitor, scores: Scores) -> dict[str, Any]:
    """The structured line written once per window (its shape is documented in the README)."""
    psi_values = {name: score.psi for name, score in scores.features.items() if score.psi is not None}
    prediction_psi = scores.prediction.psi if scores.prediction is not None else None
    candidates = [*psi_values.values(), *([prediction_psi] if prediction_psi is not None else [])]
    return {
        "event": DRIFT_EVENT,
        "severity": "WARNING" if scores.status == "drift" else "INFO",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "model_name": monitor.identity.name,
        "model_version": monitor.identity.version,
        "run_id": monitor.identity.run_id,
        "status": scores.status,
        "method": "psi",
        "threshold": monitor.window.threshold,
        "rows": scores.rows,
        "window_seconds": round(scores.seconds, 1),
        "max_psi": round(max(candidates), 4) if candidates else None,
        "prediction_psi": None if prediction_psi is None else round(prediction_psi, 4),
        "drifting": scores.drifting,
        "psi": {name: round(value, 4) for name, value in psi_values.items()},
        "nulls": {name: score.nulls for name, score in scores.features.items()},
        "out_of_range": {name: score.out_of_range for name, score in scores.features.items()},
        "unseen_categories": {name: score.unseen_categories for name, score in scores.features.items()},
    }


def write_log_line(line: dict[str, Any]) -> None:
    """One JSON object alone on a line of stdout, so Cloud Logging, CloudWatch and Log Analytics parse it
    as structured data (the process's other log lines carry a text prefix)."""
    sys.stdout.buffer.write(orjson.dumps(line) + b"\n")
    sys.stdout.flush()


class MonitoredModel(ServedModel):
    """The served model with every successful prediction also shown to its DriftMonitor.

    It shares the loaded model and everything computed at load (no copy) and wraps the two ways the data
    plane predicts: the fast tree path on a float64 matrix, and MLflow's pyfunc on a DataFrame (which
    `predict_matrix` falls back to). Rows sent with MLflow `params` reach pyfunc directly and are not
    observed. A failure in the monitor is logged once and never fails a prediction.
    """

    def __init__(self, model: ServedModel, monitor: DriftMonitor) -> None:
        vars(self).update(vars(model))
        self.monitor = monitor
        self._monitor_failed = False
        if model.fast_predictor is not None:
            self.fast_predictor = self._observed(model.fast_predictor)

    def _observed(self, fast: MatrixPredictor) -> MatrixPredictor:
        def predict(matrix: NDArray[np.float64]) -> NDArray[np.float64]:
            predictions = fast(matrix)
            self._show(matrix, predictions, len(matrix))
            return predictions

        return predict

    def predict_pyfunc(self, data: Any) -> Any:
        predictions = super().predict_pyfunc(data)
        if isinstance(data, pd.DataFrame):
            self._show(data, predictions, len(data))
        return predictions

    def _show(self, inputs: NDArray[np.float64] | pd.DataFrame, predictions: Any, rows: int) -> None:
        try:
            self.monitor.observe(inputs, predictions, rows)
        except Exception:
            if not self._monitor_failed:
                self._monitor_failed = True
                logger.exception("drift monitoring failed on a prediction; it keeps trying, silently")


def monitored(model: ServedModel, settings: Settings) -> tuple[ServedModel, DriftMonitor | None]:
    """The model the data plane should predict with, and its monitor: the model itself and None when
    monitoring is off or the model carries no reference profile (then `model_drift_reference` is 0)."""
    profile = (
        profile_from_model_metadata(model.pyfunc.metadata.metadata) if settings.monitoring_enabled else None
    )
    REFERENCE.set(0)
    if profile is None:
        if settings.monitoring_enabled:
            logger.info("the model has no reference profile: serving without drift scores (no reference)")
        return model, None
    window = WindowSettings(
        max_rows=settings.monitoring_window_rows,
        seconds=settings.monitoring_window_seconds,
        min_rows=settings.monitoring_min_rows,
        threshold=settings.monitoring_psi_threshold,
    )
    monitor = DriftMonitor(model, profile, window)
    logger.info(
        "watching drift of %d inputs%s against the model's reference profile",
        len(monitor.numeric) + len(monitor.categorical),
        " and its predictions" if monitor.prediction is not None else "",
    )
    return MonitoredModel(model, monitor), monitor
