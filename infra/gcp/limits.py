"""Google Cloud's documented limits on what the GCP program sends, as data (checked by `infra.limits`).

Every name we choose, every number with a documented range and every combination Cloud Run restricts, with
the page that says so. `infra/tests/gcp/test_limits.py` runs every example stack and the longest names config
accepts against this table; `infra.config` reads `CLOUD_RUN_MEMORY_MIB` to refuse sizes before any resource.
"""

import re
from collections.abc import Mapping
from typing import Any

from infra.limits import CombinationRule, NameRule, RangeRule, Rule

LABELS_DOC = "https://cloud.google.com/resource-manager/docs/labels-overview#requirements"
PROBES_DOC = "https://cloud.google.com/run/docs/configuring/healthchecks#startup-probes"
MEMORY_DOC = "https://cloud.google.com/run/docs/configuring/services/memory-limits"
SERVICE = "gcp:cloudrunv2/service:Service"
# Startup probes: failureThreshold x periodSeconds may not exceed 240 s for services (job docs allow 600 s;
# the service API enforces 240).
STARTUP_PROBE_MAX_SECONDS = 240
# Memory a Cloud Run instance with this many CPUs may have (MiB): at most 4 GiB per CPU (1 CPU: 512 MiB-4 GiB,
# 2 CPUs: up to 8 GiB), and 4 CPUs need at least 2 GiB, 8 CPUs at least 4 GiB (memory limits page, "CPU
# and memory minimums").
CLOUD_RUN_MEMORY_MIB: Mapping[int, tuple[int, int]] = {
    1: (512, 4096),
    2: (512, 8192),
    4: (2048, 16384),
    8: (4096, 32768),
}
LABEL = re.compile(r"[a-z0-9_-]{0,63}")
LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")


def _labels(inputs: Mapping[str, Any], field: str) -> str | None:
    labels = inputs.get(field) or {}
    for key, value in labels.items():
        if not LABEL_KEY.fullmatch(key) or not LABEL.fullmatch(str(value)):
            return (
                f"label {key}={value!r} breaks the rules: lowercase letters, digits, _ and -, 63 characters"
            )
    if len(labels) > 64:
        return f"has {len(labels)} labels; at most 64"
    return None


def _template_labels(inputs: Mapping[str, Any]) -> str | None:
    return _labels(inputs.get("template") or {}, "labels") or _labels(inputs, "labels")


def _startup_probe_budget(inputs: Mapping[str, Any]) -> str | None:
    for container in (inputs.get("template") or {}).get("containers") or []:
        probe = container.get("startupProbe") or {}
        budget = int(probe.get("failureThreshold", 3)) * int(probe.get("periodSeconds", 10))
        if budget > STARTUP_PROBE_MAX_SECONDS:
            limit = STARTUP_PROBE_MAX_SECONDS
            return f"startup probe allows {budget} s (failureThreshold x periodSeconds); at most {limit}"
    return None


def memory_mib(text: str) -> int:
    """`512Mi` / `2Gi` -> MiB."""
    number = int(re.sub(r"\D", "", text))
    return number * 1024 if text.endswith("Gi") else number


def _cpu_memory(inputs: Mapping[str, Any]) -> str | None:
    for container in (inputs.get("template") or {}).get("containers") or []:
        limits = (container.get("resources") or {}).get("limits") or {}
        cpu, memory = int(float(limits.get("cpu", "1"))), memory_mib(limits.get("memory", "512Mi"))
        if cpu not in CLOUD_RUN_MEMORY_MIB:
            return f"{cpu} CPUs is not a Cloud Run size"
        low, high = CLOUD_RUN_MEMORY_MIB[cpu]
        if not low <= memory <= high:
            return f"{cpu} CPU with {memory} MiB; Cloud Run takes {low}-{high} MiB"
    return None


RULES: tuple[Rule, ...] = (
    NameRule(
        "gcp:storage/bucket:Bucket",
        "name",
        63,
        re.compile(r"[a-z0-9][a-z0-9._-]*[a-z0-9]"),
        "lowercase letters, digits, '-', '_', '.', starting and ending with a letter or digit",
        "https://cloud.google.com/storage/docs/buckets#naming",
        min_length=3,
    ),
    NameRule(
        "gcp:serviceaccount/account:Account",
        "accountId",
        30,
        re.compile(r"[a-z][a-z0-9-]*[a-z0-9]"),
        "lowercase letters, digits and '-', starting with a letter",
        "https://cloud.google.com/iam/docs/service-accounts-create#creating",
        min_length=6,
    ),
    NameRule(
        "gcp:serviceaccount/account:Account",
        "displayName",
        100,
        re.compile(r".+"),
        "any characters",
        "https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts#ServiceAccount",
    ),
    NameRule(
        SERVICE,
        "name",
        49,
        re.compile(r"[a-z]([a-z0-9-]*[a-z0-9])?"),
        "lowercase letters, digits and '-', starting with a letter, not ending with '-'",
        "https://cloud.google.com/run/docs/resource-model#services",
    ),
    NameRule(
        "gcp:sql/databaseInstance:DatabaseInstance",
        "name",
        # project id (at most 30) + instance id may be at most 98 characters; we keep instance ids short
        # enough for the longest project id.
        68,
        re.compile(r"[a-z]([a-z0-9-]*[a-z0-9])?"),
        "lowercase letters, digits and '-', starting with a letter",
        "https://cloud.google.com/sql/docs/postgres/instance-settings#settings-2ndgen",
    ),
    NameRule(
        "gcp:secretmanager/secret:Secret",
        "secretId",
        255,
        re.compile(r"[A-Za-z0-9_-]+"),
        "letters, digits, '_' and '-'",
        "https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets/create",
    ),
    NameRule(
        "gcp:artifactregistry/repository:Repository",
        "repositoryId",
        63,
        re.compile(r"[a-z]([a-z0-9-]*[a-z0-9])?"),
        "lowercase letters, digits and '-', starting with a letter",
        "https://cloud.google.com/artifact-registry/docs/repositories/create-repos",
    ),
    NameRule(
        "gcp:iam/workloadIdentityPool:WorkloadIdentityPool",
        "workloadIdentityPoolId",
        32,
        re.compile(r"(?!gcp-)[a-z0-9-]+"),
        "lowercase letters, digits and '-', not starting with 'gcp-'",
        "https://cloud.google.com/iam/docs/reference/rest/v1/projects.locations.workloadIdentityPools/create",
        min_length=4,
    ),
    NameRule(
        "gcp:iam/workloadIdentityPool:WorkloadIdentityPool",
        "displayName",
        32,
        re.compile(r".+"),
        "any characters",
        "https://cloud.google.com/iam/docs/reference/rest/v1/projects.locations.workloadIdentityPools",
    ),
    NameRule(
        "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider",
        "workloadIdentityPoolProviderId",
        32,
        re.compile(r"(?!gcp-)[a-z0-9-]+"),
        "lowercase letters, digits and '-', not starting with 'gcp-'",
        "https://cloud.google.com/iam/docs/reference/rest/v1/projects.locations.workloadIdentityPools.providers/create",
        min_length=4,
    ),
    CombinationRule(
        "gcp:storage/bucket:Bucket", "labels", lambda i: _labels(i, "labels"), "label rules", LABELS_DOC
    ),
    CombinationRule(SERVICE, "labels", _template_labels, "label rules", LABELS_DOC),
    CombinationRule(
        "gcp:secretmanager/secret:Secret", "labels", lambda i: _labels(i, "labels"), "label rules", LABELS_DOC
    ),
    CombinationRule(
        "gcp:artifactregistry/repository:Repository",
        "labels",
        lambda i: _labels(i, "labels"),
        "label rules",
        LABELS_DOC,
    ),
    CombinationRule(
        "gcp:sql/databaseInstance:DatabaseInstance",
        "settings.userLabels",
        lambda i: _labels(i.get("settings") or {}, "userLabels"),
        "label rules",
        LABELS_DOC,
    ),
    CombinationRule(
        SERVICE, "template.containers[].startupProbe", _startup_probe_budget, "startup budget", PROBES_DOC
    ),
    CombinationRule(
        SERVICE, "template.containers[].resources.limits", _cpu_memory, "CPU and memory", MEMORY_DOC
    ),
    RangeRule(
        SERVICE,
        "template.scaling.maxInstanceCount",
        1,
        1000,
        "instances per revision",
        "https://cloud.google.com/run/docs/configuring/max-instances",
    ),
    RangeRule(
        SERVICE,
        "template.timeout",
        1,
        3600,
        "seconds a request may take",
        "https://cloud.google.com/run/docs/configuring/request-timeout",
        parse=lambda value: float(str(value).removesuffix("s")),
    ),
    RangeRule(
        "gcp:sql/databaseInstance:DatabaseInstance",
        "settings.backupConfiguration.backupRetentionSettings.retainedBackups",
        1,
        365,
        "automated backups kept",
        "https://cloud.google.com/sql/docs/postgres/backup-recovery/backups#retention",
    ),
)
