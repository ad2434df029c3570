"""The estimate on inventories small enough to compute by hand, priced from a sheet of round numbers, so each
expected value below is arithmetic on the test's own page: sizes and minimum instances read from the inputs,
idle and per-million quantities, unpriced lines kept out of the totals, and unknown types refused."""

from pathlib import Path

import pytest

from mlops_stack.cost.estimate import (
    HOURS_PER_MONTH,
    PROFILE,
    SECONDS_PER_MONTH,
    SheetGapError,
    estimate,
)
from mlops_stack.cost.sheet import PriceSheet, load_sheet
from mlops_stack.program_under_mocks import Registered

ROUND_GCP_SHEET = """
cloud = "gcp"
region = "test-region"

[prices.cloud_run_cpu_idle]
usd = 0.00001
unit = "vCPU-second"
url = "https://example.invalid/run"
read = "2026-11-25"

[prices.cloud_run_memory_idle]
usd = 0.000001
unit = "GiB-second"
url = "https://example.invalid/run"
read = "2026-11-25"

[prices.cloud_run_cpu_active]
usd = 0.00002
unit = "vCPU-second"
url = "https://example.invalid/run"
read = "2026-11-25"

[prices.cloud_run_memory_active]
usd = 0.000002
unit = "GiB-second"
url = "https://example.invalid/run"
read = "2026-11-25"

[prices.cloud_run_requests]
usd = 0.5
unit = "million requests"
url = "https://example.invalid/run"
read = "2026-11-25"

[prices.internet_egress]
unit = "GB"
url = "https://example.invalid/egress"
read = "2026-11-25"
note = "NOT FOUND"

[prices.cloud_sql_vcpu_hour]
usd = 0.05
unit = "vCPU-hour"
url = "https://example.invalid/sql"
read = "2026-11-25"

[prices.cloud_sql_memory_gb_hour]
usd = 0.01
unit = "GB-hour"
url = "https://example.invalid/sql"
read = "2026-11-25"

[prices.cloud_sql_ssd_gb_month]
usd = 0.2
unit = "GB-month"
url = "https://example.invalid/sql"
read = "2026-11-25"

[billable]
"gcp:cloudrunv2/service:Service" = [
    "cloud_run_cpu_idle", "cloud_run_memory_idle", "cloud_run_cpu_active", "cloud_run_memory_active",
    "cloud_run_requests", "internet_egress",
]
"gcp:sql/databaseInstance:DatabaseInstance" = [
    "cloud_sql_vcpu_hour", "cloud_sql_memory_gb_hour", "cloud_sql_ssd_gb_month",
]

[free]
"gcp:serviceaccount/account:Account" = "free"
"""


@pytest.fixture
def sheet(tmp_path: Path) -> PriceSheet:
    (tmp_path / "gcp.toml").write_text(ROUND_GCP_SHEET)
    return load_sheet("gcp", tmp_path)


def cloud_run(name: str, cpu: str, memory: str, min_instances: int) -> Registered:
    template = {
        "containers": [{"resources": {"limits": {"cpu": cpu, "memory": memory}}}],
        "scaling": {"minInstanceCount": float(min_instances), "maxInstanceCount": 2.0},
    }
    return Registered("gcp:cloudrunv2/service:Service", name, {"template": template})


def test_a_warm_service_costs_its_minimum_instances_at_the_idle_rate(sheet: PriceSheet) -> None:
    result = estimate("s", [cloud_run("s-tracking-service", "2", "512Mi", 1)], sheet)
    # 1 instance x 2 vCPU x 0.00001 + 0.5 GiB x 0.000001, every second of a 730-hour month
    assert result.idle_usd == pytest.approx(SECONDS_PER_MONTH * (2 * 0.00001 + 0.5 * 0.000001))
    assert result.per_million_usd == 0  # not the API: predictions never reach it


def test_a_service_at_zero_costs_nothing_idle_and_its_traffic_per_million(sheet: PriceSheet) -> None:
    result = estimate("s", [cloud_run("s-api-service", "1", "2Gi", 0)], sheet)
    seconds = 1_000_000 / PROFILE.requests_per_second  # 50,000 s of one busy instance
    assert result.idle_usd == 0
    assert result.per_million_usd == pytest.approx(seconds * (1 * 0.00002 + 2 * 0.000002) + 0.5)
    # Egress has no price in this sheet: it is named, and not counted as zero in silence.
    assert [line.usage.price for line in result.unpriced] == ["internet_egress"]


def test_a_warm_api_adds_only_the_active_rate_over_the_idle_one(sheet: PriceSheet) -> None:
    result = estimate("s", [cloud_run("s-api-service", "1", "1Gi", 1)], sheet)
    seconds = 1_000_000 / PROFILE.requests_per_second
    assert result.per_million_usd == pytest.approx(
        seconds * ((0.00002 - 0.00001) + (0.000002 - 0.000001)) + 0.5
    )


def test_a_custom_database_tier_is_priced_by_its_vcpus_memory_and_disk(sheet: PriceSheet) -> None:
    database = Registered(
        "gcp:sql/databaseInstance:DatabaseInstance",
        "s-database-instance",
        {"settings": {"tier": "db-custom-2-7680", "diskSize": 20.0}},
    )
    result = estimate("s", [database], sheet)
    assert result.idle_usd == pytest.approx(HOURS_PER_MONTH * (2 * 0.05 + 7.5 * 0.01) + 20 * 0.2)


def test_free_types_and_components_add_no_line(sheet: PriceSheet) -> None:
    account = Registered("gcp:serviceaccount/account:Account", "s-account", {})
    component = Registered("mlops-stack:gcp:Platform", "s", {}, custom=False)
    assert estimate("s", [account, component], sheet).lines == []


def test_a_type_the_sheet_does_not_know_is_refused_not_counted_as_free(sheet: PriceSheet) -> None:
    unknown = Registered("gcp:compute/instance:Instance", "s-vm", {})
    with pytest.raises(SheetGapError, match=r"gcp:compute/instance:Instance .*neither `billable` nor `free`"):
        estimate("s", [unknown], sheet)


def test_a_tier_without_a_price_entry_is_refused_with_the_key_to_add(sheet: PriceSheet) -> None:
    shared_core = Registered(
        "gcp:sql/databaseInstance:DatabaseInstance",
        "s-database-instance",
        {"settings": {"tier": "db-f1-micro"}},
    )
    with pytest.raises(SheetGapError, match="cloud_sql_db-f1-micro_hour"):
        estimate("s", [shared_core], sheet)


AWS = load_sheet("aws")


def express(name: str, min_tasks: int) -> Registered:
    inputs = {"cpu": "1024", "memory": "2048", "scalingTargets": [{"minTaskCount": float(min_tasks)}]}
    return Registered("aws:ecs/expressGatewayService:ExpressGatewayService", name, inputs)


def test_express_keeps_one_task_even_when_asked_for_none() -> None:
    (vcpu, memory) = estimate("s", [express("s-tracking-service-service", 0)], AWS).lines
    assert (vcpu.usage.idle, memory.usage.idle) == (HOURS_PER_MONTH * 1.0, HOURS_PER_MONTH * 2.0)


def test_interface_endpoints_are_priced_per_zone_and_the_gateway_is_free() -> None:
    interface = {
        "vpcEndpointType": "Interface",
        "serviceName": "com.amazonaws.r.logs",
        "subnetIds": ["a", "b"],
    }
    gateway = {"vpcEndpointType": "Gateway", "serviceName": "com.amazonaws.r.s3"}
    endpoints = [
        Registered("aws:ec2/vpcEndpoint:VpcEndpoint", "s-logs", interface),
        Registered("aws:ec2/vpcEndpoint:VpcEndpoint", "s-s3", gateway),
    ]
    (line,) = estimate("s", endpoints, AWS).lines
    assert line.usage.idle == 2 * HOURS_PER_MONTH
    zone_hour = AWS.prices["interface_endpoint_zone_hour"].usd
    assert zone_hour is not None
    assert line.idle_usd == pytest.approx(2 * HOURS_PER_MONTH * zone_hour)
