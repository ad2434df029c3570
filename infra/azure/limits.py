"""Azure's documented limits on what the Azure program sends, as data (checked by `infra.limits`).

Names per resource type from https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules
(and each service's page where it says more), ranges and combinations with their pages.
`infra/tests/azure/test_limits.py` runs every example stack and the longest names config accepts against it.
"""

import re
from collections.abc import Mapping
from typing import Any

from infra.limits import CombinationRule, NameRule, RangeRule, Rule

NAME_RULES = "https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules"
APP = "azure-native:app:ContainerApp"
# Log Analytics (PerGB2018): data is kept 30 to 730 days.
LOG_RETENTION_DAYS = (30, 730)
# Container Apps, consumption profile: CPU in 0.25 steps up to 4, memory exactly 2 GiB per CPU ("0.5Gi" per
# 0.25 CPU): https://learn.microsoft.com/azure/container-apps/containers#allocations
CONSUMPTION_CPUS = (0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4)


def _cpu_memory(inputs: Mapping[str, Any]) -> str | None:
    for container in (inputs.get("template") or {}).get("containers") or []:
        resources = container.get("resources") or {}
        cpu, memory = float(resources.get("cpu", 0.5)), str(resources.get("memory", "1Gi"))
        if cpu not in CONSUMPTION_CPUS:
            return f"{cpu:g} CPU is not a consumption size"
        if memory != f"{cpu * 2:g}Gi":
            return f"{cpu:g} CPU with {memory}; the consumption profile takes {cpu * 2:g}Gi"
    return None


def _tags(inputs: Mapping[str, Any]) -> str | None:
    tags = inputs.get("tags") or {}
    if len(tags) > 50:
        return f"has {len(tags)} tags; at most 50"
    for key, value in tags.items():
        if len(key) > 512 or len(str(value)) > 256 or re.search(r"[<>%&\\?/]", key):
            return f"tag {key!r} breaks the tag rules"
    return None


def _name(resource_type: str, field: str, low: int, high: int, pattern: str, explain: str) -> NameRule:
    return NameRule(resource_type, field, high, re.compile(pattern), explain, NAME_RULES, min_length=low)


HYPHENATED = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"
RULES: tuple[Rule, ...] = (
    _name(
        "azure-native:resources:ResourceGroup",
        "resourceGroupName",
        1,
        90,
        r"[\w.()-]*[\w()-]",
        "letters, digits, '_', '.', '(', ')', '-', not ending with '.'",
    ),
    _name(
        "azure-native:storage:StorageAccount",
        "accountName",
        3,
        24,
        r"[a-z0-9]+",
        "lowercase letters and digits",
    ),
    _name(
        "azure-native:storage:BlobContainer",
        "containerName",
        3,
        63,
        r"[a-z0-9](?!.*--)[a-z0-9-]*[a-z0-9]",
        "lowercase letters, digits and single '-'",
    ),
    _name(
        "azure-native:containerregistry:Registry",
        "registryName",
        5,
        50,
        r"[A-Za-z0-9]+",
        "letters and digits",
    ),
    _name(
        "azure-native:dbforpostgresql:Server",
        "serverName",
        3,
        63,
        HYPHENATED,
        "lowercase letters, digits and '-', not starting or ending with '-'",
    ),
    _name(
        "azure-native:dbforpostgresql:Database",
        "databaseName",
        1,
        63,
        r"[A-Za-z_][A-Za-z0-9_]*",
        "a PostgreSQL identifier",
    ),
    _name(
        "azure-native:app:ManagedEnvironment",
        "environmentName",
        2,
        60,
        r"[a-z][a-z0-9-]*[a-z0-9]",
        "lowercase letters, digits and '-', starting with a letter",
    ),
    _name(
        APP,
        "containerAppName",
        2,
        32,
        r"[a-z](?!.*--)[a-z0-9-]*[a-z0-9]",
        "lowercase letters, digits and single '-', starting with a letter",
    ),
    _name(
        "azure-native:operationalinsights:Workspace",
        "workspaceName",
        4,
        63,
        r"[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]",
        "letters, digits and '-', starting and ending with a letter or digit",
    ),
    _name(
        "azure-native:network:VirtualNetwork",
        "virtualNetworkName",
        2,
        64,
        r"[A-Za-z0-9][\w.-]*\w",
        "letters, digits, '_', '.', '-'",
    ),
    _name(
        "azure-native:network:Subnet",
        "subnetName",
        1,
        80,
        r"[A-Za-z0-9]([\w.-]*\w)?",
        "letters, digits, '_', '.', '-'",
    ),
    _name(
        "azure-native:managedidentity:UserAssignedIdentity",
        "resourceName",
        3,
        128,
        r"[A-Za-z0-9][\w-]*",
        "letters, digits, '_' and '-', starting with a letter or digit",
    ),
    CombinationRule(
        APP,
        "template.containers[].resources",
        _cpu_memory,
        "consumption sizes",
        "https://learn.microsoft.com/azure/container-apps/containers#allocations",
    ),
    *(
        CombinationRule(
            resource_type,
            "tags",
            _tags,
            "tag rules",
            "https://learn.microsoft.com/azure/azure-resource-manager/management/tag-resources#limitations",
        )
        for resource_type in (
            APP,
            "azure-native:storage:StorageAccount",
            "azure-native:dbforpostgresql:Server",
        )
    ),
    RangeRule(
        "azure-native:operationalinsights:Workspace",
        "retentionInDays",
        *LOG_RETENTION_DAYS,
        "days Log Analytics (PerGB2018) keeps data",
        "https://learn.microsoft.com/azure/azure-monitor/logs/data-retention-configure",
    ),
    RangeRule(
        "azure-native:dbforpostgresql:Server",
        "backup.backupRetentionDays",
        7,
        35,
        "days of PostgreSQL backups",
        "https://learn.microsoft.com/azure/postgresql/flexible-server/concepts-backup-restore#backup-retention",
    ),
    RangeRule(
        APP,
        "template.scale.maxReplicas",
        1,
        1000,
        "replicas",
        "https://learn.microsoft.com/azure/container-apps/scale-app#scale-definition",
    ),
)
