"""Stack settings: every config key the program reads, read and validated here and nowhere else.

`load_settings()` reads the stack's config, checks all of it, and either returns one typed `StackSettings`
or raises `ConfigError` listing every problem at once, each with how to fix it, before any resource is
registered. Environment defaults (dev, staging, prod, sandbox) live in one table, `ENVIRONMENT_DEFAULTS`;
container size rules live in one table per cloud, `SIZE_RULES`. Pulumi.yaml declares the same keys
(a test keeps the two in step).
"""

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TypeVar
from urllib.parse import parse_qsl, urlsplit

PROJECT = "mlops-stack"
EnumT = TypeVar("EnumT", bound=StrEnum)


class Cloud(StrEnum):
    GCP = "gcp"
    AWS = "aws"
    AZURE = "azure"


class Environment(StrEnum):
    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"
    SANDBOX = "sandbox"


class ApiAuth(StrEnum):
    """How callers authenticate to the model API."""

    API_KEY = "apiKey"  # a generated key in the X-API-Key header; the key is a stack secret
    IAM = "iam"  # the cloud's own IAM on the endpoint (Cloud Run only): no public invoker at all


@dataclass(frozen=True)
class EnvironmentDefaults:
    """What an environment means when its config says nothing else."""

    protect: bool  # deletion protection on the data (bucket, database) and `protect` on their resources
    backups: bool  # automated database backups and point-in-time recovery
    backup_retention_days: int
    tracking_min_instances: int
    api_min_instances: int
    api_max_instances: int
    log_retention_days: int


ENVIRONMENT_DEFAULTS: Mapping[Environment, EnvironmentDefaults] = {
    # dev and sandboxes scale to zero: an idle stack costs (almost) nothing.
    Environment.DEV: EnvironmentDefaults(False, True, 7, 0, 0, 2, 14),
    Environment.STAGING: EnvironmentDefaults(False, True, 7, 0, 0, 4, 30),
    Environment.PROD: EnvironmentDefaults(True, True, 14, 1, 1, 10, 90),
    Environment.SANDBOX: EnvironmentDefaults(False, False, 1, 0, 0, 1, 3),
}


@dataclass(frozen=True)
class SizeRule:
    """The CPU and memory combinations a cloud's serverless containers accept."""

    cpus: tuple[float, ...]
    memory_mib: Callable[[float], tuple[int, int, int]]  # cpu -> (min, max, step)
    default_cpu: float
    default_memory_mib: int
    explain: str


SIZE_RULES: Mapping[Cloud, SizeRule] = {
    # Cloud Run: whole CPUs (fractions force concurrency 1), at most 4 GiB per CPU, at least 512 MiB.
    Cloud.GCP: SizeRule(
        cpus=(1, 2, 4, 8),
        memory_mib=lambda cpu: (512, int(cpu) * 4096, 128),
        default_cpu=1,
        default_memory_mib=1024,
        explain="Cloud Run takes 1, 2, 4 or 8 CPUs with 512 MiB to 4 GiB per CPU, in 128 MiB steps",
    ),
    # Fargate (ECS Express Mode) task sizes.
    Cloud.AWS: SizeRule(
        cpus=(0.25, 0.5, 1, 2, 4),
        memory_mib=lambda cpu: {
            0.25: (512, 2048, 512),
            0.5: (1024, 4096, 1024),
            1: (2048, 8192, 1024),
            2: (4096, 16384, 1024),
            4: (8192, 30720, 1024),
        }[cpu],
        default_cpu=0.5,
        default_memory_mib=1024,
        explain="Fargate takes 0.25 CPU with 512-2048 MiB, 0.5 with 1024-4096, 1 with 2048-8192, "
        "2 with 4096-16384, 4 with 8192-30720 (in 1024 MiB steps above 0.25)",
    ),
    # Container Apps consumption profile: 0.25 CPU steps, memory fixed at 2 GiB per CPU.
    Cloud.AZURE: SizeRule(
        cpus=(0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4),
        memory_mib=lambda cpu: (int(cpu * 2048), int(cpu * 2048), 1),
        default_cpu=0.5,
        default_memory_mib=1024,
        explain="Container Apps (consumption) takes 0.25 to 4 CPUs with exactly 2048 MiB per CPU",
    ),
}

# Provider keys that hold the region (and, on GCP, the project), by cloud.
REGION_KEYS: Mapping[Cloud, tuple[str, ...]] = {
    Cloud.GCP: ("gcp:project", "gcp:region"),
    Cloud.AWS: ("aws:region",),
    Cloud.AZURE: ("azure-native:location",),
}

# The Pulumi state backend and secrets provider URL schemes of each cloud (what scripts/bootstrap.py prints).
STATE_SCHEMES: Mapping[Cloud, tuple[str, str]] = {
    Cloud.GCP: ("gs", "gcpkms"),
    Cloud.AWS: ("s3", "awskms"),
    Cloud.AZURE: ("azblob", "azurekeyvault"),
}

# Which artifact-store scheme a model source must use on each cloud.
ARTIFACT_SCHEMES: Mapping[Cloud, str] = {Cloud.GCP: "gs://", Cloud.AWS: "s3://", Cloud.AZURE: "wasbs://"}

# Every project key the program reads (without the `mlops-stack:` prefix), for Pulumi.yaml's schema test.
PROJECT_KEYS: tuple[str, ...] = (
    "cloud",
    "environment",
    "githubRepository",
    "githubEnvironment",
    "protect",
    "sandboxExpiresAt",
    "trackingCpu",
    "trackingMemoryMiB",
    "trackingMinInstances",
    "trackingMaxInstances",
    "apiCpu",
    "apiMemoryMiB",
    "apiMinInstances",
    "apiMaxInstances",
    "apiAuth",
    "databaseTier",
    "backupRetentionDays",
    "geoRedundantBackup",
    "trackingImage",
    "apiImage",
    "modelName",
    "modelVersion",
    "modelSource",
    "registryKeepImages",
    "awsOidcProviderArn",
    "githubBranch",
    "stateBackend",
    "stateSecretsProvider",
    "sandboxes",
    "sandboxStateBackend",
    "sandboxStateSecretsProvider",
)
STATIC_DEFAULTS: Mapping[str, str] = {
    "apiAuth": ApiAuth.API_KEY.value,
    "modelName": "throughput",
    "registryKeepImages": "10",
    "geoRedundantBackup": "false",
    "githubBranch": "main",
    "sandboxes": "false",
}

# The example stacks' placeholder: an `up` with it would hand deploy rights to whoever owns that repository.
PLACEHOLDER_REPOSITORIES = frozenset({"my-org/mlops-stack"})
GITHUB_BRANCH = re.compile(r"^[A-Za-z0-9._/-]{1,255}$")
GITHUB_REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
IMAGE_BY_DIGEST = re.compile(r"^[^\s@]+@sha256:[0-9a-f]{64}$")
AWS_ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
AWS_OIDC_PROVIDER_ARN = re.compile(
    r"^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$"
)
DATABASE_TIERS: Mapping[Cloud, tuple[re.Pattern[str], str]] = {
    Cloud.GCP: (re.compile(r"^db-(f1-micro|g1-small|custom-\d+-\d+|perf-optimized-N-\d+)$"), "db-f1-micro"),
    Cloud.AWS: (re.compile(r"^(serverless|db\.[a-z0-9]+\.[a-z0-9]+)$"), "serverless"),
    Cloud.AZURE: (re.compile(r"^Standard_[A-Za-z0-9_]+$"), "Standard_B1ms"),
}
# The one definition of a sandbox's name; scripts/sandbox.py's destroy guard uses it too.
SANDBOX_STACK = re.compile(r"^(?P<cloud>gcp|aws|azure)-sandbox-(?P<id>[a-z0-9](?:[a-z0-9-]{0,28}[a-z0-9])?)$")


class ConfigError(Exception):
    """The stack's config has problems; the message lists every one and how to fix it."""

    def __init__(self, stack: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"stack {stack!r} has {len(problems)} config problem(s):\n{lines}")


@dataclass(frozen=True)
class StateLocation:
    """One environment's Pulumi state backend and secrets key, as `pulumi login` and `stack init` take them.

    The stack grants its CI identities access to exactly these (the deploy identity reads and writes the
    state and encrypts/decrypts with the key; the preview identity only reads and decrypts), so no
    identity can read another environment's state. scripts/bootstrap.py creates one per environment and
    prints both URLs.
    """

    backend_url: (
        str  # gs://bucket[/prefix], s3://bucket[/prefix]?region=…, azblob://container?storage_account=…
    )
    secrets_provider: str  # gcpkms://projects/…/cryptoKeys/…, awskms://alias/…?region=…, azurekeyvault://…

    @property
    def bucket(self) -> str:
        """The bucket (GCS, S3) or blob container (Azure) that holds the state."""
        return urlsplit(self.backend_url).netloc

    @property
    def prefix(self) -> str:
        """The path inside the bucket under which Pulumi keeps `.pulumi/` ("" for the bucket root)."""
        return urlsplit(self.backend_url).path.strip("/")

    @property
    def backend_query(self) -> dict[str, str]:
        """The backend URL's query: `region` (S3), `storage_account` (Azure)."""
        return dict(parse_qsl(urlsplit(self.backend_url).query))

    @property
    def key(self) -> str:
        """The secrets provider without its scheme and query: a key path, `alias/…`, or `vault/keys/name`."""
        parts = urlsplit(self.secrets_provider)
        return f"{parts.netloc}{parts.path}"

    @property
    def key_query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.secrets_provider).query))


@dataclass(frozen=True)
class ContainerSettings:
    """Size and scale of one serverless container service."""

    cpu: float
    memory_mib: int
    min_instances: int
    max_instances: int


@dataclass(frozen=True)
class ModelPin:
    """The one registered model version the API serves, and where its files are in the artifact store."""

    name: str
    version: int
    source: str  # artifact-store URI of the version's model directory, e.g. gs://bucket/mlflow/1/models/m-…

    @property
    def registry_uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class StackSettings:
    """Everything the program needs to know about this stack, validated."""

    project: str
    stack: str
    cloud: Cloud
    environment: Environment
    region: str
    gcp_project: str | None
    github_repository: str
    github_environment: str
    github_branch: str  # pushes to it deploy; prod's preview identity trusts only jobs on it
    state: StateLocation | None  # this environment's state; None: the stack grants CI no state access
    hosts_sandboxes: bool  # dev only: this stack makes the sandboxes' deploy identity
    sandbox_state: StateLocation | None  # where sandbox stacks keep their state (dev with sandboxes only)
    protect: bool
    backups: bool
    backup_retention_days: int
    log_retention_days: int
    sandbox_expires_at: datetime | None
    tracking: ContainerSettings
    api: ContainerSettings
    api_auth: ApiAuth
    database_tier: str
    geo_redundant_backup: bool
    tracking_image: str | None
    api_image: str | None
    model_name: str
    model: ModelPin | None
    registry_keep_images: int
    aws_oidc_provider_arn: str | None
    # aws:allowedAccountIds: the only accounts the stack may touch (empty: not pinned). Recommended: one
    # account per environment, each stack pinned to its own.
    aws_allowed_account_ids: tuple[str, ...]

    @property
    def is_sandbox(self) -> bool:
        return self.environment is Environment.SANDBOX


ConfigReader = Callable[[str], str | None]


def read_pulumi_config(key: str) -> str | None:
    """Read a full `namespace:key` from the running Pulumi stack's config."""
    import pulumi

    namespace, _, name = key.rpartition(":")
    return pulumi.Config(namespace).get(name)


class _Checker:
    """Reads raw strings and parses them, collecting a problem instead of stopping at the first."""

    def __init__(self, read: ConfigReader) -> None:
        self.read = read
        self.problems: list[str] = []

    def raw(self, key: str) -> str | None:
        value = self.read(key if ":" in key else f"{PROJECT}:{key}")
        if value is None and key in STATIC_DEFAULTS:
            return STATIC_DEFAULTS[key]
        return value.strip() if value is not None and value.strip() else None

    def fail(self, key: str, problem: str, fix: str) -> None:
        full = key if ":" in key else f"{PROJECT}:{key}"
        self.problems.append(f"{full}: {problem}; {fix}")

    def choice(self, key: str, enum: type[EnumT], example: str) -> EnumT | None:
        value = self.raw(key)
        allowed = ", ".join(member.value for member in enum)
        if value is None:
            self.fail(key, "is not set", f"set it to one of {allowed}: pulumi config set {key} {example}")
            return None
        try:
            return enum(value)
        except ValueError:
            self.fail(key, f"{value!r} is not one of {allowed}", f"pulumi config set {key} {example}")
            return None

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.raw(key)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            self.fail(key, f"{value!r} is not a whole number", f"give a number from {low} to {high}")
            return default
        if not low <= number <= high:
            self.fail(key, f"{number} is out of range", f"give a number from {low} to {high}")
        return number

    def number(self, key: str, default: float) -> float:
        value = self.raw(key)
        if value is None:
            return default
        try:
            return float(value)
        except ValueError:
            self.fail(key, f"{value!r} is not a number", "give a number such as 0.5, 1 or 2")
            return default

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        self.fail(key, f"{value!r} is not true or false", f"pulumi config set {key} true (or false)")
        return default

    def matching(self, key: str, pattern: re.Pattern[str], expected: str) -> str | None:
        value = self.raw(key)
        if value is not None and not pattern.fullmatch(value):
            self.fail(key, f"{value!r} is malformed", f"expected {expected}")
            return None
        return value


def load_settings(read: ConfigReader = read_pulumi_config, stack: str | None = None) -> StackSettings:
    """Read and validate the whole stack config; raise ConfigError listing every problem."""
    if stack is None:
        import pulumi

        stack = pulumi.get_stack()
    check = _Checker(read)

    cloud = check.choice("cloud", Cloud, "gcp")
    environment = check.choice("environment", Environment, "dev")
    defaults = ENVIRONMENT_DEFAULTS[environment or Environment.DEV]
    rules = SIZE_RULES[cloud or Cloud.GCP]

    region, gcp_project = "", None
    for key in REGION_KEYS[cloud] if cloud else ():
        value = check.raw(key)
        if value is None:
            check.fail(
                key, "is not set", f"pulumi config set {key} <value> (the stack's {key.split(':')[1]})"
            )
        elif key == "gcp:project":
            gcp_project = value
        else:
            region = value

    _check_stack_name(check, stack, cloud, environment)

    github_repository = check.matching(
        "githubRepository", GITHUB_REPOSITORY, "owner/name of the GitHub repository CI runs from"
    )
    if github_repository in PLACEHOLDER_REPOSITORIES:
        check.fail(
            "githubRepository",
            f"is the example's placeholder {github_repository!r}: the CI identities would trust whoever "
            "owns that repository",
            "pulumi config set mlops-stack:githubRepository <your-org>/<your-repo>",
        )
    if github_repository is None and check.raw("githubRepository") is None:
        check.fail(
            "githubRepository",
            "is not set (CI identities trust only this repository)",
            "pulumi config set mlops-stack:githubRepository my-org/my-repo",
        )

    protect = check.boolean("protect", defaults.protect)
    if protect and environment is Environment.SANDBOX:
        check.fail("protect", "is true on a sandbox", "sandboxes must be destroyable in one step: remove it")

    expires_at = _sandbox_expiry(check, environment)
    hosts_sandboxes = check.boolean("sandboxes", False)
    if hosts_sandboxes and environment not in (None, Environment.DEV):
        check.fail(
            "sandboxes",
            f"is true on a {environment.value} stack",
            "only the dev stack makes the sandboxes' identity: remove it here and set it on <cloud>-dev",
        )

    tracking = _container(check, "tracking", rules, defaults.tracking_min_instances, max_default=2)
    api = _container(check, "api", rules, defaults.api_min_instances, max_default=defaults.api_max_instances)

    api_auth = check.choice("apiAuth", ApiAuth, ApiAuth.API_KEY.value) or ApiAuth.API_KEY
    if api_auth is ApiAuth.IAM and cloud not in (None, Cloud.GCP):
        check.fail("apiAuth", "iam is only available on GCP (Cloud Run IAM)", "use apiKey on this cloud")

    tier_pattern, tier_default = DATABASE_TIERS[cloud or Cloud.GCP]
    database_tier = (
        check.matching("databaseTier", tier_pattern, f"a tier such as {tier_default}") or tier_default
    )

    model_name = check.matching("modelName", MODEL_NAME, "letters, digits, '_', '.', '-'") or "throughput"
    model = _model_pin(check, cloud, model_name)

    settings = StackSettings(
        project=PROJECT,
        stack=stack,
        cloud=cloud or Cloud.GCP,
        environment=environment or Environment.DEV,
        region=region,
        gcp_project=gcp_project,
        github_repository=github_repository or "",
        github_environment=check.raw("githubEnvironment") or (environment or Environment.DEV).value,
        github_branch=check.matching("githubBranch", GITHUB_BRANCH, "a branch name such as main") or "main",
        state=_state_location(check, cloud, "state"),
        hosts_sandboxes=hosts_sandboxes,
        sandbox_state=_sandbox_state(check, cloud, hosts_sandboxes),
        protect=protect,
        backups=defaults.backups,
        backup_retention_days=check.integer("backupRetentionDays", defaults.backup_retention_days, 1, 35),
        log_retention_days=defaults.log_retention_days,
        sandbox_expires_at=expires_at,
        tracking=tracking,
        api=api,
        api_auth=api_auth,
        database_tier=database_tier,
        geo_redundant_backup=check.boolean("geoRedundantBackup", False),
        tracking_image=check.matching(
            "trackingImage", IMAGE_BY_DIGEST, "an image pinned by digest: repo@sha256:…"
        ),
        api_image=check.matching("apiImage", IMAGE_BY_DIGEST, "an image pinned by digest: repo@sha256:…"),
        model_name=model_name,
        model=model,
        registry_keep_images=check.integer("registryKeepImages", 10, 1, 1000),
        aws_oidc_provider_arn=check.matching(
            "awsOidcProviderArn", AWS_OIDC_PROVIDER_ARN, "the ARN of the account's GitHub OIDC provider"
        ),
        aws_allowed_account_ids=_aws_allowed_account_ids(check, cloud),
    )
    if check.problems:
        raise ConfigError(stack, check.problems)
    return settings


def _check_stack_name(check: _Checker, stack: str, cloud: Cloud | None, env: Environment | None) -> None:
    """Stack names say `<cloud>-<env>`; the sandbox sweeper relies on name and config agreeing."""
    if cloud and not stack.startswith(f"{cloud.value}-"):
        check.fail(
            "cloud", f"is {cloud.value} but the stack is named {stack!r}", f"name it {cloud.value}-<env>"
        )
    named_sandbox = SANDBOX_STACK.fullmatch(stack) is not None
    if env is Environment.SANDBOX and not named_sandbox:
        check.fail(
            "environment",
            f"is sandbox but the stack {stack!r} is not named <cloud>-sandbox-<id>",
            "create it as e.g. gcp-sandbox-alice (lowercase letters, digits, '-')",
        )
    if env not in (None, Environment.SANDBOX) and "-sandbox-" in stack:
        check.fail(
            "environment", f"is {env.value} but the stack is named like a sandbox", "set it to sandbox"
        )


def _sandbox_expiry(check: _Checker, environment: Environment | None) -> datetime | None:
    value = check.raw("sandboxExpiresAt")
    if environment is not Environment.SANDBOX:
        if value is not None:
            check.fail(
                "sandboxExpiresAt",
                "is set on a stack that is not a sandbox",
                "remove it: only sandboxes expire",
            )
        return None
    example = "pulumi config set mlops-stack:sandboxExpiresAt 2026-12-01T18:00:00Z (scripts/sandbox sets it)"
    if value is None:
        check.fail("sandboxExpiresAt", "is not set: a sandbox must say when it may be destroyed", example)
        return None
    try:
        expires = datetime.fromisoformat(value)
    except ValueError:
        check.fail("sandboxExpiresAt", f"{value!r} is not an RFC 3339 time", example)
        return None
    if expires.tzinfo is None:
        check.fail("sandboxExpiresAt", f"{value!r} has no time zone", example)
        return None
    return expires


def _container(
    check: _Checker, prefix: str, rules: SizeRule, min_default: int, max_default: int
) -> ContainerSettings:
    cpu = check.number(f"{prefix}Cpu", rules.default_cpu)
    memory = check.integer(f"{prefix}MemoryMiB", rules.default_memory_mib, 128, 131072)
    if cpu not in rules.cpus:
        check.fail(f"{prefix}Cpu", f"{cpu:g} CPUs is not a size this cloud offers", rules.explain)
    else:
        low, high, step = rules.memory_mib(cpu)
        if not (low <= memory <= high and (memory - low) % step == 0):
            check.fail(f"{prefix}MemoryMiB", f"{memory} MiB does not fit {cpu:g} CPU", rules.explain)
    min_instances = check.integer(f"{prefix}MinInstances", min_default, 0, 100)
    max_instances = check.integer(f"{prefix}MaxInstances", max(max_default, min_instances, 1), 1, 100)
    if min_instances > max_instances:
        check.fail(
            f"{prefix}MinInstances",
            f"{min_instances} is more than {prefix}MaxInstances ({max_instances})",
            "lower the minimum or raise the maximum",
        )
    return ContainerSettings(cpu, memory, min_instances, max_instances)


def _model_pin(check: _Checker, cloud: Cloud | None, name: str) -> ModelPin | None:
    """The API is deployed only once a model version is pinned, so a new stack's first `up` needs no model."""
    version = check.raw("modelVersion")
    source = check.raw("modelSource")
    if version is None and source is None:
        return None
    fix = "set both: scripts/promote.py --print-pin prints the values for the champion"
    if version is None or source is None:
        missing = "modelVersion" if version is None else "modelSource"
        check.fail(missing, "is not set but the other half of the model pin is", fix)
        return None
    if not version.isdigit() or int(version) < 1:
        check.fail("modelVersion", f"{version!r} is not a registered model version number", fix)
        return None
    scheme = ARTIFACT_SCHEMES[cloud or Cloud.GCP]
    if not source.startswith(scheme):
        check.fail("modelSource", f"{source!r} is not in this cloud's artifact store", f"expected {scheme}…")
        return None
    return ModelPin(name=name, version=int(version), source=source)


def _state_location(check: _Checker, cloud: Cloud | None, prefix: str) -> StateLocation | None:
    """`<prefix>Backend` + `<prefix>SecretsProvider`: both or neither, in this cloud's schemes."""
    backend_key, provider_key = f"{prefix}Backend", f"{prefix}SecretsProvider"
    backend, provider = check.raw(backend_key), check.raw(provider_key)
    if backend is None and provider is None:
        return None
    fix = "set both to what scripts/bootstrap.py printed for this environment"
    if backend is None or provider is None:
        check.fail(backend_key if backend is None else provider_key, "is not set but the other one is", fix)
        return None
    if cloud is None:
        return None
    backend_scheme, provider_scheme = STATE_SCHEMES[cloud]
    problems = len(check.problems)
    if urlsplit(backend).scheme != backend_scheme or not urlsplit(backend).netloc:
        check.fail(
            backend_key, f"{backend!r} is not a {cloud.value} state backend", f"expected {backend_scheme}://…"
        )
    if urlsplit(provider).scheme != provider_scheme or not urlsplit(provider).netloc:
        check.fail(
            provider_key,
            f"{provider!r} is not a {cloud.value} secrets provider",
            f"expected {provider_scheme}://…",
        )
    return StateLocation(backend, provider) if len(check.problems) == problems else None


def _sandbox_state(check: _Checker, cloud: Cloud | None, hosts_sandboxes: bool) -> StateLocation | None:
    location = _state_location(check, cloud, "sandboxState")
    if location is not None and not hosts_sandboxes:
        check.fail(
            "sandboxStateBackend",
            "is set but sandboxes is not true",
            "set mlops-stack:sandboxes true on the dev stack, or remove the sandbox state keys",
        )
    return location


def _aws_allowed_account_ids(check: _Checker, cloud: Cloud | None) -> tuple[str, ...]:
    """`aws:allowedAccountIds`, the AWS provider's own key: a list of account ids as strings (an id may start
    with 0, which a YAML number would lose). Pulumi hands a list to the program as JSON."""
    key = "aws:allowedAccountIds"
    value = check.raw(key)
    if value is None:
        return ()
    if cloud not in (None, Cloud.AWS):
        check.fail(key, f"is set on a {cloud.value} stack", "it applies to AWS only: remove it")
        return ()
    try:
        ids = json.loads(value)
    except ValueError:
        ids = None
    if not (
        isinstance(ids, list) and ids and all(isinstance(i, str) and AWS_ACCOUNT_ID.fullmatch(i) for i in ids)
    ):
        check.fail(
            key,
            f"{value!r} is not a list of 12-digit account ids in quotes",
            'write it in the stack file as aws:allowedAccountIds: ["123456789012"] (the account this stack '
            "deploys to)",
        )
        return ()
    return tuple(ids)
