"""AWS's documented limits on what the AWS program sends, as data (checked by `infra.limits`).

Every name the program gives an AWS resource (length and characters), every number with a documented range
and every combination AWS restricts, with the page that says so. `infra/tests/aws/test_limits.py` runs every
example stack and dev/prod/sandbox stacks with the longest sandbox id config accepts, with a model pinned,
against this table, and checks every rule found something to check.

Names are checked as AWS receives them (`physical_inputs`): a name the program sets is sent as is; a name
prefix gets 26 characters appended by the provider (terraform-provider-aws `create.Name`, `id.UniqueId`: a
timestamp and a counter); a name left out is made by Pulumi's auto-naming, the logical name, a dash and 7
random characters (pulumi-terraform-bridge AutoName; pulumi/pulumi sdk/go/common/resource/resource_id.go
`NewUniqueName` refuses a name that would exceed the provider's maximum).

Not here: load balancer and target group names (32 characters) and listener rules, which Express Mode names
and creates itself; the program sends none.
"""

import ipaddress
import json
import re
from collections.abc import Mapping
from typing import Any

from infra.config import CloudRules
from infra.limits import CombinationRule, NameRule, RangeRule, Rule

BUCKET = "aws:s3/bucket:Bucket"
BUCKET_LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
REPOSITORY = "aws:ecr/repository:Repository"
LIFECYCLE_POLICY = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
STORED_VALUE = "aws:secretsmanager/secret:Secret"  # a Secrets Manager secret
KMS_KEY = "aws:kms/key:Key"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_SUBNET_GROUP = "aws:rds/subnetGroup:SubnetGroup"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
ECS_CLUSTER = "aws:ecs/cluster:Cluster"
EXPRESS_SERVICE = "aws:ecs/expressGatewayService:ExpressGatewayService"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
VPC = "aws:ec2/vpc:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
PROVIDER = "pulumi:providers:aws"
IMAGE = "docker-build:index:Image"

# Characters terraform-provider-aws appends to a name prefix, and Pulumi to a logical name (with a dash).
PREFIX_SUFFIX_LENGTH = 26
AUTONAME_SUFFIX_LENGTH = 7

# The name field of each resource type the program names, and the field holding a prefix instead, if any.
NAME_FIELDS: Mapping[str, tuple[str, str | None]] = {
    BUCKET: ("bucket", "bucketPrefix"),
    ROLE: ("name", "namePrefix"),
    ROLE_POLICY: ("name", "namePrefix"),
    STORED_VALUE: ("name", "namePrefix"),
    RDS_CLUSTER: ("clusterIdentifier", "clusterIdentifierPrefix"),
    RDS_CLUSTER_INSTANCE: ("identifier", "identifierPrefix"),
    RDS_INSTANCE: ("identifier", "identifierPrefix"),
    RDS_SUBNET_GROUP: ("name", "namePrefix"),
    SECURITY_GROUP: ("name", "namePrefix"),
}


def physical_inputs(resource_type: str, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs with each name as AWS will receive it (see the module docstring); the suffixes are
    placeholders of the real length and character set."""
    physical = dict(inputs)
    if resource_type in NAME_FIELDS:
        field, prefix_field = NAME_FIELDS[resource_type]
        if physical.get(field) is None:
            prefix = physical.get(prefix_field) if prefix_field else None
            if isinstance(prefix, str):
                physical[field] = prefix + "0" * PREFIX_SUFFIX_LENGTH
            else:
                physical[field] = f"{name}-{'0' * AUTONAME_SUFFIX_LENGTH}"
    return physical


# --- docs ---
S3_NAMES_DOC = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html"
S3_LIFECYCLE_DOC = (
    "https://docs.aws.amazon.com/AmazonS3/latest/API/API_NoncurrentVersionExpiration.html, "
    "https://docs.aws.amazon.com/AmazonS3/latest/API/API_AbortIncompleteMultipartUpload.html"
)
IAM_ROLE_DOC = "https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html"
IAM_ROLE_POLICY_DOC = "https://docs.aws.amazon.com/IAM/latest/APIReference/API_PutRolePolicy.html"
ECR_REPOSITORY_DOC = "https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html"
ECR_LIFECYCLE_DOC = "https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html"
ECR_TAG_DOC = "https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_PutImage.html"
SECRETS_DOC = "https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html"
SECRETS_DELETE_DOC = "https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DeleteSecret.html"
KMS_DOC = "https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateKey.html"
KMS_DELETE_DOC = "https://docs.aws.amazon.com/kms/latest/APIReference/API_ScheduleKeyDeletion.html"
RDS_CLUSTER_DOC = "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBCluster.html"
RDS_INSTANCE_DOC = "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html"
RDS_SUBNET_GROUP_DOC = (
    "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBSubnetGroup.html"
)
AURORA_SERVERLESS_DOC = (
    "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ServerlessV2ScalingConfiguration.html"
)
LOGS_DOC = "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html"
LOGS_RETENTION_DOC = (
    "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html"
)
DASHBOARD_DOC = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutDashboard.html"
ECS_CLUSTER_DOC = "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateCluster.html"
EXPRESS_DOC = "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateExpressGatewayService.html"
# The valid CPU and memory values of an Express service, as the provider documents them.
EXPRESS_SIZES_DOC = (
    "https://registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/ecs_express_gateway_service"
    " (cpu: powers of 2 between 256 and 4096; memory: 512 to 8192), within "
    "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size"
)
SECURITY_GROUP_DOC = "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSecurityGroup.html"
SECURITY_GROUP_RULE_DOC = (
    "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_AuthorizeSecurityGroupEgress.html"
)
VPC_DOC = "https://docs.aws.amazon.com/vpc/latest/userguide/vpc-cidr-blocks.html"
TAGS_DOC = "https://docs.aws.amazon.com/tag-editor/latest/userguide/tagging.html#tag-conventions"

# --- character sets ---
S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]*[a-z0-9]")
IAM_NAME = re.compile(r"[\w+=,.@-]+", re.ASCII)
IAM_PATH = re.compile(r"/|/[\x21-\x7e]+/")
IAM_DESCRIPTION = re.compile(r"[\t\n\r\x20-\x7e\xa1-\xff]*")
ECR_REPOSITORY = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]+")
# RDS identifiers: a letter first, then letters, digits and single hyphens, not ending in a hyphen.
RDS_IDENTIFIER = re.compile(r"[A-Za-z](?:-?[A-Za-z0-9])*")
RDS_SUBNET_GROUP_NAME = re.compile(r"[a-z0-9 ._-]+")
POSTGRES_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
LOG_GROUP_NAME = re.compile(r"[.\-_/#A-Za-z0-9]+")
ECS_NAME = re.compile(r"[A-Za-z0-9_-]+")
DASHBOARD_NAME = re.compile(r"[A-Za-z0-9_-]+")
SECURITY_GROUP_TEXT = re.compile(r"[a-zA-Z0-9. _\-:/()#,@\[\]+=&;{}!$*]*")
# Tags: letters, digits, spaces and _ . : / = + - @ (the docs' \p{L}\p{Z}\p{N}; \w and \s cover them).
TAG_TEXT = re.compile(r"[\w\s.:/=+\-@]*")
ECR_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")

# Fargate task sizes that ECS Express Mode also takes: CPU units -> the memory sizes (MiB). Fargate: 0.25 vCPU
# with 512, 1024 or 2048; 0.5 with 1-4 GiB; 1 with 2-8 GiB; 2 with 4-16 GiB; 4 with 8-30 GiB (1 GiB steps);
# Express caps memory at 8192. Config takes exactly these pairs (CONFIG_RULES below).
EXPRESS_TASK_SIZES: Mapping[int, frozenset[int]] = {
    256: frozenset({512, 1024, 2048}),
    512: frozenset(range(1024, 4097, 1024)),
    1024: frozenset(range(2048, 8193, 1024)),
    2048: frozenset(range(4096, 8193, 1024)),
    4096: frozenset({8192}),
}
EXPRESS_SCALING_METRICS = frozenset({"AVERAGE_CPU", "AVERAGE_MEMORY", "REQUEST_COUNT_PER_TARGET"})
LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)


def _express_size(inputs: Mapping[str, Any]) -> str | None:
    try:
        cpu, memory = int(inputs["cpu"]), int(inputs["memory"])
    except (KeyError, TypeError, ValueError):
        return None
    if cpu not in EXPRESS_TASK_SIZES:
        return f"cpu {cpu} is not one of {sorted(EXPRESS_TASK_SIZES)} CPU units"
    if memory not in EXPRESS_TASK_SIZES[cpu]:
        return f"memory {memory} MiB does not go with cpu {cpu}: {sorted(EXPRESS_TASK_SIZES[cpu])}"
    return None


def _express_scaling(inputs: Mapping[str, Any]) -> str | None:
    for target in inputs.get("scalingTargets") or []:
        metric, low, high = (
            target.get("autoScalingMetric"),
            target.get("minTaskCount"),
            target.get("maxTaskCount"),
        )
        if metric not in EXPRESS_SCALING_METRICS:
            return f"scaling metric {metric!r} is not one of {sorted(EXPRESS_SCALING_METRICS)}"
        if not 1 <= (low or 1) <= (high or 1):
            return f"task counts {low}-{high} are not 1 <= min <= max"
    return None


def _express_subnets(inputs: Mapping[str, Any]) -> str | None:
    for network in inputs.get("networkConfigurations") or []:
        if len(network.get("subnets") or []) < 2:
            return "a network configuration needs at least 2 subnets"
    return None


def _express_health_check(inputs: Mapping[str, Any]) -> str | None:
    path = inputs.get("healthCheckPath")
    if isinstance(path, str) and not path.startswith("/"):
        return f"health check path {path!r} does not start with '/'"
    return None


def _log_retention(inputs: Mapping[str, Any]) -> str | None:
    days = inputs.get("retentionInDays")
    if days is not None and int(days) not in LOG_RETENTION_DAYS:
        return f"retention of {days} days is not one of {sorted(LOG_RETENTION_DAYS)}"
    return None


def _secret_recovery(inputs: Mapping[str, Any]) -> str | None:
    days = inputs.get("recoveryWindowInDays")
    if days is not None and not (int(days) == 0 or 7 <= int(days) <= 30):
        return f"recovery window of {days} days: 0 (delete at once) or 7-30"
    return None


def _ecr_lifecycle(inputs: Mapping[str, Any]) -> str | None:
    policy = inputs.get("policy")
    if not isinstance(policy, str):
        return None
    for rule in json.loads(policy).get("rules", []):
        count = rule.get("selection", {}).get("countNumber")
        if count is not None and not 1 <= int(count) <= 2**31 - 1:
            return f"countNumber {count} is not a positive integer"
        if not 1 <= int(rule.get("rulePriority", 0)) <= 999:
            return f"rulePriority {rule.get('rulePriority')} is not 1-999"
    return None


def _rds_storage(inputs: Mapping[str, Any]) -> str | None:
    allocated, maximum = inputs.get("allocatedStorage"), inputs.get("maxAllocatedStorage")
    if allocated is not None and not 20 <= int(allocated) <= 65536:
        return f"allocated storage {allocated} GiB: PostgreSQL on gp3 takes 20-65536"
    if (
        allocated is not None
        and maximum is not None
        and int(maximum) not in (0,)
        and int(maximum) < int(allocated)
    ):
        return f"max allocated storage {maximum} GiB is below the allocated {allocated}"
    return None


def _cidr(low: int, high: int) -> Any:
    def check(inputs: Mapping[str, Any]) -> str | None:
        block = inputs.get("cidrBlock")
        if not isinstance(block, str):
            return None
        prefix = ipaddress.ip_network(block).prefixlen
        return None if low <= prefix <= high else f"CIDR {block} is not between /{low} and /{high}"

    return check


def _tags(inputs: Mapping[str, Any]) -> str | None:
    tags = inputs.get("tags")
    default_tags = inputs.get("defaultTags")
    if isinstance(default_tags, str):
        default_tags = json.loads(default_tags)
    if isinstance(default_tags, Mapping):
        tags = {**(default_tags.get("tags") or {}), **(tags or {})}
    for key, value in (tags or {}).items():
        if not (1 <= len(key) <= 128 and TAG_TEXT.fullmatch(key)) or key.lower().startswith("aws:"):
            return f"tag key {key!r}: 1-128 letters, digits, spaces or _.:/=+-@, not starting with aws:"
        if not (len(str(value)) <= 256 and TAG_TEXT.fullmatch(str(value))):
            return f"tag {key}={value!r}: at most 256 letters, digits, spaces or _.:/=+-@"
    return None


def _image_tags(inputs: Mapping[str, Any]) -> str | None:
    for reference in inputs.get("tags") or []:
        repository, _, tag = str(reference).rpartition(":")
        if not repository or not ECR_TAG.fullmatch(tag):
            return f"image tag {tag!r} of {reference}: 1-128 of [A-Za-z0-9_.-], not starting with . or -"
    return None


RULES: tuple[Rule, ...] = (
    # S3
    NameRule(BUCKET, "bucket", 63, S3_BUCKET, "lowercase letters, digits, '.', '-'", S3_NAMES_DOC, 3),
    RangeRule(
        BUCKET_LIFECYCLE,
        "rules[].noncurrentVersionExpiration.noncurrentDays",
        1,
        2**31 - 1,
        "a positive number of days",
        S3_LIFECYCLE_DOC,
    ),
    RangeRule(
        BUCKET_LIFECYCLE,
        "rules[].abortIncompleteMultipartUpload.daysAfterInitiation",
        1,
        2**31 - 1,
        "a positive number of days",
        S3_LIFECYCLE_DOC,
    ),
    # IAM
    NameRule(ROLE, "name", 64, IAM_NAME, "letters, digits and +=,.@_-", IAM_ROLE_DOC),
    NameRule(ROLE, "path", 512, IAM_PATH, "'/' or '/…/' of printable ASCII", IAM_ROLE_DOC),
    NameRule(ROLE, "description", 1000, IAM_DESCRIPTION, "printable Latin-1", IAM_ROLE_DOC, 0),
    NameRule(ROLE_POLICY, "name", 128, IAM_NAME, "letters, digits and +=,.@_-", IAM_ROLE_POLICY_DOC),
    # ECR
    NameRule(
        REPOSITORY,
        "name",
        256,
        ECR_REPOSITORY,
        "lowercase path segments of [a-z0-9._-]",
        ECR_REPOSITORY_DOC,
        2,
    ),
    CombinationRule(
        LIFECYCLE_POLICY, "policy", _ecr_lifecycle, "countNumber >= 1, rulePriority 1-999", ECR_LIFECYCLE_DOC
    ),
    CombinationRule(IMAGE, "tags", _image_tags, "an ECR image tag of at most 128 characters", ECR_TAG_DOC),
    # Secrets Manager, KMS
    NameRule(STORED_VALUE, "name", 512, SECRET_NAME, "letters, digits and /_+=.@-", SECRETS_DOC),
    NameRule(STORED_VALUE, "description", 2048, re.compile(r".*", re.DOTALL), "any text", SECRETS_DOC, 0),
    CombinationRule(
        STORED_VALUE, "recoveryWindowInDays", _secret_recovery, "0 or 7-30 days", SECRETS_DELETE_DOC
    ),
    NameRule(KMS_KEY, "description", 8192, re.compile(r".*", re.DOTALL), "any text", KMS_DOC, 0),
    RangeRule(KMS_KEY, "deletionWindowInDays", 7, 30, "7-30 days", KMS_DELETE_DOC),
    # RDS / Aurora
    NameRule(
        RDS_CLUSTER,
        "clusterIdentifier",
        63,
        RDS_IDENTIFIER,
        "a letter, then letters, digits, single hyphens, no hyphen at the end",
        RDS_CLUSTER_DOC,
    ),
    NameRule(
        RDS_CLUSTER_INSTANCE,
        "identifier",
        63,
        RDS_IDENTIFIER,
        "a letter, then letters, digits, single hyphens, no hyphen at the end",
        RDS_INSTANCE_DOC,
    ),
    NameRule(
        RDS_INSTANCE,
        "identifier",
        63,
        RDS_IDENTIFIER,
        "a letter, then letters, digits, single hyphens, no hyphen at the end",
        RDS_INSTANCE_DOC,
    ),
    NameRule(
        RDS_CLUSTER, "finalSnapshotIdentifier", 255, RDS_IDENTIFIER, "like an identifier", RDS_CLUSTER_DOC
    ),
    NameRule(
        RDS_INSTANCE, "finalSnapshotIdentifier", 255, RDS_IDENTIFIER, "like an identifier", RDS_INSTANCE_DOC
    ),
    NameRule(
        RDS_CLUSTER, "databaseName", 63, POSTGRES_NAME, "a letter, then letters, digits, '_'", RDS_CLUSTER_DOC
    ),
    NameRule(
        RDS_CLUSTER,
        "masterUsername",
        63,
        POSTGRES_NAME,
        "a letter, then letters, digits, '_'",
        RDS_CLUSTER_DOC,
    ),
    NameRule(
        RDS_INSTANCE, "dbName", 63, POSTGRES_NAME, "a letter, then letters, digits, '_'", RDS_INSTANCE_DOC
    ),
    NameRule(
        RDS_INSTANCE, "username", 63, POSTGRES_NAME, "a letter, then letters, digits, '_'", RDS_INSTANCE_DOC
    ),
    NameRule(
        RDS_SUBNET_GROUP,
        "name",
        255,
        RDS_SUBNET_GROUP_NAME,
        "lowercase letters, digits, spaces, '.', '_', '-'",
        RDS_SUBNET_GROUP_DOC,
    ),
    RangeRule(RDS_CLUSTER, "backupRetentionPeriod", 1, 35, "Aurora keeps 1-35 days", RDS_CLUSTER_DOC),
    RangeRule(RDS_INSTANCE, "backupRetentionPeriod", 0, 35, "0 (off) to 35 days", RDS_INSTANCE_DOC),
    RangeRule(
        RDS_CLUSTER,
        "serverlessv2ScalingConfiguration.minCapacity",
        0,
        256,
        "0-256 ACU (0: pauses)",
        AURORA_SERVERLESS_DOC,
    ),
    RangeRule(
        RDS_CLUSTER,
        "serverlessv2ScalingConfiguration.maxCapacity",
        1,
        256,
        "1-256 ACU",
        AURORA_SERVERLESS_DOC,
    ),
    RangeRule(
        RDS_CLUSTER,
        "serverlessv2ScalingConfiguration.secondsUntilAutoPause",
        300,
        86400,
        "5 minutes to 1 day",
        AURORA_SERVERLESS_DOC,
    ),
    CombinationRule(
        RDS_INSTANCE, "allocatedStorage", _rds_storage, "20-65536 GiB, max >= allocated", RDS_INSTANCE_DOC
    ),
    # CloudWatch Logs
    NameRule(LOG_GROUP, "name", 512, LOG_GROUP_NAME, "letters, digits and ._-/#", LOGS_DOC),
    CombinationRule(
        LOG_GROUP, "retentionInDays", _log_retention, "one of the allowed retentions", LOGS_RETENTION_DOC
    ),
    # CloudWatch: "The maximum length is 255, and valid characters are A-Z, a-z, 0-9, "-", and "_"."
    NameRule(DASHBOARD, "dashboardName", 255, DASHBOARD_NAME, "letters, digits, '-' and '_'", DASHBOARD_DOC),
    # ECS and Express Mode
    NameRule(ECS_CLUSTER, "name", 255, ECS_NAME, "letters, digits, '_', '-'", ECS_CLUSTER_DOC),
    NameRule(EXPRESS_SERVICE, "serviceName", 255, ECS_NAME, "letters, digits, '_', '-'", EXPRESS_DOC),
    CombinationRule(EXPRESS_SERVICE, "", _express_size, "a Fargate size Express takes", EXPRESS_SIZES_DOC),
    RangeRule(EXPRESS_SERVICE, "memory", 512, 8192, "512-8192 MiB", EXPRESS_SIZES_DOC),
    CombinationRule(
        EXPRESS_SERVICE, "scalingTargets", _express_scaling, "metric and 1 <= min <= max", EXPRESS_DOC
    ),
    CombinationRule(
        EXPRESS_SERVICE,
        "networkConfigurations",
        _express_subnets,
        "at least 2 subnets",
        "https://registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/ecs_express_gateway_service"
        "#network_configuration",
    ),
    CombinationRule(
        EXPRESS_SERVICE, "healthCheckPath", _express_health_check, "starts with '/'", EXPRESS_DOC
    ),
    RangeRule(EXPRESS_SERVICE, "primaryContainer.containerPort", 1, 65535, "a TCP port", EXPRESS_DOC),
    # EC2 / VPC
    NameRule(
        SECURITY_GROUP,
        "name",
        255,
        SECURITY_GROUP_TEXT,
        "a-z A-Z 0-9 spaces and ._-:/()#,@[]+=&;{}!$*",
        SECURITY_GROUP_DOC,
    ),
    NameRule(
        SECURITY_GROUP,
        "description",
        255,
        SECURITY_GROUP_TEXT,
        "a-z A-Z 0-9 spaces and ._-:/()#,@[]+=&;{}!$*",
        SECURITY_GROUP_DOC,
    ),
    NameRule(
        EGRESS_RULE,
        "description",
        255,
        SECURITY_GROUP_TEXT,
        "a-z A-Z 0-9 spaces and ._-:/()#,@[]+=&;{}!$*",
        SECURITY_GROUP_RULE_DOC,
        0,
    ),
    NameRule(
        INGRESS_RULE,
        "description",
        255,
        SECURITY_GROUP_TEXT,
        "a-z A-Z 0-9 spaces and ._-:/()#,@[]+=&;{}!$*",
        SECURITY_GROUP_RULE_DOC,
        0,
    ),
    RangeRule(EGRESS_RULE, "fromPort", 0, 65535, "a TCP port", SECURITY_GROUP_RULE_DOC),
    RangeRule(INGRESS_RULE, "fromPort", 0, 65535, "a TCP port", SECURITY_GROUP_RULE_DOC),
    CombinationRule(VPC, "cidrBlock", _cidr(16, 28), "a /16 to /28 block", VPC_DOC),
    CombinationRule(SUBNET, "cidrBlock", _cidr(16, 28), "a /16 to /28 block", VPC_DOC),
    # Tags, on every resource through the provider's default tags, and the Name tags set here
    CombinationRule(PROVIDER, "defaultTags", _tags, "tag keys 1-128, values 0-256 characters", TAGS_DOC),
    CombinationRule(VPC, "tags", _tags, "tag keys 1-128, values 0-256 characters", TAGS_DOC),
    CombinationRule(SUBNET, "tags", _tags, "tag keys 1-128, values 0-256 characters", TAGS_DOC),
)


# Fargate's CPU unit: a task's cpu is given in 1/1024 vCPU.
ECS_CPU_UNITS_PER_VCPU = 1024
CONFIG_RULES = CloudRules(
    container_sizes={units / ECS_CPU_UNITS_PER_VCPU: sizes for units, sizes in EXPRESS_TASK_SIZES.items()},
    sizes_explained="Fargate takes 0.25 CPU with 512, 1024 or 2048 MiB, 0.5 with 1024-4096, 1 with 2048-8192 "
    "(in 1024 MiB steps above 0.25), and ECS Express Mode caps memory at 8192 MiB: 2 CPU with 4096-8192, "
    "4 CPU with 8192 (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html"
    "#fargate-tasks-size)",
    default_cpu=0.5,
    default_memory_mib=1024,
    default_tracking_memory_mib=1024,
    region_keys=("aws:region",),
    region_format=None,
    state_schemes=("s3", "awskms"),
    artifact_scheme="s3://",
    # "serverless" (Aurora Serverless v2, scales to zero) or an RDS instance class such as db.t4g.micro.
    database_tier=re.compile(r"^(serverless|db\.[a-z0-9]+\.[a-z0-9]+)$"),
    default_database_tier="serverless",
)
