"""One config key, one policy, on every cloud.

Each cloud spells a policy in its own resources; these tests read it back from what each program would send
and hold it to the one meaning the key has in `infra/config.py`, so a cloud cannot drift away on its own
(as AWS once kept overwritten artifacts a fixed 30 days, and Azure ignored `registryKeepImages`).
"""

import base64
import json
import shlex
from collections.abc import Callable

import pytest

from infra.tests.aws.conftest import config_for as aws_config
from infra.tests.aws.conftest import run_aws
from infra.tests.azure.conftest import STACKS as AZURE_STACKS
from infra.tests.azure.conftest import config_for as azure_config
from infra.tests.azure.conftest import run_azure
from infra.tests.gcp.conftest import run_gcp
from testing.pulumi_program import ProgramRun

# Not any cloud's default, so a hard-coded value cannot pass.
RECOVERY_DAYS = 21
KEEP_IMAGES = 4
OVERRIDES = {"backupRetentionDays": str(RECOVERY_DAYS), "registryKeepImages": str(KEEP_IMAGES)}


def gcp_run(environment: str) -> ProgramRun:
    return run_gcp(environment, **OVERRIDES)


def aws_run(environment: str) -> ProgramRun:
    return run_aws(environment, aws_config(environment, **OVERRIDES))


def azure_run(environment: str) -> ProgramRun:
    return run_azure(azure_config(environment, **OVERRIDES), AZURE_STACKS[environment]).run


def gcp_recovery_days(run: ProgramRun) -> int:
    [rule] = [
        rule
        for rule in run.one("gcp:storage/bucket:Bucket").inputs["lifecycleRules"]
        if rule["action"]["type"] == "Delete" and "daysSinceNoncurrentTime" in rule["condition"]
    ]
    return int(rule["condition"]["daysSinceNoncurrentTime"])


def aws_recovery_days(run: ProgramRun) -> int:
    [rule] = run.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"]
    return int(rule["noncurrentVersionExpiration"]["noncurrentDays"])


def azure_recovery_days(run: ProgramRun) -> int:
    service = run.one("azure-native:storage:BlobServiceProperties").inputs
    assert service["isVersioningEnabled"] is True
    assert service["containerDeleteRetentionPolicy"] == service["deleteRetentionPolicy"]
    return int(service["deleteRetentionPolicy"]["days"])


def gcp_kept_images(run: ProgramRun) -> int:
    """KEEP beats DELETE in Artifact Registry: the newest N versions stay, every other one goes."""
    policies = {
        p["action"]: p
        for p in run.one("gcp:artifactregistry/repository:Repository").inputs["cleanupPolicies"]
    }
    assert policies["DELETE"]["condition"] == {"tagState": "ANY"}
    return int(policies["KEEP"]["mostRecentVersions"]["keepCount"])


def aws_kept_images(run: ProgramRun) -> int:
    counts = set()
    for repository in run.of_type("aws:ecr/lifecyclePolicy:LifecyclePolicy"):
        [rule] = json.loads(repository.inputs["policy"])["rules"]
        assert rule["selection"]["tagStatus"] == "any"
        assert rule["action"] == {"type": "expire"}
        counts.add(rule["selection"]["countNumber"])
    [count] = counts
    return int(count)


def azure_kept_images(run: ProgramRun) -> int:
    task = run.one("azure-native:containerregistry:Task").inputs
    assert task["status"] == "Enabled"
    [trigger] = task["trigger"]["timerTriggers"]
    assert len(trigger["schedule"].split()) == 5, "ACR timer triggers take five-field cron"
    [step] = json.loads(base64.b64decode(task["step"]["encodedTaskContent"]))["steps"]
    command = shlex.split(step["cmd"])
    assert command[:2] == ["acr", "purge"]
    assert command[command.index("--filter") + 1] == ".*:.*", "every repository"
    assert command[command.index("--ago") + 1] == "0d", "age is no reason to keep an image"
    assert "--untagged" in command, "untagged manifests hold the storage"
    return int(command[command.index("--keep") + 1])


Cloud = tuple[Callable[[str], ProgramRun], Callable[[ProgramRun], int], Callable[[ProgramRun], int]]
CLOUDS: dict[str, Cloud] = {
    "gcp": (gcp_run, gcp_recovery_days, gcp_kept_images),
    "aws": (aws_run, aws_recovery_days, aws_kept_images),
    "azure": (azure_run, azure_recovery_days, azure_kept_images),
}


@pytest.mark.parametrize("environment", ["dev", "prod"])
@pytest.mark.parametrize("cloud", sorted(CLOUDS))
def test_overwritten_artifacts_stay_recoverable_while_backups_are_kept(cloud: str, environment: str) -> None:
    """So restoring the database to its oldest backup still finds that point's artifacts."""
    run_for, recovery_days, _ = CLOUDS[cloud]
    assert recovery_days(run_for(environment)) == RECOVERY_DAYS


@pytest.mark.parametrize("environment", ["dev", "prod", "sandbox"])
@pytest.mark.parametrize("cloud", sorted(CLOUDS))
def test_each_registry_keeps_the_newest_images_it_is_told_to(cloud: str, environment: str) -> None:
    run_for, _, kept_images = CLOUDS[cloud]
    assert kept_images(run_for(environment)) == KEEP_IMAGES
