"""The estimate: each resource the program would create, turned into what it uses (Usage: so many units of a
priced meter when idle, and per million predictions), priced from the cloud's sheet, line by line.

What each cloud's resources use is read from their inputs (sizes, minimum instances, tiers, zones) by that
cloud's `meters_for_*` below; the arithmetic and the prices are shared, so a price lives in the sheet only.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_stack.cost.sheet import PriceSheet
from mlops_stack.program_under_mocks import Registered

HOURS_PER_MONTH = 730  # the clouds' own convention for a month of hourly prices
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
GB_PER_GIB = 1.073741824


@dataclass(frozen=True)
class RequestProfile:
    """The traffic one million predictions stand for."""

    requests_per_second: float = 20.0  # steady; one API instance serves it (bench: ~1,400/s a worker)
    request_kib: float = 1.0  # a one-row JSON request
    response_kib: float = 1.0

    @property
    def seconds_per_million(self) -> float:
        return 1_000_000 / self.requests_per_second

    @property
    def response_gb_per_million(self) -> float:
        return 1_000_000 * self.response_kib * 1024 / 1e9

    @property
    def processed_gb_per_hour(self) -> float:
        return self.requests_per_second * 3600 * (self.request_kib + self.response_kib) * 1024 / 1e9

    def describe(self) -> str:
        hours = self.seconds_per_million / 3600
        return (
            f"1 million one-row predictions at a steady {self.requests_per_second:g} requests/s "
            f"({hours:.1f} h of traffic, served by one API instance), {self.request_kib:g} KiB in and "
            f"{self.response_kib:g} KiB out each"
        )


PROFILE = RequestProfile()
# What a stack holds when idle, for the meters billed by storage: the first images and a few runs.
IMAGE_GB = 0.5  # one image of each service (compressed layers)
ARTIFACT_GB = 1.0
DATABASE_GB = 1.0  # a tracking database with a few thousand runs


@dataclass(frozen=True)
class Usage:
    """So many units of one priced meter: a month of idle, and on top of it for one million predictions."""

    price: str
    idle: float
    per_million: float = 0.0
    how: str = ""  # how the quantity follows from the resource's inputs


@dataclass(frozen=True)
class Line:
    resource: str  # the resource's logical name
    usage: Usage
    unit_usd: float | None
    unit: str

    @property
    def idle_usd(self) -> float | None:
        return None if self.unit_usd is None else self.usage.idle * self.unit_usd

    @property
    def per_million_usd(self) -> float | None:
        return None if self.unit_usd is None else self.usage.per_million * self.unit_usd


@dataclass
class Estimate:
    stack: str
    region: str
    lines: list[Line]
    assumptions: list[str] = field(default_factory=list)

    @property
    def idle_usd(self) -> float:
        return sum(line.idle_usd or 0.0 for line in self.lines)

    @property
    def per_million_usd(self) -> float:
        return sum(line.per_million_usd or 0.0 for line in self.lines)

    @property
    def unpriced(self) -> list[Line]:
        """Lines that would cost something but whose price the sheet does not have."""
        return [
            line
            for line in self.lines
            if line.unit_usd is None and (line.usage.idle or line.usage.per_million)
        ]


MeterReader = Callable[[Registered], list[Usage]]


class SheetGapError(Exception):
    """The program creates something the price sheet does not account for; the message names what to add."""


def estimate(
    stack: str, resources: Iterable[Registered], sheet: PriceSheet, assumptions: Iterable[str] = ()
) -> Estimate:
    """Price every billable resource; a resource type the sheet does not know is an error, not a zero."""
    readers = METERS[sheet.cloud]
    lines: list[Line] = []
    for resource in resources:
        if not resource.custom or resource.type in sheet.free:
            continue
        if resource.type not in sheet.billable:
            raise SheetGapError(
                f"{resource.type} ({resource.name}) is in neither `billable` nor `free` of the {sheet.cloud} "
                "price sheet: add it to mlops_stack/cost/prices/"
            )
        for usage in readers[resource.type](resource):
            price = sheet.prices.get(usage.price)
            if price is None or usage.price not in sheet.billable[resource.type]:
                raise SheetGapError(
                    f"{resource.type} draws on {usage.price!r}, which its entry in the {sheet.cloud} price "
                    "sheet does not list: add the price (with its page and date) to mlops_stack/cost/prices/"
                )
            lines.append(Line(resource.name, usage, price.usd, price.unit))
    notes = [
        *assumptions,
        f"list prices in {sheet.region} (see the sheet for each price's page, date and caveats); "
        "no free tier subtracted (free grants are per billing account, not per stack); a month is 730 hours",
        f"per million predictions: {PROFILE.describe()}; what it adds on top of idle",
        f"storage held when idle: {IMAGE_GB:g} GB per image, {ARTIFACT_GB:g} GB of artifacts, "
        f"{DATABASE_GB:g} GB of tracking data",
    ]
    return Estimate(stack, sheet.region, lines, notes)


# --- what serverless containers use: shared by the three clouds ---------------------------------------------


def container_usage(
    *, cpu: float, memory_gib: float, min_instances: int, serves_predictions: bool, meters: Mapping[str, str]
) -> list[Usage]:
    """Containers billed per second (Cloud Run, Container Apps). Idle: the minimum instances at the idle
    rate. Per million predictions (the API only): one instance for the traffic's duration at the active rate,
    less what a warm minimum instance already pays idle then."""
    size = f"{min_instances} x ({cpu:g} vCPU, {memory_gib:g} GiB)"
    seconds = PROFILE.seconds_per_million if serves_predictions else 0.0
    warm = 1 if min_instances > 0 else 0
    return [
        Usage(meters["cpu_idle"], min_instances * cpu * SECONDS_PER_MONTH, -warm * cpu * seconds, size),
        Usage(
            meters["memory_idle"],
            min_instances * memory_gib * SECONDS_PER_MONTH,
            -warm * memory_gib * seconds,
            size,
        ),
        Usage(meters["cpu_active"], 0.0, cpu * seconds, f"{cpu:g} vCPU while serving"),
        Usage(meters["memory_active"], 0.0, memory_gib * seconds, f"{memory_gib:g} GiB while serving"),
    ]


def memory_gib(value: str) -> float:
    """'1024Mi', '2Gi', '2.0Gi', '1024' (MiB) -> GiB."""
    if value.endswith("Gi"):
        return float(value[:-2])
    return float(value.removesuffix("Mi")) / 1024


def serves_predictions(resource: Registered) -> bool:
    """The model API's service (every cloud names it `<stack>-api-...`)."""
    return "-api-" in resource.name


def prediction_traffic(resource: Registered, *, requests: str | None, egress: str) -> list[Usage]:
    if not serves_predictions(resource):
        return []
    usages = [Usage(egress, 0.0, PROFILE.response_gb_per_million, "responses to the internet")]
    if requests is not None:
        usages.append(Usage(requests, 0.0, 1.0, "one request per prediction"))
    return usages


def per_month(price: str, quantity: float, how: str) -> list[Usage]:
    return [Usage(price, quantity, 0.0, how)]


# --- GCP ----------------------------------------------------------------------------------------------------

CLOUD_RUN = {
    "cpu_idle": "cloud_run_cpu_idle",
    "memory_idle": "cloud_run_memory_idle",
    "cpu_active": "cloud_run_cpu_active",
    "memory_active": "cloud_run_memory_active",
}
CLOUD_SQL_DEFAULT_DISK_GB = 10  # the instance's disk when disk_size is not set (it then grows by itself)


def cloud_run_service(resource: Registered) -> list[Usage]:
    template = resource.inputs["template"]
    limits = template["containers"][0]["resources"]["limits"]
    return [
        *container_usage(
            cpu=float(limits["cpu"]),
            memory_gib=memory_gib(limits["memory"]),
            min_instances=int(template.get("scaling", {}).get("minInstanceCount", 0)),
            serves_predictions=serves_predictions(resource),
            meters=CLOUD_RUN,
        ),
        *prediction_traffic(resource, requests="cloud_run_requests", egress="internet_egress"),
    ]


def cloud_sql_instance(resource: Registered) -> list[Usage]:
    settings = resource.inputs["settings"]
    tier = settings["tier"]
    disk = float(settings.get("diskSize", CLOUD_SQL_DEFAULT_DISK_GB))
    storage = per_month("cloud_sql_ssd_gb_month", disk, f"{disk:g} GB SSD")
    if tier.startswith("db-custom-"):
        vcpus, memory_mb = (int(part) for part in tier.removeprefix("db-custom-").split("-"))
        return [
            *per_month("cloud_sql_vcpu_hour", vcpus * HOURS_PER_MONTH, f"{tier}: {vcpus} vCPU"),
            *per_month(
                "cloud_sql_memory_gb_hour", memory_mb / 1024 * HOURS_PER_MONTH, f"{tier}: {memory_mb} MB"
            ),
            *storage,
        ]
    return [*per_month(f"cloud_sql_{tier}_hour", HOURS_PER_MONTH, f"{tier}, always on"), *storage]


GCP_METERS: Mapping[str, MeterReader] = {
    "gcp:monitoring/alertPolicy:AlertPolicy": lambda r: per_month(
        "alerting_condition_month", len(r.inputs.get("conditions") or [1]), "one condition, one series"
    ),
    "gcp:logging/metric:Metric": lambda r: per_month(
        "log_based_metric_mib", 0, "samples only when lines match"
    ),
    "gcp:cloudrunv2/service:Service": cloud_run_service,
    "gcp:sql/databaseInstance:DatabaseInstance": cloud_sql_instance,
    "gcp:storage/bucket:Bucket": lambda r: per_month("gcs_standard_gb_month", ARTIFACT_GB, "artifacts"),
    "gcp:artifactregistry/repository:Repository": lambda r: per_month(
        "artifact_registry_gb_month", 2 * IMAGE_GB, "one image of each service"
    ),
    "gcp:secretmanager/secretVersion:SecretVersion": lambda r: per_month(
        "secret_manager_version_month", 1, "one active version"
    ),
}

# --- AWS ----------------------------------------------------------------------------------------------------

EXPRESS_LOAD_BALANCER_ZONES = 2  # the internet-facing load balancer sits in the two public subnets


def express_service(resource: Registered) -> list[Usage]:
    """Fargate tasks: Express Mode keeps at least one running (it cannot start one on a request), so the
    minimum tasks serve the traffic and a million predictions add no compute, only load balancer capacity."""
    inputs = resource.inputs
    (target,) = inputs["scalingTargets"]
    tasks = max(1, int(target.get("minTaskCount", 1)))
    cpu, memory = int(inputs["cpu"]) / 1024, int(inputs["memory"]) / 1024
    usages = [
        *per_month(
            "fargate_vcpu_hour", tasks * cpu * HOURS_PER_MONTH, f"{tasks} task(s) x {cpu:g} vCPU, always on"
        ),
        *per_month("fargate_gb_hour", tasks * memory * HOURS_PER_MONTH, f"{tasks} task(s) x {memory:g} GB"),
    ]
    if serves_predictions(resource):
        hours = PROFILE.seconds_per_million / 3600
        lcu_hours = hours * PROFILE.processed_gb_per_hour  # processed bytes: 1 LCU is 1 GB an hour
        usages.append(Usage("alb_lcu_hour", 0.0, lcu_hours, "bytes through the load balancer"))
        usages += prediction_traffic(resource, requests=None, egress="internet_egress")
    return usages


def express_cluster(resource: Registered) -> list[Usage]:
    return [
        *per_month(
            "alb_hour", HOURS_PER_MONTH, "the load balancer Express Mode makes for the cluster's services"
        ),
        *per_month(
            "public_ipv4_hour",
            EXPRESS_LOAD_BALANCER_ZONES * HOURS_PER_MONTH,
            f"its public IPv4 address in each of {EXPRESS_LOAD_BALANCER_ZONES} zones",
        ),
    ]


def vpc_endpoint(resource: Registered) -> list[Usage]:
    if resource.inputs.get("vpcEndpointType") != "Interface":
        return []  # the S3 gateway endpoint is free
    zones = len(resource.inputs["subnetIds"])
    service = resource.inputs["serviceName"].rsplit(".", 1)[-1]
    return per_month("interface_endpoint_zone_hour", zones * HOURS_PER_MONTH, f"{service}: {zones} zone(s)")


def aurora_cluster(resource: Registered) -> list[Usage]:
    scaling = resource.inputs.get("serverlessv2ScalingConfiguration") or {}
    minimum = float(scaling.get("minCapacity", 0))
    return [
        *per_month(
            "aurora_serverless_acu_hour", minimum * HOURS_PER_MONTH, f"minimum {minimum:g} ACU (0: paused)"
        ),
        *per_month("aurora_storage_gb_month", DATABASE_GB, "tracking data"),
    ]


def rds_instance(resource: Registered) -> list[Usage]:
    """A provisioned database (databaseTier db.*): an always-on instance and its allocated gp3 storage."""
    kind, storage = resource.inputs["instanceClass"], float(resource.inputs["allocatedStorage"])
    return [
        *per_month(f"rds_{kind}_hour", HOURS_PER_MONTH, f"{kind}, always on"),
        *per_month("rds_gp3_gb_month", storage, f"{storage:g} GB allocated"),
    ]


def metric_alarm(resource: Registered) -> list[Usage]:
    """A standard alarm is billed per metric it reads (a metric-math alarm reads several). The target groups
    the load-balancer alarms read are looked up at `up` (infra/aws/monitoring.py): in a preview, count one."""
    queries = resource.inputs.get("metricQueries")
    if not isinstance(queries, list):  # unknown in a preview: the lookup has not run
        return per_month("cloudwatch_alarm_metric_month", 1, "at least one metric (looked up at `up`)")
    metrics = [query for query in queries if isinstance(query, dict) and query.get("metric")]
    return per_month("cloudwatch_alarm_metric_month", len(metrics), f"{len(metrics)} metric(s)")


AWS_METERS: Mapping[str, MeterReader] = {
    "aws:cloudwatch/metricAlarm:MetricAlarm": metric_alarm,
    "aws:cloudwatch/logMetricFilter:LogMetricFilter": lambda r: per_month(
        "cloudwatch_custom_metric_month", 0, "data only when the API writes its drift line"
    ),
    "aws:cloudwatch/dashboard:Dashboard": lambda r: per_month(
        "cloudwatch_dashboard_month", 1, "one dashboard (free while the account has at most 3)"
    ),
    "aws:ecs/expressGatewayService:ExpressGatewayService": express_service,
    "aws:ecs/cluster:Cluster": express_cluster,
    "aws:ec2/vpcEndpoint:VpcEndpoint": vpc_endpoint,
    "aws:rds/cluster:Cluster": aurora_cluster,
    "aws:rds/instance:Instance": rds_instance,
    "aws:kms/key:Key": lambda r: per_month("kms_key_month", 1, "one key"),
    "aws:secretsmanager/secret:Secret": lambda r: per_month("secrets_manager_secret_month", 1, "one secret"),
    "aws:cloudwatch/logGroup:LogGroup": lambda r: per_month("cloudwatch_logs_ingest_gb", 0, "billed by use"),
    "aws:ecr/repository:Repository": lambda r: per_month("ecr_gb_month", IMAGE_GB, "one image"),
    "aws:s3/bucket:Bucket": lambda r: per_month("s3_standard_gb_month", ARTIFACT_GB, "artifacts"),
}

# --- Azure --------------------------------------------------------------------------------------------------

CONTAINER_APPS = {
    "cpu_idle": "container_apps_vcpu_second_idle",
    "memory_idle": "container_apps_memory_second_idle",
    "cpu_active": "container_apps_vcpu_second_active",
    "memory_active": "container_apps_memory_second_active",
}
POSTGRES_DEFAULT_STORAGE_GB = 32
ACR_PURGE_SECONDS_PER_RUN = 60  # the daily `acr purge` run, one vCPU


def container_app(resource: Registered) -> list[Usage]:
    template = resource.inputs["template"]
    resources = template["containers"][0]["resources"]
    return [
        *container_usage(
            cpu=float(resources["cpu"]),
            memory_gib=memory_gib(resources["memory"]),
            min_instances=int(template.get("scale", {}).get("minReplicas", 0)),
            serves_predictions=serves_predictions(resource),
            meters=CONTAINER_APPS,
        ),
        *prediction_traffic(resource, requests="container_apps_requests", egress="internet_egress"),
    ]


def postgres_server(resource: Registered) -> list[Usage]:
    sku = resource.inputs["sku"]["name"]
    storage = float((resource.inputs.get("storage") or {}).get("storageSizeGB", POSTGRES_DEFAULT_STORAGE_GB))
    return [
        *per_month(f"postgres_{sku}_hour", HOURS_PER_MONTH, f"{sku}, always on"),
        *per_month("postgres_storage_gb_month", storage, f"{storage:g} GB provisioned"),
    ]


def container_registry(resource: Registered) -> list[Usage]:
    sku = resource.inputs["sku"]["name"].lower()
    return per_month(f"acr_{sku}_day", DAYS_PER_MONTH, f"{sku} registry, per day")


def storage_account(resource: Registered) -> list[Usage]:
    return per_month("blob_hot_gb_month", ARTIFACT_GB, f"artifacts ({resource.inputs['sku']['name']})")


RETRAIN_SECRET_READS_PER_MONTH = 5  # one read a retrain run, weekly (.github/workflows/retrain.yml)

AZURE_METERS: Mapping[str, MeterReader] = {
    "azure-native:monitor:MetricAlert": lambda r: per_month(
        "metric_alert_time_series_month", 1, "one resource, one metric, one dimension value"
    ),
    "azure-native:monitor:ScheduledQueryRule": lambda r: per_month(
        "log_alert_rule_month_15min", 1, "one rule every 15 minutes"
    ),
    "azure-native:app:ContainerApp": container_app,
    "azure-native:dbforpostgresql:Server": postgres_server,
    "azure-native:containerregistry:Registry": container_registry,
    "azure-native:containerregistry:Task": lambda r: per_month(
        "acr_task_vcpu_second", ACR_PURGE_SECONDS_PER_RUN * DAYS_PER_MONTH, "the daily purge run"
    ),
    "azure-native:operationalinsights:Workspace": lambda r: per_month("log_analytics_gb", 0, "billed by use"),
    "azure-native:storage:StorageAccount": storage_account,
    "azure-native:privatedns:PrivateZone": lambda r: per_month("private_dns_zone_month", 1, "one zone"),
    # The retrain workflow reads the admin password once a run (weekly on dev), the deploy writes it on
    # rotation: a handful of operations a month, priced per 10,000.
    "azure-native:keyvault:Vault": lambda r: per_month(
        "key_vault_secret_operations", RETRAIN_SECRET_READS_PER_MONTH / 10_000, "the retrain workflow's reads"
    ),
}

METERS: Mapping[str, Mapping[str, MeterReader]] = {
    "gcp": GCP_METERS,
    "aws": AWS_METERS,
    "azure": AZURE_METERS,
}


def usage_of(resource: Registered, cloud: str) -> list[Usage]:
    """What one resource uses (for tests and the sheet's coverage check)."""
    return METERS[cloud][resource.type](resource)


def as_dict(result: Estimate) -> dict[str, Any]:
    return {
        "stack": result.stack,
        "region": result.region,
        "idle_usd_per_month": round(result.idle_usd, 2) + 0.0,  # + 0.0: no "-0.0"
        "usd_per_million_predictions": round(result.per_million_usd, 2) + 0.0,
        "unpriced": sorted({line.usage.price for line in result.unpriced}),
    }
