"""Smoke-test a deployed stack: the model API answers a prediction, MLflow demands credentials.

    python -m scripts.smoke gcp-dev                         # URLs and secrets from the stack outputs
    python -m scripts.smoke --api-url URL --tracking-uri URL  # or given directly (API_KEY and
                                                             # MLFLOW_TRACKING_PASSWORD from the env)

Checks, each retried until `--wait` seconds pass (a fresh revision takes a moment to become ready):
- the API's `/readyz` is 200, and `/predict` answers one row built from the API's own OpenAPI schema
  (with the API key when the stack has one);
- MLflow answers 401 without credentials and 200 with the admin's.
Secrets are read from the stack (or the environment) and never printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mlops_stack.pulumi_cli import AutomationPulumi, PulumiCli, PulumiError

TRACKING_USERNAME = "admin"
MLFLOW_PROBE = "/api/2.0/mlflow/experiments/search?max_results=1"
_PLACEHOLDERS: dict[str, Any] = {"number": 1.0, "integer": 1, "boolean": False, "string": "smoke"}


class SmokeError(RuntimeError):
    """A check failed; the message says which and what came back."""


@dataclass(frozen=True)
class Target:
    """What to smoke-test. Secrets stay in memory only."""

    api_url: str
    tracking_uri: str
    api_key: str | None
    tracking_password: str | None


def target_from_stack(pulumi: PulumiCli, stack: str) -> Target:
    """Read the URLs and secrets from the stack outputs."""
    outputs = pulumi.outputs(stack, show_secrets=True)
    if not outputs.get("apiUrl"):
        raise SmokeError(f"stack {stack} has no apiUrl yet: pin a model (modelName/modelVersion) and run up")
    return Target(
        str(outputs["apiUrl"]).rstrip("/"),
        str(outputs["trackingUri"]).rstrip("/"),
        outputs.get("apiKey") or None,
        outputs.get("trackingAdminPassword"),
    )


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def example_row(openapi: dict[str, Any]) -> dict[str, Any]:
    """One input row for `/predict`, from the request schema the API derives from the model signature."""
    body = openapi["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    rows = _resolve(_resolve(body, openapi)["properties"]["rows"], openapi)
    row_schema = _resolve(rows["items"], openapi)
    row = {}
    for name, prop in row_schema.get("properties", {}).items():
        prop = _resolve(prop, openapi)
        options = prop.get("anyOf", [prop])
        kind = next(
            (option.get("type") for option in options if option.get("type") in _PLACEHOLDERS), "number"
        )
        row[name] = prop.get("examples", [None])[0] if prop.get("examples") else _PLACEHOLDERS[kind]
    return row


def check_api(client: httpx.Client, target: Target) -> str:
    """`/readyz` is 200 and `/predict` returns one prediction for one row."""
    ready = client.get(f"{target.api_url}/readyz")
    if ready.status_code != 200:
        raise SmokeError(f"API not ready: GET /readyz -> {ready.status_code}")
    row = example_row(client.get(f"{target.api_url}/openapi.json").raise_for_status().json())
    headers = {"X-API-Key": target.api_key} if target.api_key else {}
    answer = client.post(f"{target.api_url}/predict", json={"rows": [row]}, headers=headers)
    if answer.status_code != 200 or len(answer.json().get("predictions", [])) != 1:
        raise SmokeError(f"API prediction failed: POST /predict -> {answer.status_code} {answer.text[:300]}")
    return "API ready and answering a prediction"


def check_tracking(client: httpx.Client, target: Target) -> str:
    """MLflow refuses anonymous requests (401) and accepts the admin's (200)."""
    anonymous = client.get(f"{target.tracking_uri}{MLFLOW_PROBE}")
    if anonymous.status_code != 401:
        raise SmokeError(
            f"MLflow answered {anonymous.status_code} without credentials, expected 401: is auth on?"
        )
    if not target.tracking_password:
        raise SmokeError(
            "no MLflow admin password: the stack output trackingAdminPassword (or env) is missing"
        )
    admin = client.get(
        f"{target.tracking_uri}{MLFLOW_PROBE}", auth=(TRACKING_USERNAME, target.tracking_password)
    )
    if admin.status_code != 200:
        raise SmokeError(f"MLflow answered {admin.status_code} with the admin credentials, expected 200")
    return "MLflow: 401 without credentials, 200 with"


def retry(check: Callable[[], str], wait_seconds: float, interval: float = 2.0) -> str:
    """Run `check` until it passes or `wait_seconds` are up; then raise its last error."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return check()
        except (SmokeError, httpx.HTTPError, KeyError, ValueError) as error:
            if time.monotonic() >= deadline:
                raise SmokeError(str(error) or type(error).__name__) from error
            time.sleep(interval)


def run(target: Target, wait_seconds: float) -> list[str]:
    """Every check, in order; the passed ones' descriptions."""
    with httpx.Client(timeout=15.0) as client:
        return [
            retry(lambda: check_api(client, target), wait_seconds),
            retry(lambda: check_tracking(client, target), wait_seconds),
        ]


def main(argv: Sequence[str] | None = None, pulumi: PulumiCli | None = None) -> int:
    """Command-line entry point; `pulumi` is injectable for tests."""
    parser = argparse.ArgumentParser(prog="python -m scripts.smoke", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", nargs="?", help="read URLs and secrets from this stack's outputs")
    parser.add_argument("--api-url")
    parser.add_argument("--tracking-uri")
    parser.add_argument("--wait", type=float, default=300.0, help="seconds to keep retrying (default 300)")
    parser.add_argument("--work-dir", type=Path, default=Path.cwd())
    args = parser.parse_args(argv)
    try:
        if args.stack:
            target = target_from_stack(pulumi or AutomationPulumi(args.work_dir), args.stack)
        elif args.api_url and args.tracking_uri:
            target = Target(
                args.api_url.rstrip("/"),
                args.tracking_uri.rstrip("/"),
                os.environ.get("API_KEY") or None,
                os.environ.get("MLFLOW_TRACKING_PASSWORD"),
            )
        else:
            parser.error("give a stack, or both --api-url and --tracking-uri")
        for passed in run(target, args.wait):
            print(f"ok: {passed}")
    except (SmokeError, PulumiError) as error:
        print(f"smoke test failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
