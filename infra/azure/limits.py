"""Azure's documented limits on what the Azure program sends, as data (checked by `infra.limits`).

Every name the program gives an Azure resource (length and characters), every number with a documented
range and every combination Azure restricts, with the page that says so. `infra/tests/azure/test_limits.py`
runs every example stack and stacks with the longest names config accepts against this table. The program
reads its name lengths from here (`name_limit`), config reads `CONFIG_RULES` (container sizes from
`CONSUMPTION_SIZES`, schemes, tiers) to refuse values before any resource is registered, and
`mlops_stack/state_backends/azure.py` checks bootstrap's names against `STATE_RULES`.

Names: https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules (`NAMES_DOC`)
unless a rule says otherwise. Azure compares names case-insensitively; the program only sends lowercase.
"""

import re
from collections.abc import Mapping
from typing import Any

from infra.config import CloudRules
from infra.limits import CombinationRule, NameRule, RangeRule, Rule

NAMES_DOC = "https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules"
CONTAINERS_DOC = "https://learn.microsoft.com/azure/container-apps/containers#allocations"
# The probe fields' ranges are in the Container Apps REST API reference (the health-probes page defers to it).
PROBES_DOC = (
    "https://learn.microsoft.com/rest/api/containerapps/container-apps/create-or-update#containerappprobe"
)
POSTGRES_QUICKSTART_DOC = (
    "https://learn.microsoft.com/azure/postgresql/flexible-server/quickstart-create-server"
)
TAGS_DOC = "https://learn.microsoft.com/azure/azure-resource-manager/management/tag-resources#limitations"

CONTAINER_APP = "azure-native:app:ContainerApp"
MANAGED_ENVIRONMENT = "azure-native:app:ManagedEnvironment"
POSTGRES_SERVER = "azure-native:dbforpostgresql:Server"
WORKSPACE = "azure-native:operationalinsights:Workspace"
VAULT = "azure-native:keyvault:Vault"

# Container Apps, Consumption workload profile: the CPU and memory of a replica must be one of these pairs
# (vCPUs -> GiB, 0.25 to 4 vCPUs in 0.25 steps, 2 GiB per vCPU).
CONSUMPTION_SIZES: Mapping[float, float] = {quarter / 4: quarter / 2 for quarter in range(1, 17)}
# Log Analytics, PerGB2018 plan: the workspace's retention is 30 to 730 days (7 only on the legacy Free plan).
# 31 days are included in the ingestion price, so 30 costs nothing more than less would
# (https://learn.microsoft.com/azure/azure-monitor/logs/data-retention-configure).
LOG_RETENTION_DAYS = (30, 730)
# PostgreSQL Flexible Server keeps automated backups 7 to 35 days.
BACKUP_RETENTION_DAYS = (7, 35)
# Probes: at most 10 consecutive failures (newer azurerm releases accept 30 for liveness and readiness; the
# API reference and pulumi-azure-native 3.x say 10, so stay within both), a period of 1-240 s.
PROBE_MAX_FAILURES = 10
PROBE_MAX_PERIOD_SECONDS = 240
# The administrator login names Flexible Server refuses, and the prefix it reserves.
RESERVED_ADMIN_LOGINS = frozenset(
    {"azure_superuser", "azure_pg_admin", "admin", "administrator", "root", "guest", "public"}
)
# Key Vault keeps a deleted vault (and its name, globally) 7 to 90 days
# (https://learn.microsoft.com/azure/key-vault/general/soft-delete-overview).
VAULT_SOFT_DELETE_DAYS = (7, 90)
# Managed disk sizes Flexible Server offers (GiB).
POSTGRES_STORAGE_GB = frozenset({32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32767})

LOWER_DIGITS_HYPHENS = re.compile(r"[a-z][a-z0-9-]*[a-z0-9]")
ALNUM_HYPHENS = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?")
NETWORK_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9_])?")
# Key Vault names (vaults are the program's and bootstrap's): https://learn.microsoft.com/azure/azure-resource-
# manager/management/resource-name-rules#microsoftkeyvault
VAULT_NAME = re.compile(r"[A-Za-z](?!.*--)[A-Za-z0-9-]*[A-Za-z0-9]")
DNS_LABEL = re.compile(r"[A-Za-z0-9_-]{1,63}")
# A Docker image reference as the registry takes it: <login server>/<repository>:<tag>, lowercase repository
# path components separated by '.', '_', '__' or '-', a tag of at most 128 word characters, '.' and '-'
# (https://learn.microsoft.com/azure/container-registry/container-registry-concepts#repository-name).
IMAGE_REFERENCE = re.compile(
    r"(?P<registry>[a-z0-9]{5,50}\.azurecr\.io)/(?P<repository>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*):(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})"
)


def _tags(inputs: Mapping[str, Any]) -> str | None:
    """Tag names 1-512 characters without <>%&\\?/, values at most 256, at most 50 tags a resource."""
    tags = inputs.get("tags") or {}
    if len(tags) > 50:
        return f"has {len(tags)} tags; at most 50"
    for key, value in tags.items():
        if not 1 <= len(key) <= 512 or re.search(r"[<>%&\\?/]", key):
            return f"tag name {key!r} breaks the rules: 1-512 characters, none of <>%&\\?/"
        if len(str(value)) > 256:
            return f"tag {key} has a {len(str(value))}-character value; at most 256"
    return None


def _consumption_size(inputs: Mapping[str, Any]) -> str | None:
    """The sum over the app's containers must be one row of the Consumption table."""
    containers = (inputs.get("template") or {}).get("containers") or []
    cpu = sum(float((c.get("resources") or {}).get("cpu", 0)) for c in containers)
    memory = sum(gibibytes((c.get("resources") or {}).get("memory", "0Gi")) for c in containers)
    if CONSUMPTION_SIZES.get(cpu) != memory:
        return f"{cpu:g} vCPU with {memory:g} GiB is not a Consumption size (0.25-4 vCPU, 2 GiB per vCPU)"
    return None


def gibibytes(quantity: str) -> float:
    """`1.5Gi` -> 1.5; `512Mi` -> 0.5."""
    number = float(re.sub(r"[A-Za-z]", "", quantity))
    return number / 1024 if quantity.endswith("Mi") else number


def _probes(inputs: Mapping[str, Any]) -> str | None:
    for container in (inputs.get("template") or {}).get("containers") or []:
        for probe in container.get("probes") or []:
            kind = probe.get("type")
            failures, period = probe.get("failureThreshold", 3), probe.get("periodSeconds", 10)
            if not 1 <= failures <= PROBE_MAX_FAILURES:
                return f"{kind} probe failureThreshold {failures}; allowed 1-{PROBE_MAX_FAILURES}"
            if not 1 <= period <= PROBE_MAX_PERIOD_SECONDS:
                return f"{kind} probe periodSeconds {period}; allowed 1-{PROBE_MAX_PERIOD_SECONDS}"
            if not 0 <= probe.get("initialDelaySeconds", 0) <= 60:
                return f"{kind} probe initialDelaySeconds out of 0-60"
    return None


def _secret_names(inputs: Mapping[str, Any]) -> str | None:
    """Container Apps secret names: lowercase letters, digits, '-' and '.', starting and ending with a letter
    or digit (the API's validation; a Kubernetes DNS subdomain, at most 253 characters)."""
    for secret in (inputs.get("configuration") or {}).get("secrets") or []:
        name = secret.get("name", "")
        if len(name) > 253 or not re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", name):
            return f"secret name {name!r} breaks the rule"
    return None


def _container_names(inputs: Mapping[str, Any]) -> str | None:
    """Container names inside an app: lowercase letters, digits and '-', a DNS label (at most 63)."""
    for container in (inputs.get("template") or {}).get("containers") or []:
        name = container.get("name", "")
        if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", name):
            return f"container name {name!r} breaks the rule"
    return None


def _private_zone(inputs: Mapping[str, Any]) -> str | None:
    """Private DNS zones: "1-63 characters, 2 to 34 labels" of letters, digits, '_' and '-'. The page does
    not say whether 63 bounds the name or each label (34 labels cannot fit in 63 characters, so probably each
    label); we keep the whole name within 63, which satisfies both readings. PostgreSQL's VNet integration
    needs a zone ending in `.postgres.database.azure.com`
    (https://learn.microsoft.com/azure/postgresql/flexible-server/concepts-networking-private#private-dns-zone-and-vnet)."""
    zone = inputs.get("privateZoneName")
    if not isinstance(zone, str):
        return None
    labels = zone.split(".")
    if len(zone) > 63 or not 2 <= len(labels) <= 34 or not all(DNS_LABEL.fullmatch(x) for x in labels):
        return f"zone {zone!r}: at most 63 characters, 2-34 labels of letters, digits, '_' and '-'"
    if not zone.endswith(".postgres.database.azure.com"):
        return f"zone {zone!r} does not end in .postgres.database.azure.com"
    return None


def _postgres_admin(inputs: Mapping[str, Any]) -> str | None:
    """Administrator login: not a reserved name, not `pg_...`; password 8-128 characters from three of
    uppercase, lowercase, digits and other characters, not containing the login."""
    login = str(inputs.get("administratorLogin", ""))
    if login.lower() in RESERVED_ADMIN_LOGINS or login.lower().startswith("pg_"):
        return f"administrator login {login!r} is reserved"
    password = inputs.get("administratorLoginPassword")
    if not isinstance(password, str):
        return None
    classes = sum(
        any(test(c) for c in password)
        for test in (str.isupper, str.islower, str.isdigit, lambda c: not c.isalnum())
    )
    if not 8 <= len(password) <= 128 or classes < 3 or login.lower() in password.lower():
        return "administrator password is not 8-128 characters of three character classes without the login"
    return None


def _postgres_storage(inputs: Mapping[str, Any]) -> str | None:
    size = (inputs.get("storage") or {}).get("storageSizeGB")
    if size is not None and size not in POSTGRES_STORAGE_GB:
        return f"storage of {size} GiB is not a size Flexible Server offers ({sorted(POSTGRES_STORAGE_GB)})"
    return None


def _image_tags(inputs: Mapping[str, Any]) -> str | None:
    for tag in inputs.get("tags") or []:
        if isinstance(tag, str) and not IMAGE_REFERENCE.fullmatch(tag):
            return f"image reference {tag!r} is not <registry>.azurecr.io/<repository>:<tag of 1-128>"
    return None


TAGGED_TYPES = (
    "azure-native:resources:ResourceGroup",
    "azure-native:storage:StorageAccount",
    "azure-native:containerregistry:Registry",
    POSTGRES_SERVER,
    MANAGED_ENVIRONMENT,
    CONTAINER_APP,
    WORKSPACE,
    "azure-native:network:VirtualNetwork",
    "azure-native:privatedns:PrivateZone",
    "azure-native:privatedns:VirtualNetworkLink",
    "azure-native:managedidentity:UserAssignedIdentity",
    "azure-native:monitor:MetricAlert",
    "azure-native:monitor:ScheduledQueryRule",
    "azure-native:monitor:ActionGroup",
    "azure-native:portal:Dashboard",
    VAULT,
)


def _insights_name(forbidden: str) -> re.Pattern[str]:
    """Microsoft.Insights names: any character but `forbidden` and control characters, not ending with a space
    or a period."""
    allowed = "[^" + re.escape(forbidden) + "\x00-\x1f]"
    return re.compile(f"{allowed}*(?![ .]){allowed}")


RULES: tuple[Rule, ...] = (
    NameRule(
        "azure-native:resources:ResourceGroup",
        "resourceGroupName",
        90,
        re.compile(r"[\w().-]*[\w()-]"),
        "letters, digits, '_', '(', ')', '-', '.', not ending with '.'",
        NAMES_DOC + "#microsoftresources",
    ),
    NameRule(
        "azure-native:storage:StorageAccount",
        "accountName",
        24,
        re.compile(r"[a-z0-9]+"),
        "lowercase letters and digits, globally unique",
        NAMES_DOC + "#microsoftstorage",
        min_length=3,
    ),
    NameRule(
        "azure-native:storage:BlobContainer",
        "containerName",
        63,
        re.compile(r"[a-z0-9](?!.*--)[a-z0-9-]*[a-z0-9]"),
        "lowercase letters, digits and '-', no '--', starting and ending with a letter or digit",
        NAMES_DOC + "#microsoftstorage",
        min_length=3,
    ),
    NameRule(
        "azure-native:storage:BlobServiceProperties",
        "blobServicesName",
        7,
        re.compile(r"default"),
        "must be `default`",
        NAMES_DOC + "#microsoftstorage",
    ),
    NameRule(
        "azure-native:containerregistry:Registry",
        "registryName",
        50,
        re.compile(r"[A-Za-z0-9]+"),
        "letters and digits, globally unique",
        NAMES_DOC + "#microsoftcontainerregistry",
        min_length=5,
    ),
    NameRule(
        "azure-native:containerregistry:Task",
        "taskName",
        50,
        re.compile(r"[a-zA-Z0-9_-]+"),
        "letters, digits, '-' and '_'",
        # The REST spec's TaskNameParameter (the naming-rules page does not list tasks).
        "https://github.com/Azure/azure-rest-api-specs/blob/main/specification/containerregistry/"
        "resource-manager/Microsoft.ContainerRegistry/stable/2019-04-01/containerregistry_build.json",
        min_length=5,
    ),
    NameRule(
        POSTGRES_SERVER,
        "serverName",
        63,
        re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"),
        "lowercase letters, digits and '-', not starting or ending with '-', globally unique",
        NAMES_DOC + "#microsoftdbforpostgresql",
        min_length=3,
    ),
    NameRule(
        "azure-native:dbforpostgresql:Database",
        "databaseName",
        63,
        ALNUM_HYPHENS,
        "letters, digits and '-'",
        NAMES_DOC + "#microsoftdbforpostgresql",
    ),
    NameRule(
        MANAGED_ENVIRONMENT,
        "environmentName",
        60,
        LOWER_DIGITS_HYPHENS,
        "lowercase letters, digits and '-', starting with a letter and ending with a letter or digit",
        # Not on the resource-name-rules page; the portal and Azure's PSRule rules state 2-60.
        "https://azure.github.io/PSRule.Rules.Azure/en/rules/Azure.ContainerApp.EnvNaming/",
        min_length=2,
    ),
    NameRule(
        CONTAINER_APP,
        "containerAppName",
        32,
        re.compile(r"[a-z](?!.*--)[a-z0-9-]*[a-z0-9]"),
        "lowercase letters, digits and '-', starting with a letter, ending with a letter or digit, no '--'",
        NAMES_DOC + "#microsoftapp",
        min_length=2,
    ),
    NameRule(
        WORKSPACE,
        "workspaceName",
        63,
        ALNUM_HYPHENS,
        "letters, digits and '-', starting and ending with a letter or digit",
        NAMES_DOC + "#microsoftoperationalinsights",
        min_length=4,
    ),
    NameRule(
        "azure-native:network:VirtualNetwork",
        "virtualNetworkName",
        64,
        NETWORK_NAME,
        "letters, digits, '_', '.', '-', starting with a letter or digit, ending with one or '_'",
        NAMES_DOC + "#microsoftnetwork",
        min_length=2,
    ),
    NameRule(
        "azure-native:network:Subnet",
        "subnetName",
        80,
        NETWORK_NAME,
        "letters, digits, '_', '.', '-', starting with a letter or digit, ending with one or '_'",
        NAMES_DOC + "#microsoftnetwork",
    ),
    NameRule(
        "azure-native:privatedns:VirtualNetworkLink",
        "virtualNetworkLinkName",
        80,
        NETWORK_NAME,
        "letters, digits, '_', '.', '-', starting with a letter or digit, ending with one or '_'",
        NAMES_DOC + "#microsoftnetwork",
    ),
    NameRule(
        "azure-native:managedidentity:UserAssignedIdentity",
        "resourceName",
        128,
        re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*"),
        "letters, digits, '-' and '_', starting with a letter or digit",
        NAMES_DOC + "#microsoftmanagedidentity",
        min_length=3,
    ),
    NameRule(
        "azure-native:managedidentity:FederatedIdentityCredential",
        "federatedIdentityCredentialResourceName",
        120,
        re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*"),
        "letters, digits, '-' and '_', starting with a letter or digit",
        "https://learn.microsoft.com/rest/api/managedidentity/federated-identity-credentials/create-or-update",
        min_length=3,
    ),
    NameRule(
        "azure-native:monitor:MetricAlert",
        "ruleName",
        260,
        _insights_name("*#&+:<>?@%{}\\/"),
        "no `*#&+:<>?@%{}\\/` or control characters, not ending with a space or '.'",
        NAMES_DOC + "#microsoftinsights",
    ),
    NameRule(
        "azure-native:monitor:ScheduledQueryRule",
        "ruleName",
        260,
        _insights_name("*<>%{}&:\\?/#"),
        "no `*<>%{}&:\\?/#` or control characters, not ending with a space or '.'",
        NAMES_DOC + "#microsoftinsights",
    ),
    NameRule(
        "azure-native:monitor:ActionGroup",
        "actionGroupName",
        260,
        _insights_name(":<>+/&%\\?|"),
        "no `:<>+/&%\\?|` or control characters, not ending with a space or '.'",
        NAMES_DOC + "#microsoftinsights",
    ),
    NameRule(
        "azure-native:portal:Dashboard",
        "dashboardName",
        160,
        ALNUM_HYPHENS,
        "letters, digits and '-' (the portal shows the `hidden-title` tag instead)",
        "https://learn.microsoft.com/azure/templates/microsoft.portal/dashboards",
        min_length=3,
    ),
    NameRule(
        VAULT,
        "vaultName",
        24,
        VAULT_NAME,
        "letters, digits and '-', starting with a letter, ending with a letter or digit, no '--', globally "
        "unique",
        NAMES_DOC + "#microsoftkeyvault",
        min_length=3,
    ),
    NameRule(
        "azure-native:keyvault:Secret",
        "secretName",
        127,
        ALNUM_HYPHENS,
        "letters, digits and '-'",
        "https://learn.microsoft.com/azure/key-vault/general/about-keys-secrets-certificates#object-identifiers",
    ),
    NameRule(
        "azure-native:authorization:ManagementLockByScope",
        "lockName",
        90,
        re.compile(r"[\w().-]*[\w()-]"),
        "letters, digits, '.', '_', '-', '(' and ')', not ending with '.'",
        NAMES_DOC + "#microsoftauthorization",
    ),
    CombinationRule(
        "azure-native:privatedns:PrivateZone",
        "privateZoneName",
        _private_zone,
        "DNS zone labels",
        NAMES_DOC + "#microsoftnetwork",
    ),
    *(CombinationRule(kind, "tags", _tags, "tag rules", TAGS_DOC) for kind in TAGGED_TYPES),
    CombinationRule(
        CONTAINER_APP, "template.containers[].resources", _consumption_size, "CPU and memory", CONTAINERS_DOC
    ),
    CombinationRule(CONTAINER_APP, "template.containers[].probes", _probes, "probe ranges", PROBES_DOC),
    CombinationRule(
        CONTAINER_APP,
        "configuration.secrets[].name",
        _secret_names,
        "secret names",
        "https://learn.microsoft.com/azure/container-apps/manage-secrets",
    ),
    CombinationRule(
        CONTAINER_APP, "template.containers[].name", _container_names, "container names", CONTAINERS_DOC
    ),
    RangeRule(
        CONTAINER_APP,
        "template.scale.maxReplicas",
        1,
        1000,
        "replicas a revision may scale to",
        "https://learn.microsoft.com/azure/container-apps/quotas",
    ),
    RangeRule(
        CONTAINER_APP,
        "template.scale.minReplicas",
        0,
        1000,
        "replicas a revision keeps",
        "https://learn.microsoft.com/azure/container-apps/scale-app",
    ),
    CombinationRule(
        POSTGRES_SERVER, "administratorLogin", _postgres_admin, "administrator", POSTGRES_QUICKSTART_DOC
    ),
    CombinationRule(
        POSTGRES_SERVER,
        "storage.storageSizeGB",
        _postgres_storage,
        "storage sizes",
        "https://learn.microsoft.com/azure/postgresql/flexible-server/concepts-storage",
    ),
    RangeRule(
        POSTGRES_SERVER,
        "backup.backupRetentionDays",
        *BACKUP_RETENTION_DAYS,
        "days of automated backups",
        "https://learn.microsoft.com/azure/postgresql/flexible-server/concepts-backup-restore",
    ),
    RangeRule(
        VAULT,
        "properties.softDeleteRetentionInDays",
        *VAULT_SOFT_DELETE_DAYS,
        "days a deleted vault is kept",
        "https://learn.microsoft.com/azure/key-vault/general/soft-delete-overview",
    ),
    RangeRule(
        WORKSPACE,
        "retentionInDays",
        *LOG_RETENTION_DAYS,
        "days a PerGB2018 workspace keeps logs",
        "https://learn.microsoft.com/azure/azure-monitor/logs/data-retention-configure",
    ),
    RangeRule(
        "azure-native:storage:BlobServiceProperties",
        "deleteRetentionPolicy.days",
        1,
        365,
        "days soft-deleted blobs are kept",
        "https://learn.microsoft.com/azure/storage/blobs/soft-delete-blob-overview",
    ),
    RangeRule(
        "azure-native:storage:BlobServiceProperties",
        "containerDeleteRetentionPolicy.days",
        1,
        365,
        "days soft-deleted containers are kept",
        "https://learn.microsoft.com/azure/storage/blobs/soft-delete-container-overview",
    ),
    CombinationRule(
        "docker-build:index:Image",
        "tags[]",
        _image_tags,
        "image references",
        "https://learn.microsoft.com/azure/container-registry/container-registry-concepts#repository-name",
    ),
)

# What scripts/bootstrap.py names (it checks its arguments against these before calling Azure).
STATE_RULES: tuple[NameRule, ...] = (
    NameRule(
        "bootstrap:resource-group",
        "resourceGroupName",
        90,
        re.compile(r"[\w().-]*[\w()-]"),
        "letters, digits, '_', '(', ')', '-', '.', not ending with '.'",
        NAMES_DOC + "#microsoftresources",
    ),
    NameRule(
        "bootstrap:storage-account",
        "accountName",
        24,
        re.compile(r"[a-z0-9]+"),
        "lowercase letters and digits, globally unique",
        NAMES_DOC + "#microsoftstorage",
        min_length=3,
    ),
    NameRule(
        "bootstrap:container",
        "containerName",
        63,
        re.compile(r"[a-z0-9](?!.*--)[a-z0-9-]*[a-z0-9]"),
        "lowercase letters, digits and '-', no '--', starting and ending with a letter or digit",
        NAMES_DOC + "#microsoftstorage",
        min_length=3,
    ),
    NameRule(
        "bootstrap:vault",
        "vaultName",
        24,
        VAULT_NAME,
        "letters, digits and '-', starting with a letter, ending with a letter or digit, no '--'",
        NAMES_DOC + "#microsoftkeyvault",
        min_length=3,
    ),
    NameRule(
        "bootstrap:key",
        "keyName",
        127,
        ALNUM_HYPHENS,
        "letters, digits and '-'",
        "https://learn.microsoft.com/azure/key-vault/general/about-keys-secrets-certificates#object-identifiers",
    ),
)


def name_limit(resource_type: str) -> int:
    """The longest name `resource_type` takes, from the rule above (so code and table cannot drift)."""
    for rule in RULES:
        if isinstance(rule, NameRule) and rule.resource_type == resource_type:
            return rule.max_length
    raise KeyError(f"no name rule for {resource_type}")


CONFIG_RULES = CloudRules(
    container_sizes={cpu: frozenset({int(gib * 1024)}) for cpu, gib in CONSUMPTION_SIZES.items()},
    sizes_explained="Container Apps (Consumption) takes 0.25 to 4 CPUs in 0.25 steps with exactly 2048 MiB "
    "per CPU (https://learn.microsoft.com/azure/container-apps/containers#allocations)",
    default_cpu=0.5,
    default_memory_mib=1024,
    default_tracking_memory_mib=1024,
    region_keys=("azure-native:location",),
    region_format=None,
    state_schemes=("azblob", "azurekeyvault"),
    artifact_scheme="wasbs://",
    # Flexible Server SKU names: Standard_B1ms, Standard_D2ds_v5, ...
    database_tier=re.compile(r"^Standard_[A-Za-z0-9_]+$"),
    default_database_tier="Standard_B1ms",
)
