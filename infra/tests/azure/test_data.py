"""The data: storage account and container, PostgreSQL and its private network, deletion protection."""

import re

from infra.config import ENVIRONMENT_POLICY, KEYS, Environment
from infra.naming import short_name
from infra.tests.azure.conftest import (
    STACKS,
    AzureRun,
    config_for,
    resource_id,
    run_azure,
)


def environment_of(result: AzureRun) -> Environment:
    return Environment(result.run.outputs["environment"])


def test_storage_account_is_private_https_only_and_keyless(azure_run: AzureRun) -> None:
    account = azure_run.run.one("azure-native:storage:StorageAccount").inputs
    assert account["kind"] == "StorageV2"
    assert account["enableHttpsTrafficOnly"] is True
    assert account["minimumTlsVersion"] == "TLS1_2"
    assert account["allowBlobPublicAccess"] is False
    assert account["allowSharedKeyAccess"] is False
    assert account["defaultToOAuthAuthentication"] is True
    # Global name: 3-24 lowercase letters and digits, readable prefix from the stack + random suffix.
    assert re.fullmatch(r"[a-z0-9]{3,24}", account["accountName"]), account["accountName"]
    prefix = short_name(azure_run.stack, "mlflow", max_length=18, alphanumeric=True)
    assert account["accountName"].startswith(prefix)
    assert len(account["accountName"]) == len(prefix) + 6
    container = azure_run.run.one("azure-native:storage:BlobContainer").inputs
    assert container["publicAccess"] == "None"
    assert container["accountName"] == account["accountName"]
    assert azure_run.run.outputs["artifactRoot"] == (
        f"wasbs://{container['containerName']}@{account['accountName']}.blob.core.windows.net/mlflow"
    )


def test_versioning_and_soft_delete_except_in_sandboxes(azure_run: AzureRun) -> None:
    environment = environment_of(azure_run)
    services = azure_run.run.of_type("azure-native:storage:BlobServiceProperties")
    if environment is Environment.SANDBOX:
        assert services == []
        return
    (service,) = services
    days = int(KEYS["backupRetentionDays"].default_for(environment) or 0)
    assert service.inputs["isVersioningEnabled"] is True
    assert service.inputs["deleteRetentionPolicy"] == {"enabled": True, "days": days}
    assert service.inputs["containerDeleteRetentionPolicy"] == {"enabled": True, "days": days}


def test_production_data_is_locked_and_nothing_else_ever(azure_run: AzureRun) -> None:
    s = azure_run.stack
    locks = {
        lock.inputs["scope"]: lock.inputs["level"]
        for lock in azure_run.run.of_type("azure-native:authorization:ManagementLockByScope")
    }
    if environment_of(azure_run) is Environment.PROD:
        assert locks == {
            resource_id(f"{s}-database-server"): "CanNotDelete",
            resource_id(f"{s}-artifacts-account"): "CanNotDelete",
        }
    else:
        assert locks == {}


def test_database_has_no_public_access_and_lives_in_the_delegated_subnet(azure_run: AzureRun) -> None:
    s = azure_run.stack
    server = azure_run.run.one("azure-native:dbforpostgresql:Server").inputs
    assert server["network"] == {
        "publicNetworkAccess": "Disabled",
        "delegatedSubnetResourceId": resource_id(f"{s}-network-database"),
        "privateDnsZoneArmResourceId": resource_id(f"{s}-network-database-dns"),
    }
    assert azure_run.run.of_type("azure-native:dbforpostgresql:FirewallRule") == []
    subnets = {subnet.name: subnet.inputs for subnet in azure_run.run.of_type("azure-native:network:Subnet")}
    delegations = {
        name: [d["serviceName"] for d in inputs["delegations"]] for name, inputs in subnets.items()
    }
    assert delegations == {
        f"{s}-network-database": ["Microsoft.DBforPostgreSQL/flexibleServers"],
        f"{s}-network-apps": ["Microsoft.App/environments"],
    }
    zone = azure_run.run.one("azure-native:privatedns:PrivateZone").inputs
    assert zone["privateZoneName"].endswith(".postgres.database.azure.com")
    link = azure_run.run.one("azure-native:privatedns:VirtualNetworkLink").inputs
    assert link["virtualNetwork"] == {"id": resource_id(f"{s}-network-vnet")}
    assert link["privateZoneName"] == zone["privateZoneName"]
    environment = azure_run.run.one("azure-native:app:ManagedEnvironment").inputs
    assert environment["vnetConfiguration"]["infrastructureSubnetId"] == resource_id(f"{s}-network-apps")


def test_database_size_and_backups_follow_settings(azure_run: AzureRun) -> None:
    environment = environment_of(azure_run)
    server = azure_run.run.one("azure-native:dbforpostgresql:Server").inputs
    assert server["sku"] == {"name": "Standard_B1ms", "tier": "Burstable"}
    # Azure keeps 7 to 35 days; sandboxes ask for 1 and get the minimum.
    expected_days = max(7, int(KEYS["backupRetentionDays"].default_for(environment) or 0))
    assert server["backup"] == {"backupRetentionDays": expected_days, "geoRedundantBackup": "Disabled"}
    assert server["authConfig"]["passwordAuth"] == "Enabled"
    database = azure_run.run.one("azure-native:dbforpostgresql:Database").inputs
    assert database["databaseName"] == "mlflow"


def test_prod_database_tier_retention_and_geo_redundancy_from_config() -> None:
    result = run_azure(
        config_for(
            "prod", databaseTier="Standard_D2ds_v5", backupRetentionDays="30", geoRedundantBackup="true"
        ),
        STACKS["prod"],
    )
    server = result.run.one("azure-native:dbforpostgresql:Server").inputs
    assert server["sku"] == {"name": "Standard_D2ds_v5", "tier": "GeneralPurpose"}
    assert server["backup"] == {"backupRetentionDays": 30, "geoRedundantBackup": "Enabled"}


def test_log_retention_follows_the_environment_within_what_log_analytics_takes(azure_run: AzureRun) -> None:
    """PerGB2018 workspaces keep 30-730 days: dev (14) and sandbox (3) get the 30-day floor, which the
    ingestion price already includes; prod keeps its 90. The shared table, which other clouds read, is
    left as it is."""
    workspace = azure_run.run.one("azure-native:operationalinsights:Workspace").inputs
    wanted = ENVIRONMENT_POLICY[environment_of(azure_run)].log_retention_days
    assert workspace["retentionInDays"] == max(30, wanted)
    assert workspace["sku"] == {"name": "PerGB2018"}
    assert {e: p.log_retention_days for e, p in ENVIRONMENT_POLICY.items()} == {
        Environment.DEV: 14,
        Environment.STAGING: 30,
        Environment.PROD: 90,
        Environment.SANDBOX: 3,
    }
    diagnostics = azure_run.run.one("azure-native:monitor:DiagnosticSetting").inputs
    assert diagnostics["workspaceId"] == resource_id(f"{azure_run.stack}-apps-logs")
    assert diagnostics["resourceUri"] == resource_id(f"{azure_run.stack}-apps-environment")


def test_every_taggable_resource_carries_the_stack_labels(azure_run: AzureRun) -> None:
    s = azure_run.stack
    expected = {"app": "mlops-stack", "stack": s, "environment": environment_of(azure_run).value}
    expected["managed-by"] = "pulumi"
    if environment_of(azure_run) is Environment.SANDBOX:
        expected["expires-at"] = "20261201t180000z"
    taggable = [
        "azure-native:resources:ResourceGroup",
        "azure-native:storage:StorageAccount",
        "azure-native:containerregistry:Registry",
        "azure-native:dbforpostgresql:Server",
        "azure-native:app:ManagedEnvironment",
        "azure-native:app:ContainerApp",
        "azure-native:operationalinsights:Workspace",
        "azure-native:network:VirtualNetwork",
        "azure-native:managedidentity:UserAssignedIdentity",
    ]
    for resource in azure_run.run.resources:
        if resource.type in taggable:
            assert resource.inputs.get("tags") == expected, resource.name
    groups = azure_run.run.of_type("azure-native:resources:ResourceGroup")
    if environment_of(azure_run) is Environment.SANDBOX:
        assert groups == []  # a sandbox deploys into the dev stack's group for sandboxes
    else:  # the stack's resources, and its CI identities apart
        names = [g.inputs["resourceGroupName"] for g in groups]
        assert names == [f"mlops-stack-{s}", f"mlops-stack-{s}-ci"]
