"""Send shifted traffic to the model API, so you can watch its drift score rise past the threshold.

    uv run python -m scripts.shift_traffic                  # the API of `make local` (127.0.0.1:$API_PORT)
    uv run python -m scripts.shift_traffic --feature temperature_c --shift 1.5 --api-url URL --api-key KEY

It sends rows like the example model's training data (`mlops_stack.example_model.make_dataset`): first a
window's worth of ordinary rows, so the score starts low, then rows whose `--feature` is moved by `--shift`
of its standard deviations, a batch at a time, printing that feature's PSI from `/monitoring` after each
batch, until it passes the API's threshold (exit status 0) or `--max-rows` shifted rows are sent (1).
Watch the same numbers on `/metrics` (`model_feature_drift_psi`) or `/monitoring` meanwhile.
"""

import argparse
import os
import sys
from typing import Any

import httpx
import numpy as np
import pandas as pd

from mlops_stack.example_model import FEATURES, make_dataset

BATCH_ROWS = 50
REQUEST_TIMEOUT_SECONDS = 30.0


class TrafficError(RuntimeError):
    """The API cannot take part in the demonstration; the message says why and what to do."""


class ModelApi:
    """The few calls the demonstration makes."""

    def __init__(self, url: str, api_key: str | None) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self.client = httpx.Client(base_url=url, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS)
        self.url = url

    def monitoring(self) -> dict[str, Any]:
        report: dict[str, Any] = self._checked(self.client.get("/monitoring")).json()
        return report

    def predict(self, rows: pd.DataFrame) -> None:
        body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}}
        self._checked(self.client.post("/invocations", json=body))

    def _checked(self, response: httpx.Response) -> httpx.Response:
        if response.status_code == 401:
            raise TrafficError("the API wants its key: pass --api-key or set API_KEY")
        if response.status_code != 200:
            raise TrafficError(
                f"{response.request.url} answered {response.status_code}: {response.text[:300]}"
            )
        return response


def rows_like_training(count: int, seed: int) -> pd.DataFrame:
    return make_dataset(n_rows=count, seed=seed)[list(FEATURES)]


def run(api: ModelApi, feature: str, shift: float, max_rows: int, seed: int) -> bool:
    """Baseline, then shifted batches; True once the feature's PSI passes the API's threshold."""
    report = api.monitoring()
    if report["status"] in ("off", "no_reference"):
        raise TrafficError(
            f"the API scores no drift (status {report['status']}): "
            + (
                "it runs with MONITORING_ENABLED=false"
                if report["status"] == "off"
                else "its model has no reference profile; train it with scripts/train.py"
            )
        )
    if feature not in report["features"]:
        raise TrafficError(
            f"the served model has no input {feature!r}: it takes {sorted(report['features'])}"
        )
    window, threshold = report["window"], report["threshold"]
    print(
        f"{api.url}: drift window {window['max_rows']} rows / {window['max_seconds']:g} s, scored from "
        f"{window['min_rows']} rows; {feature} drifts when its PSI passes {threshold:g}",
        flush=True,
    )
    # Ordinary rows first, enough to fill the window, so the rise starts from a low score.
    baseline = rows_like_training(window["max_rows"], seed)
    for start in range(0, len(baseline), BATCH_ROWS):
        api.predict(baseline[start : start + BATCH_ROWS])
    show("ordinary", len(baseline), feature, api.monitoring())

    training = rows_like_training(2_000, seed=7)
    offset = shift * float(np.std(training[feature]))
    sent = 0
    rng_seed = seed + 1
    while sent < max_rows:
        batch = rows_like_training(BATCH_ROWS, rng_seed)
        batch[feature] += offset
        api.predict(batch)
        sent += len(batch)
        rng_seed += 1
        report = api.monitoring()
        show(f"{feature} {offset:+.4g}", sent, feature, report)
        score = report["features"][feature]["psi"]
        if score is not None and score > threshold:
            print(f"{feature} is drifting: PSI {score:.3f} > {threshold:g}; drifting: {report['drifting']}")
            return True
    print(f"{feature} did not pass {threshold:g} after {sent} shifted rows: try a larger --shift")
    return False


def show(phase: str, sent: int, feature: str, report: dict[str, Any]) -> None:
    score = report["features"][feature]["psi"]
    shown = "-" if score is None else f"{score:.3f}"
    print(
        f"  {phase:<16} sent {sent:>5} rows  window {report['window']['rows']:>5} rows  "
        f"{feature} PSI {shown:>6}  status {report['status']}",
        flush=True,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.shift_traffic", description=__doc__.splitlines()[0]
    )
    default_url = f"http://127.0.0.1:{os.environ.get('API_PORT', '8000')}"
    parser.add_argument("--api-url", default=default_url, help=f"the model API (default {default_url})")
    parser.add_argument(
        "--api-key", default=os.environ.get("API_KEY"), help="its key, if it has one ($API_KEY)"
    )
    parser.add_argument("--feature", choices=FEATURES, default="rpm", help="the input to shift (default rpm)")
    parser.add_argument(
        "--shift", type=float, default=1.0, help="how far, in standard deviations of the training data (1.0)"
    )
    parser.add_argument(
        "--max-rows", type=int, default=5_000, help="give up after this many shifted rows (5000)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated rows")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    api = ModelApi(args.api_url.rstrip("/"), args.api_key)
    try:
        drifted = run(api, args.feature, args.shift, args.max_rows, args.seed)
    except TrafficError as error:
        sys.exit(f"shift_traffic: {error}")
    except httpx.TransportError as error:
        sys.exit(f"shift_traffic: cannot reach {args.api_url} ({error}): is `make local` running?")
    sys.exit(0 if drifted else 1)


if __name__ == "__main__":
    main()
