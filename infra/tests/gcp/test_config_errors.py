"""GCP-specific config errors stop the program before the mocks see a single resource or invoke."""

import pulumi
import pytest
from pulumi.runtime import MockCallArgs, MockResourceArgs

from infra.config import ConfigError
from infra.gcp.limits import CLOUD_RUN_TRACKING_MEMORY_MIB
from infra.platform import load_stack_settings
from infra.tests.gcp.conftest import config_for
from testing.pulumi_program import run_program


def fails_before_anything(config: dict[str, str], error: type[Exception] = ConfigError) -> str:
    seen: list[str] = []

    def record_resource(args: MockResourceArgs) -> dict[str, str]:
        seen.append(args.name)
        return {}

    def record_call(args: MockCallArgs) -> dict[str, str]:
        seen.append(args.token)
        return {}

    with pytest.raises(error) as raised:
        run_program(config, "gcp-dev", record_resource, record_call)
    assert seen == []
    return str(raised.value)


def test_missing_project_and_region_are_both_reported() -> None:
    message = fails_before_anything(config_for("dev", **{"gcp:project": None, "gcp:region": None}))
    assert "gcp:project: is not set; pulumi config set gcp:project <value>" in message
    assert "gcp:region: is not set; pulumi config set gcp:region <value>" in message


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"trackingCpu": "1", "trackingMemoryMiB": "8192"}, "trackingMemoryMiB: 8192 MiB does not fit 1 CPU"),
        ({"apiCpu": "0.5"}, "apiCpu: 0.5 CPUs is not a size this cloud offers"),
        ({"apiCpu": "3"}, "apiCpu: 3 CPUs is not a size this cloud offers"),
        ({"apiCpu": "2", "apiMemoryMiB": "300"}, "apiMemoryMiB: 300 MiB does not fit 2 CPU"),
        # Cloud Run's minimums per CPU: 4 CPUs need 2 GiB, 6 and 8 CPUs need 4 GiB.
        ({"apiCpu": "4", "apiMemoryMiB": "1024"}, "apiMemoryMiB: 1024 MiB does not fit 4 CPU"),
        ({"trackingCpu": "6", "trackingMemoryMiB": "3072"}, "trackingMemoryMiB: 3072 MiB does not fit 6 CPU"),
        ({"apiCpu": "8", "apiMemoryMiB": "2048"}, "apiMemoryMiB: 2048 MiB does not fit 8 CPU"),
        ({"apiCpu": "8", "apiMemoryMiB": "33792"}, "apiMemoryMiB: 33792 MiB does not fit 8 CPU"),
        (
            {"apiCpu": "2", "apiMemoryMiB": "1000"},
            "apiMemoryMiB: 1000 MiB does not fit 2 CPU",
        ),  # 128 MiB steps
    ],
)
def test_bad_cloud_run_sizes_say_what_cloud_run_accepts(overrides: dict[str, str], expected: str) -> None:
    message = fails_before_anything(config_for("dev", **overrides))
    assert expected in message
    assert (
        "Cloud Run takes 1 CPU with 512-4096 MiB, 2 CPU with 512-8192 MiB, 4 CPU with 2048-16384 MiB, "
        "6 CPU with 4096-24576 MiB, 8 CPU with 4096-32768 MiB, in 128 MiB steps "
        "(https://cloud.google.com/run/docs/configuring/services/cpu)"
    ) in message


@pytest.mark.parametrize(
    ("cpu", "memory"),
    [
        ("1", "512"),
        ("1", "4096"),
        ("2", "8192"),
        ("4", "2048"),
        ("4", "16384"),
        ("6", "4096"),
        ("8", "32768"),
    ],
)
def test_every_cloud_run_size_at_its_bounds_is_accepted(cpu: str, memory: str) -> None:
    settings = load_stack_settings(config_for("dev", apiCpu=cpu, apiMemoryMiB=memory).get, stack="gcp-dev")
    assert (settings.api.cpu, settings.api.memory_mib) == (float(cpu), int(memory))


def test_the_tracking_server_gets_room_for_artifacts_in_flight_by_default() -> None:
    settings = load_stack_settings(config_for("dev").get, stack="gcp-dev")
    assert settings.tracking.memory_mib == CLOUD_RUN_TRACKING_MEMORY_MIB == 2048
    assert settings.api.memory_mib == 1024


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("gcp:project", "My Project", "gcp:project: 'My Project' is not a project id"),
        ("gcp:project", "123456789012", "gcp:project: '123456789012' is not a project id"),
        ("gcp:project", "proj-", "gcp:project: 'proj-' is not a project id"),
        ("gcp:project", "a" * 31, f"gcp:project: '{'a' * 31}' is not a project id"),
        ("gcp:region", "europe-west1-b", "gcp:region: 'europe-west1-b' is not a Google Cloud region"),
        ("gcp:region", "EU", "gcp:region: 'EU' is not a Google Cloud region"),
    ],
)
def test_project_ids_and_regions_are_checked(key: str, value: str, expected: str) -> None:
    message = fails_before_anything(config_for("dev", **{key: value}))
    assert expected in message


def test_model_source_must_be_in_gcs() -> None:
    message = fails_before_anything(config_for("dev", modelVersion="3", modelSource="s3://bucket/model"))
    assert "modelSource: 's3://bucket/model' is not in this cloud's artifact store; expected gs://" in message


def test_a_model_outside_the_stacks_bucket_is_refused() -> None:
    """The API's grant covers its own bucket's model prefix: a pin elsewhere (another stack's bucket, which
    would cross environments) would only fail at the API's first start."""
    other = "gs://acme-ml-gcp-prod-mlflow/mlflow/1/models/m-1/artifacts"
    message = fails_before_anything(config_for("dev", modelVersion="1", modelSource=other), pulumi.RunError)
    assert message.startswith("stack 'gcp-dev' has 1 config problem(s):")
    assert (
        f"modelSource: '{other}' is not under this stack's artifact root gs://acme-ml-gcp-dev-mlflow/mlflow"
        in (message)
    )
    assert "scripts/promote.py --print-pin" in message


def test_a_repository_whose_retrain_subject_is_too_long_for_federation_is_refused() -> None:
    """The retrain identity's subject (`repo:R:environment:retrain-dev`) is dev's longest: a repository one
    byte too long for it is refused before anything, though the deploy and preview subjects would fit."""
    fits = 127 - len("repo::environment:retrain-dev")
    repository = "o" * 39 + "/" + "r" * (fits - 40 + 1)
    message = fails_before_anything(config_for("dev", githubRepository=repository))
    assert "makes the retrain identity's OIDC subject 128 bytes long, over the 127" in message
    assert "deploy identity" not in message
    assert "preview identity" not in message
    load_stack_settings(read=config_for("dev", githubRepository=repository[:-1]).get, stack="gcp-dev")
