"""Stack settings: defaults per environment, and every kind of bad config reported at once."""

import re
from collections.abc import Mapping

import pytest
import yaml

from infra.config import (
    KEYS,
    MODEL_ENVIRONMENTS,
    PROJECT_KEYS,
    STATIC_DEFAULTS,
    ApiAuth,
    Cloud,
    ConfigError,
    Environment,
)
from infra.platform import load_stack_settings
from infra.tests.paths import REPOSITORY_ROOT

GOOD = {
    "mlops-stack:cloud": "gcp",
    "mlops-stack:environment": "dev",
    "mlops-stack:githubRepository": "acme-ml/mlops-stack",
    "gcp:project": "my-project",
    "gcp:region": "europe-west1",
}


def settings_from(values: Mapping[str, str], stack: str = "gcp-dev"):
    return load_stack_settings(read=values.get, stack=stack)


def problems_of(values: Mapping[str, str], stack: str = "gcp-dev") -> list[str]:
    with pytest.raises(ConfigError) as raised:
        settings_from(values, stack)
    return raised.value.problems


def test_a_minimal_dev_stack_gets_the_dev_defaults():
    settings = settings_from(GOOD)
    assert settings.cloud is Cloud.GCP
    assert settings.environment is Environment.DEV
    assert settings.gcp_project == "my-project"
    assert settings.region == "europe-west1"
    assert settings.protect is False
    assert settings.api.min_instances == 0  # scale to zero
    assert settings.tracking.min_instances == 0
    assert settings.api.max_instances == int(KEYS["apiMaxInstances"].default_for(Environment.DEV) or 0) == 2
    assert settings.api_auth is ApiAuth.API_KEY
    assert settings.github_environment == "dev"
    assert settings.model is None
    assert settings.database_tier == "db-f1-micro"


def test_prod_is_protected_and_keeps_an_instance_warm():
    settings = settings_from({**GOOD, "mlops-stack:environment": "prod"}, stack="gcp-prod")
    assert settings.protect is True
    assert settings.backups is True
    assert settings.api.min_instances == 1


def test_a_sandbox_needs_an_expiry_and_a_sandbox_name():
    values = {
        **GOOD,
        "mlops-stack:environment": "sandbox",
        "mlops-stack:sandboxExpiresAt": "2026-12-01T18:00:00Z",
    }
    settings = settings_from(values, stack="gcp-sandbox-pr12")
    assert settings.is_sandbox
    assert settings.sandbox_expires_at is not None
    assert settings.sandbox_expires_at.isoformat() == "2026-12-01T18:00:00+00:00"

    problems = problems_of({**values, "mlops-stack:sandboxExpiresAt": ""}, stack="gcp-dev")
    assert any("sandboxExpiresAt: is not set" in p for p in problems)
    assert any("not named <cloud>-sandbox-<id>" in p for p in problems)


def test_a_sandbox_can_not_be_protected():
    values = {
        **GOOD,
        "mlops-stack:environment": "sandbox",
        "mlops-stack:sandboxExpiresAt": "2026-12-01T18:00:00Z",
        "mlops-stack:protect": "true",
    }
    assert any("protect: is true on a sandbox" in p for p in problems_of(values, "gcp-sandbox-a"))


def test_only_sandboxes_expire():
    values = {**GOOD, "mlops-stack:sandboxExpiresAt": "2026-12-01T18:00:00Z"}
    assert any("only sandboxes expire" in p for p in problems_of(values))


def test_every_problem_is_reported_at_once_with_how_to_fix_it():
    values = {
        "mlops-stack:cloud": "gcp",
        "mlops-stack:environment": "qa",
        "mlops-stack:githubRepository": "not a repo",
        "mlops-stack:apiCpu": "3",
        "mlops-stack:trackingMinInstances": "5",
        "mlops-stack:trackingMaxInstances": "2",
        "mlops-stack:protect": "maybe",
        "mlops-stack:apiImage": "my-image:latest",
    }
    with pytest.raises(ConfigError) as raised:
        settings_from(values)
    message = str(raised.value)
    expected = [
        "mlops-stack:environment: 'qa' is not one of dev, staging, prod, sandbox",
        "gcp:project: is not set; pulumi config set gcp:project",
        "gcp:region: is not set",
        "mlops-stack:githubRepository: 'not a repo' is malformed",
        "mlops-stack:apiCpu: 3 CPUs is not a size this cloud offers; Cloud Run takes 1 CPU with 512-4096 MiB",
        "mlops-stack:trackingMinInstances: 5 is more than trackingMaxInstances (2)",
        "mlops-stack:protect: 'maybe' is not true or false",
        "mlops-stack:apiImage: 'my-image:latest' is malformed; expected an image pinned by digest",
    ]
    for line in expected:
        assert line in message, f"{line!r} missing from:\n{message}"
    assert message.startswith("stack 'gcp-dev' has 8 config problem(s)")


def test_unknown_and_missing_cloud_say_which_clouds_exist():
    assert problems_of({**GOOD, "mlops-stack:cloud": "oracle"})[0].startswith(
        "mlops-stack:cloud: 'oracle' is not one of gcp, aws, azure"
    )
    missing = {k: v for k, v in GOOD.items() if k != "mlops-stack:cloud"}
    assert "mlops-stack:cloud: is not set" in problems_of(missing)[0]


def test_the_stack_name_must_match_the_cloud():
    assert any("name it gcp-<env>" in p for p in problems_of(GOOD, stack="aws-dev"))


@pytest.mark.parametrize(
    ("cloud", "region_keys", "cpu", "memory", "message"),
    [
        ("aws", {"aws:region": "eu-west-1"}, "0.5", "512", "512 MiB does not fit 0.5 CPU; Fargate takes"),
        ("azure", {"azure-native:location": "westeurope"}, "1", "1024", "1024 MiB does not fit 1 CPU"),
        ("gcp", {"gcp:project": "p", "gcp:region": "r"}, "1", "8192", "8192 MiB does not fit 1 CPU"),
        # Cloud Run's minimums: 4 CPUs need 2 GiB, 8 CPUs need 4 GiB.
        ("gcp", {"gcp:project": "p", "gcp:region": "r"}, "4", "1024", "1024 MiB does not fit 4 CPU"),
        ("gcp", {"gcp:project": "p", "gcp:region": "r"}, "8", "2048", "2048 MiB does not fit 8 CPU"),
    ],
)
def test_sizes_follow_each_clouds_rules(cloud, region_keys, cpu, memory, message):
    values = {
        "mlops-stack:cloud": cloud,
        "mlops-stack:environment": "dev",
        "mlops-stack:githubRepository": "o/r",
        "mlops-stack:trackingCpu": cpu,
        "mlops-stack:trackingMemoryMiB": memory,
        **region_keys,
    }
    assert any(message in p for p in problems_of(values, stack=f"{cloud}-dev"))


def test_the_model_pin_needs_both_halves_and_this_clouds_store():
    assert any("modelSource: is not set" in p for p in problems_of({**GOOD, "mlops-stack:modelVersion": "3"}))
    wrong_store = {**GOOD, "mlops-stack:modelVersion": "3", "mlops-stack:modelSource": "s3://b/m"}
    assert any("expected gs://" in p for p in problems_of(wrong_store))
    pinned = settings_from(
        {
            **wrong_store,
            "mlops-stack:modelVersion": "1",
            "mlops-stack:modelSource": "gs://b/mlflow/1/models/m-1/artifacts",
        }
    )
    assert pinned.model is not None
    assert (pinned.model.name, pinned.model.version) == ("throughput", 1)
    assert pinned.model.environment == MODEL_ENVIRONMENTS / "throughput" / "1"


def test_a_pinned_version_needs_its_requirements_unless_its_image_is_prebuilt():
    """The API image installs the pinned version's own requirements, kept in the repository."""
    pin = {**GOOD, "mlops-stack:modelVersion": "2", "mlops-stack:modelSource": "gs://b/mlflow/1/models/m-2/a"}
    [problem] = problems_of(pin)
    assert problem.startswith(
        "mlops-stack:modelVersion: stacks/models/throughput/2/requirements.txt is missing"
    )
    assert "scripts.promote --print-pin --save-requirements" in problem
    prebuilt = {**pin, "mlops-stack:apiImage": "r.example/api@sha256:" + "a" * 64}
    assert settings_from(prebuilt).api_image == prebuilt["mlops-stack:apiImage"]


def test_iam_auth_is_gcp_only():
    values = {
        "mlops-stack:cloud": "aws",
        "mlops-stack:environment": "dev",
        "mlops-stack:githubRepository": "o/r",
        "aws:region": "eu-west-1",
        "mlops-stack:apiAuth": "iam",
    }
    assert any("iam is only available on GCP" in p for p in problems_of(values, stack="aws-dev"))


# What `pulumi preview` checks before our program runs (pulumi/pulumi pkg/workspace/config.go,
# mergeConfig and validateStackConfigValue; sdk/go/common/workspace/project.go, ValidateConfigValue):
# a project key declared without `default` or `value` must be set by the stack, and a typed key's value
# (always a string in the stack's config map) must parse as its type.
def pulumi_config_errors(project: Mapping, stack_config: Mapping) -> list[str]:
    errors = []
    name = project["name"]
    for key, spec in project.get("config", {}).items():
        full = key if ":" in key else f"{name}:{key}"
        if full.split(":")[0] != name:
            continue
        value = stack_config.get(full)
        if value is None:
            if "default" not in spec and "value" not in spec:
                errors.append(f"missing configuration value '{key}'")
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        kind = spec.get("type")
        if (kind == "integer" and not text.lstrip("-").isdigit()) or (
            kind == "boolean" and text not in ("true", "false")
        ):
            errors.append(f"configuration key '{key}' must be of type '{kind}'")
    return errors


def project_file() -> dict:
    return yaml.safe_load((REPOSITORY_ROOT / "Pulumi.yaml").read_text())


def example_stacks() -> list[tuple[str, dict]]:
    stacks = []
    for path in sorted((REPOSITORY_ROOT / "stacks").glob("Pulumi.*.yaml")):
        stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
        stacks.append((stack, yaml.safe_load(path.read_text())["config"]))
    return stacks


def test_pulumis_rule_catches_a_typed_key_without_a_default():
    project = {"name": "mlops-stack", "config": {"apiCpu": {"type": "string"}, "modelName": {"default": "x"}}}
    assert pulumi_config_errors(project, {}) == ["missing configuration value 'apiCpu'"]
    assert pulumi_config_errors(project, {"mlops-stack:apiCpu": "1"}) == []


def test_pulumi_yaml_declares_only_keys_the_program_reads_each_with_the_programs_default():
    declared = project_file()["config"]
    assert set(declared) <= set(PROJECT_KEYS)
    assert set(declared) == set(STATIC_DEFAULTS)
    for key, spec in declared.items():
        assert spec.get("description"), f"{key} has no description"
        assert spec.get("type") in ("string", "integer", "boolean"), key
        assert str(spec["default"]).lower() == STATIC_DEFAULTS[key].lower(), key


@pytest.mark.parametrize(("stack", "config"), example_stacks(), ids=lambda value: str(value)[:20])
def test_every_example_stack_passes_pulumis_own_config_check(stack: str, config: dict) -> None:
    assert pulumi_config_errors(project_file(), config) == [], stack


def test_a_minimal_stack_and_a_sandbox_pass_pulumis_own_config_check():
    sandbox = {
        **GOOD,
        "mlops-stack:environment": "sandbox",
        "mlops-stack:sandboxExpiresAt": "2026-12-01T18:00:00Z",
    }
    for config in (GOOD, sandbox):
        assert pulumi_config_errors(project_file(), config) == []


def test_committed_example_stacks_are_refused_only_for_the_placeholder_repository_and_hold_no_secret():
    for stack, config in example_stacks():
        assert not any(isinstance(v, dict) and "secure" in v for v in config.values()), stack
        values = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in config.items()}
        problems = problems_of(values, stack)
        assert len(problems) == 1, problems
        assert problems[0].startswith("mlops-stack:githubRepository: is the example's placeholder"), problems
        assert "pulumi config set mlops-stack:githubRepository <your-org>/<your-repo>" in problems[0]
        values["mlops-stack:githubRepository"] = "acme-ml/mlops-stack"
        assert settings_from(values, stack).stack == stack


def test_state_locations_must_come_in_pairs_in_this_clouds_schemes():
    gcp_state = {
        "mlops-stack:stateBackend": "gs://acme-ml-state-dev",
        "mlops-stack:stateSecretsProvider": "gcpkms://projects/acme-ml/locations/europe-west1/keyRings/"
        "mlops-stack/cryptoKeys/pulumi-secrets-dev",
    }
    state = settings_from({**GOOD, **gcp_state}).state
    assert state is not None
    assert state.bucket == "acme-ml-state-dev"
    assert (
        state.key
        == "projects/acme-ml/locations/europe-west1/keyRings/mlops-stack/cryptoKeys/pulumi-secrets-dev"
    )
    assert settings_from(GOOD).state is None
    half = problems_of({**GOOD, "mlops-stack:stateBackend": "gs://acme-ml-state-dev"})
    assert half == [
        "mlops-stack:stateSecretsProvider: is not set but the other one is; "
        "set both to what scripts/bootstrap.py printed for this environment"
    ]
    wrong = problems_of({**GOOD, **gcp_state, "mlops-stack:stateBackend": "s3://acme-state?region=eu-west-1"})
    assert wrong == [
        "mlops-stack:stateBackend: 's3://acme-state?region=eu-west-1' is not a gcp state backend; expected gs://…"
    ]
    aws = settings_from(
        {
            **GOOD,
            "mlops-stack:cloud": "aws",
            "aws:region": "eu-west-1",
            "mlops-stack:stateBackend": "s3://acme-state-dev?region=eu-west-1&awssdk=v2",
            "mlops-stack:stateSecretsProvider": "awskms://alias/mlops-stack-pulumi-secrets-dev?region=eu-west-1",
        },
        stack="aws-dev",
    ).state
    assert aws is not None
    assert (aws.bucket, aws.backend_query["region"], aws.key) == (
        "acme-state-dev",
        "eu-west-1",
        "alias/mlops-stack-pulumi-secrets-dev",
    )


def test_only_a_dev_stack_may_host_sandboxes_and_only_it_takes_sandbox_state():
    assert settings_from({**GOOD, "mlops-stack:sandboxes": "true"}).hosts_sandboxes is True
    prod = {**GOOD, "mlops-stack:environment": "prod", "mlops-stack:sandboxes": "true"}
    assert any(
        p.startswith("mlops-stack:sandboxes: is true on a prod stack") for p in problems_of(prod, "gcp-prod")
    )
    stray = {
        **GOOD,
        "mlops-stack:sandboxStateBackend": "gs://acme-ml-state-sandbox",
        "mlops-stack:sandboxStateSecretsProvider": "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k",
    }
    assert any("sandboxes is not true" in p for p in problems_of(stray))
    hosted = settings_from({**stray, "mlops-stack:sandboxes": "true"}).sandbox_state
    assert hosted is not None
    assert hosted.bucket == "acme-ml-state-sandbox"


def test_the_readme_documents_every_key_the_program_reads():
    """Pulumi.yaml holds only keys with a static default; the README's table is where users find the rest."""
    readme = (REPOSITORY_ROOT / "README.md").read_text()
    table = readme.split("Every key (`mlops-stack:` namespace):", 1)[1].split("\n\n", 2)[1]
    documented = {key for row in table.splitlines() for key in re.findall(r"`(\w+)`", row.split("|")[1])}
    assert set(PROJECT_KEYS) - documented == set()
