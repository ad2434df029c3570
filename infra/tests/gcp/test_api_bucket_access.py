"""The model API's bucket grant (objectViewer, conditioned on its model's prefix) against what it loads.

The real loader (`service.model_loading.load_served_model`, MLflow's GCS repository) loads the example model
from the GCS emulator, under the object names the stack pins. Every request it sends is turned into the IAM
check Cloud Storage makes for it and the stack's condition is evaluated on it as CEL (cel-python): all must
pass, and a neighbouring object (another run's artifact) must not.

How Cloud Storage checks (https://cloud.google.com/storage/docs/access-control/iam-permissions, IAM resource
names https://cloud.google.com/iam/docs/conditions-resource-attributes): listing objects needs
`storage.objects.list`, checked on the bucket `projects/_/buckets/<bucket>`; reading an object or its metadata
needs `storage.objects.get`, checked on `projects/_/buckets/<bucket>/objects/<name>`. objectViewer carries
both. Any other request (bucket metadata, writes) is a permission the grant does not give, and fails the test.
"""

import os
import re
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import unquote, urlsplit

import celpy
import pytest
import requests

from infra.tests.gcp.conftest import MODEL_PATH, run_gcp, with_model
from service.model_loading import load_served_model
from service.settings import Settings
from testing.model_fixtures import LoggedModel
from testing.storage_emulators import GcsEmulator

pytestmark = pytest.mark.slow

OBJECTS_VIEWER_PERMISSIONS = {"storage.objects.get", "storage.objects.list"}
LIST = re.compile(r"^/(?:storage/v1/)?b/(?P<bucket>[^/]+)/o$")
GET = re.compile(r"^/(?:download/)?(?:storage/v1/)?b/(?P<bucket>[^/]+)/o/(?P<object>.+)$")


def iam_check(method: str, url: str) -> tuple[str, dict[str, str]]:
    """The permission and resource Cloud Storage checks for a JSON API request."""
    path = urlsplit(url).path
    if method == "GET" and (match := LIST.match(path)):
        return "storage.objects.list", {
            "name": f"projects/_/buckets/{match['bucket']}",
            "type": "storage.googleapis.com/Bucket",
        }
    if method == "GET" and (match := GET.match(path)):
        return "storage.objects.get", {
            "name": f"projects/_/buckets/{match['bucket']}/objects/{unquote(match['object'])}",
            "type": "storage.googleapis.com/Object",
        }
    raise AssertionError(f"the loader sent {method} {url}: not something objectViewer allows")


def allows(expression: str, resource: dict[str, str]) -> bool:
    environment = celpy.Environment()
    program = environment.program(environment.compile(expression))
    return bool(program.evaluate({"resource": celpy.json_to_cel(resource)}))


def test_the_api_loads_its_model_under_its_prefix_only_grant(
    example_model: LoggedModel, gcs_emulator: GcsEmulator, tmp_path: Path
) -> None:
    run = run_gcp("dev", **with_model("dev"))
    binding = run.one("gcp:storage/bucketIAMMember:BucketIAMMember", "-api-bucket-reader").inputs
    bucket = run.one("gcp:storage/bucket:Bucket").inputs["name"]
    expression = binding["condition"]["expression"]
    assert binding["role"] == "roles/storage.objectViewer"

    gcs_emulator.create_bucket(bucket)
    client = gcs_emulator._client()
    for file in Path(example_model.local_path).rglob("*"):
        if file.is_file():
            relative = file.relative_to(example_model.local_path).as_posix()
            client.bucket(bucket).blob(f"{MODEL_PATH}/{relative}").upload_from_filename(str(file))
    neighbour = f"projects/_/buckets/{bucket}/objects/mlflow/1/other-run/artifacts/model.pkl"

    checks: list[tuple[str, dict[str, str]]] = []
    original = requests.adapters.HTTPAdapter.send

    def recording(adapter: Any, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        checks.append(iam_check(request.method or "", request.url or ""))
        return original(adapter, request, **kwargs)

    emulator = {"STORAGE_EMULATOR_HOST": gcs_emulator.endpoint_url, "GOOGLE_CLOUD_PROJECT": "mlops-test"}
    with (
        mock.patch.dict(os.environ, emulator),
        mock.patch.object(requests.adapters.HTTPAdapter, "send", recording),
    ):
        # MODEL_URI as the stack sets it on the API service.
        served = load_served_model(Settings(model_uri=run.outputs["modelUri"]))
    assert served.column_names, "the model did not load"

    assert checks, "the loader sent nothing to Cloud Storage"
    assert {permission for permission, _ in checks} <= OBJECTS_VIEWER_PERMISSIONS
    assert {permission for permission, _ in checks} == OBJECTS_VIEWER_PERMISSIONS  # it lists and reads
    refused = [resource["name"] for _, resource in checks if not allows(expression, resource)]
    assert not refused, f"the condition refuses what the loader needs: {refused}"
    assert not allows(expression, {"name": neighbour, "type": "storage.googleapis.com/Object"})
