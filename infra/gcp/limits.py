"""Google Cloud's documented limits on what the GCP program sends, as data for `infra.limits`.

Every name we choose, every number with a documented range and every combination Cloud Run or Cloud SQL
restricts, each with the page that says so. `infra/tests/gcp/test_limits.py` runs every committed GCP example
stack, and dev/prod/sandbox with the longest names config accepts, against this table and checks that every
rule found something to check. Config (`infra.config`) refuses the values these rules depend on before any
resource exists, through `CONFIG_RULES` at the end: Cloud Run sizes (`CLOUD_RUN_MEMORY_MIB`), the region
format, the state and artifact schemes, database tiers; names we build are hashed down to their limits
(`infra.naming.short_name`), which the longest-names test proves.
"""

import re
from collections.abc import Callable, Mapping
from typing import Any

from infra.config import CloudRules, RegionFormat
from infra.gcp.cloud_run import HTTP2_END_TO_END, STARTUP_PROBE_BUDGET_SECONDS
from infra.limits import CombinationRule, NameRule, RangeRule, Rule

SERVICE = "gcp:cloudrunv2/service:Service"
BUCKET = "gcp:storage/bucket:Bucket"
ACCOUNT = "gcp:serviceaccount/account:Account"
INSTANCE = "gcp:sql/databaseInstance:DatabaseInstance"
SECRET = "gcp:secretmanager/secret:Secret"  # noqa: S105 (a type token)
REPOSITORY = "gcp:artifactregistry/repository:Repository"
POOL = "gcp:iam/workloadIdentityPool:WorkloadIdentityPool"
PROVIDER = "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider"

RUN_CREATE_DOC = "https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services/create"
RUN_PROBE_DOC = "https://cloud.google.com/run/docs/reference/rest/v2/Container#Probe"
HEALTHCHECKS_DOC = "https://cloud.google.com/run/docs/configuring/healthchecks"
LABELS_DOC = "https://cloud.google.com/resource-manager/docs/labels-overview#requirements"
POOLS_DOC = "https://cloud.google.com/iam/docs/reference/rest/v1/projects.locations.workloadIdentityPools"
PROVIDERS_DOC = (
    "https://cloud.google.com/iam/docs/reference/rest/v1/projects.locations.workloadIdentityPools.providers"
)
ACCOUNTS_DOC = "https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts"
SQL_SETTINGS_DOC = "https://cloud.google.com/sql/docs/postgres/instance-settings"
SQL_BACKUPS_DOC = "https://cloud.google.com/sql/docs/postgres/backup-recovery/backups"
SQL_EDITIONS_DOC = "https://cloud.google.com/sql/docs/editions-intro"

# Cloud Run services, by whole CPUs (fractions force concurrency 1 and the first-generation environment):
# the memory each accepts, in MiB. https://cloud.google.com/run/docs/configuring/services/cpu ("4 vCPU: 2 to
# 16 GiB, 6 vCPU: 4 to 24 GiB, 8 vCPU: 4 to 32 GiB", 1 and 2 vCPU up to 4 and 8 GiB) and
# https://cloud.google.com/run/docs/configuring/services/memory-limits (at least 512 MiB in the second-
# generation environment; more than 4/8/16/24 GiB needs 2/4/6/8 CPUs), in 128 MiB steps.
CLOUD_RUN_MEMORY_MIB: Mapping[int, tuple[int, int]] = {
    1: (512, 4096),
    2: (512, 8192),
    4: (2048, 16384),
    6: (4096, 24576),
    8: (4096, 32768),
}
CLOUD_RUN_MEMORY_STEP_MIB = 128
CLOUD_RUN_MEMORY_DOC = "https://cloud.google.com/run/docs/configuring/services/cpu"
# The tracking server stages every proxied artifact (uploads below MLflow's 500 MB multipart threshold,
# downloads of any size) in its filesystem, which Cloud Run keeps in the instance's memory (memory-limits
# page: "writing files to the filesystem" counts). 2 GiB: ~500 MiB for the server and a 600 MiB model in
# flight with room to spare; raise trackingMemoryMiB for bigger models.
CLOUD_RUN_TRACKING_MEMORY_MIB = 2048

LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
MAX_LABELS = 64
ANY_TEXT = re.compile(r"(?s).*")
# PostgreSQL truncates identifiers beyond NAMEDATALEN - 1 = 63 bytes.
POSTGRES_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_$]*")
POSTGRES_IDENTIFIERS_DOC = "https://www.postgresql.org/docs/16/sql-syntax-lexical.html#SQL-SYNTAX-IDENTIFIERS"
SHARED_CORE_TIERS = ("db-f1-micro", "db-g1-small")
# Point-in-time recovery keeps at most 7 days of transaction logs in Enterprise, 35 in Enterprise Plus.
TRANSACTION_LOG_DAYS = {"ENTERPRISE": 7, "ENTERPRISE_PLUS": 35}


def _containers(inputs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((inputs.get("template") or {}).get("containers") or [])


def memory_mib(text: str) -> int:
    """A Kubernetes-style quantity as Cloud Run takes it (`512Mi`, `2Gi`) in MiB."""
    match = re.fullmatch(r"(\d+)(Mi|Gi)", text)
    if match is None:
        raise ValueError(f"{text!r} is not a quantity in Mi or Gi")
    return int(match.group(1)) * (1024 if match.group(2) == "Gi" else 1)


def seconds(text: Any) -> float:
    """A protobuf Duration as the provider takes it (`900s`) in seconds."""
    return float(str(text).removesuffix("s"))


def _cpu_and_memory(inputs: Mapping[str, Any]) -> str | None:
    for container in _containers(inputs):
        limits = (container.get("resources") or {}).get("limits") or {}
        cpu, memory = float(limits.get("cpu", "1")), memory_mib(limits.get("memory", "512Mi"))
        if cpu not in CLOUD_RUN_MEMORY_MIB:
            return f"has {cpu:g} CPUs; Cloud Run takes {', '.join(map(str, CLOUD_RUN_MEMORY_MIB))} (whole)"
        low, high = CLOUD_RUN_MEMORY_MIB[int(cpu)]
        if not low <= memory <= high:
            return f"has {cpu:g} CPU with {memory} MiB; Cloud Run takes {low}-{high} MiB with {cpu:g} CPU"
    return None


def _startup_budget(inputs: Mapping[str, Any]) -> str | None:
    for container in _containers(inputs):
        probe = container.get("startupProbe")
        if probe:
            budget = int(probe.get("failureThreshold", 3)) * int(probe.get("periodSeconds", 10))
            if budget > STARTUP_PROBE_BUDGET_SECONDS:
                return f"startup probe allows {budget} s (failureThreshold x periodSeconds); at most 240"
    return None


def _probe_timeouts(inputs: Mapping[str, Any]) -> str | None:
    for container in _containers(inputs):
        for kind in ("startupProbe", "livenessProbe"):
            probe = container.get(kind)
            if probe and int(probe.get("timeoutSeconds", 1)) > int(probe.get("periodSeconds", 10)):
                return f"{kind} times out after {probe['timeoutSeconds']} s, longer than its period"
    return None


def _http_probes_need_http1(inputs: Mapping[str, Any]) -> str | None:
    for container in _containers(inputs):
        ports = container.get("ports") or {}
        if ports.get("name") != HTTP2_END_TO_END:
            continue
        for kind in ("startupProbe", "livenessProbe"):
            if (container.get(kind) or {}).get("httpGet") is not None:
                return f"has an HTTP {kind} on an {HTTP2_END_TO_END} port; HTTP probes need an HTTP/1 service"
    return None


def _scaling(inputs: Mapping[str, Any]) -> str | None:
    scaling = (inputs.get("template") or {}).get("scaling") or {}
    low, high = scaling.get("minInstanceCount", 0), scaling.get("maxInstanceCount")
    if high is not None and low > high:
        return f"scales from {low} to {high} instances"
    return None


def _labels_of(*paths: tuple[str, ...]) -> Callable[[Mapping[str, Any]], str | None]:
    """A check of the label maps at `paths` (key lists into the inputs)."""

    def check(inputs: Mapping[str, Any]) -> str | None:
        for path in paths:
            labels: Any = inputs
            for step in path:
                labels = (labels or {}).get(step)
            labels = labels or {}
            if len(labels) > MAX_LABELS:
                return f"has {len(labels)} labels; at most {MAX_LABELS}"
            for key, value in labels.items():
                if not LABEL_KEY.fullmatch(key):
                    return f"label key {key!r}: 1-63 lowercase letters, digits, '_' or '-', from a letter"
                if not LABEL_VALUE.fullmatch(str(value)):
                    return f"label {key}={value!r}: at most 63 lowercase letters, digits, '_' or '-'"
        return None

    return check


def _edition_and_tier(inputs: Mapping[str, Any]) -> str | None:
    settings = inputs.get("settings") or {}
    tier, edition = settings.get("tier", ""), settings.get("edition", "ENTERPRISE")
    if edition == "ENTERPRISE_PLUS" and not tier.startswith("db-perf-optimized"):
        return f"tier {tier} is not an Enterprise Plus machine type (db-perf-optimized-N-*)"
    if tier in SHARED_CORE_TIERS and edition != "ENTERPRISE":
        return f"shared-core tier {tier} exists in the Enterprise edition only"
    return None


def _transaction_logs(inputs: Mapping[str, Any]) -> str | None:
    settings = inputs.get("settings") or {}
    days = (settings.get("backupConfiguration") or {}).get("transactionLogRetentionDays")
    edition = settings.get("edition", "ENTERPRISE")
    if days is not None and not 1 <= days <= TRANSACTION_LOG_DAYS[edition]:
        return f"keeps {days} days of transaction logs; {edition} keeps 1-{TRANSACTION_LOG_DAYS[edition]}"
    return None


RULES: tuple[Rule, ...] = (
    # --- names -----------------------------------------------------------------------------------------
    NameRule(
        BUCKET,
        "name",
        63,
        re.compile(r"(?!goog)(?!.*g[o0][o0]gle)[a-z0-9][a-z0-9_-]*[a-z0-9]"),
        "lowercase letters, digits, '-' and '_', starting and ending with a letter or digit, no 'goog' "
        "prefix and no 'google' (names with dots, up to 222, are not used)",
        "https://cloud.google.com/storage/docs/buckets#naming",
        min_length=3,
    ),
    NameRule(
        ACCOUNT,
        "accountId",
        30,
        re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])"),
        "RFC 1035: a lowercase letter, then lowercase letters, digits and '-', not ending with '-'",
        f"{ACCOUNTS_DOC}/create",
        min_length=6,
    ),
    NameRule(ACCOUNT, "displayName", 100, ANY_TEXT, "at most 100 UTF-8 bytes", ACCOUNTS_DOC),
    NameRule(ACCOUNT, "description", 256, ANY_TEXT, "at most 256 UTF-8 bytes", ACCOUNTS_DOC),
    NameRule(
        SERVICE,
        "name",
        49,
        re.compile(r"[a-z]([a-z0-9-]*[a-z0-9])?"),
        "fewer than 50 lowercase letters, digits and '-', starting with a letter, not ending with '-'",
        RUN_CREATE_DOC,
    ),
    NameRule(
        INSTANCE,
        "name",
        98,
        re.compile(r"[a-z][a-z0-9-]*"),
        "lowercase letters, digits and '-', starting with a letter",
        SQL_SETTINGS_DOC,
    ),
    NameRule(
        "gcp:sql/database:Database",
        "name",
        63,
        POSTGRES_IDENTIFIER,
        "a PostgreSQL identifier that needs no quoting",
        POSTGRES_IDENTIFIERS_DOC,
    ),
    NameRule(
        "gcp:sql/user:User",
        "name",
        63,
        POSTGRES_IDENTIFIER,
        "a PostgreSQL identifier that needs no quoting",
        POSTGRES_IDENTIFIERS_DOC,
    ),
    NameRule(
        SECRET,
        "secretId",
        255,
        re.compile(r"[A-Za-z0-9_-]+"),
        "letters, digits, '-' and '_'",
        "https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets/create",
    ),
    NameRule(
        REPOSITORY,
        "repositoryId",
        63,
        re.compile(r"[a-z]([a-z0-9-]*[a-z0-9])?"),
        "lowercase letters, digits and '-', starting with a letter, ending with a letter or digit",
        "https://cloud.google.com/artifact-registry/docs/repositories/create-repos",
    ),
    NameRule(
        POOL,
        "workloadIdentityPoolId",
        32,
        re.compile(r"(?!gcp-)[a-z0-9-]+"),
        "lowercase letters, digits and '-'; the prefix gcp- is reserved",
        f"{POOLS_DOC}/create",
        min_length=4,
    ),
    NameRule(POOL, "displayName", 32, ANY_TEXT, "at most 32 characters", POOLS_DOC),
    NameRule(POOL, "description", 256, ANY_TEXT, "at most 256 characters", POOLS_DOC),
    NameRule(
        PROVIDER,
        "workloadIdentityPoolProviderId",
        32,
        re.compile(r"(?!gcp-)[a-z0-9-]+"),
        "lowercase letters, digits and '-'; the prefix gcp- is reserved",
        f"{PROVIDERS_DOC}/create",
        min_length=4,
    ),
    NameRule(PROVIDER, "displayName", 32, ANY_TEXT, "at most 32 characters", PROVIDERS_DOC),
    # --- labels ----------------------------------------------------------------------------------------
    *(
        CombinationRule(resource_type, where, _labels_of(*paths), "label keys and values", LABELS_DOC)
        for resource_type, where, paths in (
            (BUCKET, "labels", (("labels",),)),
            (REPOSITORY, "labels", (("labels",),)),
            (SECRET, "labels", (("labels",),)),
            (SERVICE, "labels, template.labels", (("labels",), ("template", "labels"))),
            (INSTANCE, "settings.userLabels", (("settings", "userLabels"),)),
        )
    ),
    # --- numbers ---------------------------------------------------------------------------------------
    RangeRule(
        SERVICE,
        "template.containers[].startupProbe.periodSeconds",
        1,
        240,
        "startup probes: 1-240 s",
        RUN_PROBE_DOC,
    ),
    RangeRule(
        SERVICE,
        "template.containers[].startupProbe.timeoutSeconds",
        1,
        240,
        "startup probes: 1-240 s",
        RUN_PROBE_DOC,
    ),
    RangeRule(
        SERVICE,
        "template.containers[].startupProbe.failureThreshold",
        1,
        float("inf"),
        "at least 1",
        RUN_PROBE_DOC,
    ),
    RangeRule(
        SERVICE,
        "template.containers[].livenessProbe.periodSeconds",
        1,
        3600,
        "liveness probes: 1-3600 s",
        RUN_PROBE_DOC,
    ),
    RangeRule(
        SERVICE,
        "template.containers[].ports.containerPort",
        1,
        65535,
        "a TCP port",
        "https://cloud.google.com/run/docs/reference/rest/v2/Container#ContainerPort",
    ),
    RangeRule(
        SERVICE,
        "template.timeout",
        1,
        3600,
        "requests may run up to 60 minutes",
        "https://cloud.google.com/run/docs/configuring/request-timeout",
        parse=seconds,
    ),
    RangeRule(
        SERVICE,
        "template.scaling.maxInstanceCount",
        1,
        1000,
        "1000 instances per revision unless a quota increase is granted",
        "https://cloud.google.com/run/quotas",
    ),
    RangeRule(
        INSTANCE,
        "settings.backupConfiguration.backupRetentionSettings.retainedBackups",
        1,
        365,
        "1-365 automated backups",
        SQL_BACKUPS_DOC,
    ),
    # --- combinations ----------------------------------------------------------------------------------
    CombinationRule(
        SERVICE,
        "template.containers[].resources.limits",
        _cpu_and_memory,
        "memory within what the CPU count allows",
        CLOUD_RUN_MEMORY_DOC,
    ),
    CombinationRule(
        SERVICE,
        "template.containers[].startupProbe",
        _startup_budget,
        "failureThreshold x periodSeconds at most 240 s (services; jobs allow 600)",
        HEALTHCHECKS_DOC,
    ),
    CombinationRule(
        SERVICE,
        "template.containers[].*Probe",
        _probe_timeouts,
        "a probe's timeout at most its period",
        RUN_PROBE_DOC,
    ),
    CombinationRule(
        SERVICE,
        "template.containers[].ports.name",
        _http_probes_need_http1,
        "HTTP probes only on HTTP/1 services",
        HEALTHCHECKS_DOC,
    ),
    CombinationRule(
        SERVICE,
        "template.scaling",
        _scaling,
        "minimum instances at most the maximum",
        "https://cloud.google.com/run/docs/configuring/min-instances",
    ),
    CombinationRule(
        INSTANCE, "settings.tier", _edition_and_tier, "the tier exists in the edition", SQL_EDITIONS_DOC
    ),
    CombinationRule(
        INSTANCE,
        "settings.backupConfiguration.transactionLogRetentionDays",
        _transaction_logs,
        "transaction log days within the edition's maximum",
        SQL_BACKUPS_DOC,
    ),
)


CONFIG_RULES = CloudRules(
    container_sizes={
        float(cpu): frozenset(range(low, high + 1, CLOUD_RUN_MEMORY_STEP_MIB))
        for cpu, (low, high) in CLOUD_RUN_MEMORY_MIB.items()
    },
    sizes_explained="Cloud Run takes "
    + ", ".join(f"{cpu} CPU with {low}-{high} MiB" for cpu, (low, high) in CLOUD_RUN_MEMORY_MIB.items())
    + f", in {CLOUD_RUN_MEMORY_STEP_MIB} MiB steps ({CLOUD_RUN_MEMORY_DOC})",
    default_cpu=1,
    default_memory_mib=1024,
    default_tracking_memory_mib=CLOUD_RUN_TRACKING_MEMORY_MIB,
    region_keys=("gcp:project", "gcp:region"),
    # europe-west1, us-central1, northamerica-northeast2 (https://cloud.google.com/about/locations)
    region_format=RegionFormat(re.compile(r"^[a-z]+-[a-z]+[0-9]+$"), "Google Cloud", "europe-west1"),
    state_schemes=("gs", "gcpkms"),
    artifact_scheme="gs://",
    # Shared-core, custom and Enterprise Plus tiers (https://cloud.google.com/sql/docs/postgres/instance-settings)
    database_tier=re.compile(r"^db-(f1-micro|g1-small|custom-\d+-\d+|perf-optimized-N-\d+)$"),
    default_database_tier="db-f1-micro",
)
