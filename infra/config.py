"""Stack settings: every config key the program reads, read and validated here and nowhere else.

`load_settings()` reads the stack's config, checks all of it, and either returns one typed `StackSettings`
or raises `ConfigError` listing every problem at once, each with how to fix it, before any resource is
registered. Every project key is declared once, in `KEYS` (meaning, default per environment, bounds), and
read by its literal name; Pulumi.yaml declares the keys whose default is the same everywhere (a test keeps
the two in step). What a cloud accepts (container sizes, regions, state and artifact schemes, database tiers)
is that cloud's `CloudRules`, kept in infra/<cloud>/limits.py and handed in by the caller
(infra.platform.load_stack_settings), so this module names no cloud's tables.
"""

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple, TypeVar
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


class InterfaceEndpointZones(StrEnum):
    """AWS only: where the interface VPC endpoints the Express tasks reach ECR, Secrets Manager and CloudWatch
    Logs through have a network interface (see infra/aws/network.py for why endpoints, and their cost)."""

    ONE_ZONE = (
        "oneZone"  # one interface per endpoint: half the cost; tasks in the other zone cross zones to it
    )
    EVERY_ZONE = "everyZone"  # one per zone and endpoint: a zone outage does not stop tasks in the other zone


class ApiAuth(StrEnum):
    """How callers authenticate to the model API."""

    API_KEY = "apiKey"  # a generated key in the X-API-Key header; the key is a stack secret
    IAM = "iam"  # the cloud's own IAM on the endpoint (Cloud Run only): no public invoker at all


@dataclass(frozen=True)
class Key:
    """One project config key (`mlops-stack:<name>`): what it means, its default, its bounds.

    A plain-string default is the same on every stack, so Pulumi.yaml declares it (a test holds the two
    together); a default per environment is applied here, and a key without one is required or optional as
    its check says. Defaults that depend on the cloud (sizes, the database tier) are in its `CloudRules`.
    """

    meaning: str
    default: str | Mapping[Environment, str] | None = None
    bounds: tuple[int, int] | None = None  # whole-number keys: the inclusive range accepted

    def default_for(self, environment: Environment) -> str | None:
        if self.default is None or isinstance(self.default, str):
            return self.default
        return self.default[environment]


def _per_environment(
    dev: object, staging: object, prod: object, sandbox: object
) -> Mapping[Environment, str]:
    values = (dev, staging, prod, sandbox)
    return {env: str(value).lower() for env, value in zip(Environment, values, strict=True)}


# Every project key the program reads. dev and sandboxes scale to zero: an idle stack costs (almost) nothing.
KEYS: Mapping[str, Key] = {
    "cloud": Key("gcp, aws or azure"),
    "environment": Key("dev, staging, prod or sandbox"),
    "githubRepository": Key("owner/name of the repository whose workflows the CI identities trust"),
    "githubEnvironment": Key("the GitHub environment the deploy identity trusts (default: the environment)"),
    "githubBranch": Key("the branch whose pushes deploy", default="main"),
    "githubRepositoryId": Key("GitHub's numeric id of the repository (with githubOwnerId)"),
    "githubOwnerId": Key("GitHub's numeric id of the repository's owner (with githubRepositoryId)"),
    "protect": Key("deletion protection on the data", default=_per_environment(False, False, True, False)),
    "sandboxExpiresAt": Key("sandboxes only: when the sandbox may be destroyed (RFC 3339)"),
    "sandboxes": Key("dev only: this stack makes the sandboxes' deploy identity", default="false"),
    "trackingCpu": Key("CPUs of the tracking server"),
    "trackingMemoryMiB": Key("memory of the tracking server", bounds=(128, 131072)),
    "trackingMinInstances": Key("instances kept warm", default=_per_environment(0, 0, 1, 0), bounds=(0, 100)),
    "trackingMaxInstances": Key("instances at most", default=_per_environment(2, 2, 2, 2), bounds=(1, 100)),
    "apiCpu": Key("CPUs of the model API"),
    "apiMemoryMiB": Key("memory of the model API", bounds=(128, 131072)),
    "apiMinInstances": Key("instances kept warm", default=_per_environment(0, 0, 1, 0), bounds=(0, 100)),
    "apiMaxInstances": Key("instances at most", default=_per_environment(2, 4, 10, 1), bounds=(1, 100)),
    "apiAuth": Key("apiKey, or iam (GCP only)", default="apiKey"),
    "databaseTier": Key("the database's machine tier"),
    "backupRetentionDays": Key(
        "days of database backups, and of overwritten artifacts kept recoverable",
        default=_per_environment(7, 7, 14, 1),
        bounds=(1, 35),
    ),
    "geoRedundantBackup": Key("Azure only: geo-redundant database backups", default="false"),
    "trackingImage": Key("a prebuilt tracking image pinned by digest (default: built from this repository)"),
    "apiImage": Key("a prebuilt model API image pinned by digest (default: built from this repository)"),
    "modelName": Key("the registered model the API serves", default="throughput"),
    "modelVersion": Key("the pinned model version (with modelSource)"),
    "modelSource": Key("the pinned version's artifact-store URI (with modelVersion)"),
    "registryKeepImages": Key("images kept per registry repository", default="10", bounds=(1, 1000)),
    # Rollouts of a new API revision (infra/rollout.py): a canary share on GCP and Azure, a watch at full
    # traffic on AWS (whose Express Mode runs its own fixed canary). Sandboxes roll out at once.
    "canaryPercent": Key(
        "share of traffic a new API revision gets while it bakes (0: no split)", default="0", bounds=(0, 50)
    ),
    "canaryBakeMinutes": Key(
        "minutes the deploy workflow watches a new API revision (smoke test, alerts) before promoting it",
        default=_per_environment(0, 10, 15, 0),
        # The deploy job (60 minutes) holds the `up`, the bake and the promoting `up`.
        bounds=(0, 30),
    ),
    "rolloutPromote": Key("set for one `up` by scripts/rollout.py promote: never in a stack file"),
    "awsOidcProviderArn": Key("AWS: an existing GitHub OIDC provider to use instead of creating one"),
    "awsInterfaceEndpoints": Key(
        "AWS: oneZone or everyZone interface VPC endpoints",
        # Idle cost per stack, eu-west-1: 4 interface endpoints x 0.011 USD per zone-hour = 32 USD a month in
        # one zone, 64 in two (https://aws.amazon.com/privatelink/pricing/). dev and sandboxes take one.
        default={
            Environment.DEV: "oneZone",
            Environment.STAGING: "everyZone",
            Environment.PROD: "everyZone",
            Environment.SANDBOX: "oneZone",
        },
    ),
    "stateBackend": Key("this environment's Pulumi state backend URL (with stateSecretsProvider)"),
    "stateSecretsProvider": Key("this environment's secrets provider URL (with stateBackend)"),
    "sandboxStateBackend": Key("dev with sandboxes: the sandboxes' state backend URL"),
    "sandboxStateSecretsProvider": Key("dev with sandboxes: the sandboxes' secrets provider URL"),
    "gcpSandboxProject": Key("GCP dev with sandboxes: the project sandboxes deploy into"),
    "stateResourceGroup": Key(
        "Azure: the resource group of the state account and key", default="mlops-stack-state"
    ),
    "azureResourceGroup": Key("Azure sandboxes: the dev stack's resource group for sandboxes"),
    # Alerts (infra/alerts.py): none on sandboxes; the same thresholds on every other stack unless set.
    "alertEmail": Key("where alerts are sent (default: nobody; they still fire and show in the console)"),
    "alertApi5xxCount": Key("alert when the model API answers this many 5xx in 5 minutes", "5", (1, 100000)),
    "alertApiP99Ms": Key(
        "alert when the model API's p99 latency passes this (ms, over 5 minutes)", "2000", (10, 600000)
    ),
    "alertDatabasePercent": Key(
        "alert when the database's CPU or storage use passes this percent", "80", (10, 99)
    ),
    # The API's own line between "watch" and "drift" (MONITORING_PSI_THRESHOLD, service/settings.py), so the
    # alert fires when the API reports the status `drift` (a test holds the two together).
    "alertDriftPsi": Key("alert when the API's drift score (max PSI of a window) passes this", "0.25"),
}
# alertDriftPsi is a decimal: the range it accepts (PSI 0.1-0.25 is "some shift", above 0.25 "significant").
DRIFT_PSI_BOUNDS = (0.01, 10.0)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PROJECT_KEYS: tuple[str, ...] = tuple(KEYS)
# What Pulumi.yaml declares, as Pulumi applies a project default: to every stack that does not set the key.
STATIC_DEFAULTS: Mapping[str, str] = {
    name: key.default for name, key in KEYS.items() if isinstance(key.default, str)
}


@dataclass(frozen=True, kw_only=True)
class EnvironmentPolicy:
    """What an environment means beyond its config keys."""

    backups: bool  # automated database backups and point-in-time recovery
    log_retention_days: int


ENVIRONMENT_POLICY: Mapping[Environment, EnvironmentPolicy] = {
    Environment.DEV: EnvironmentPolicy(backups=True, log_retention_days=14),
    Environment.STAGING: EnvironmentPolicy(backups=True, log_retention_days=30),
    Environment.PROD: EnvironmentPolicy(backups=True, log_retention_days=90),
    Environment.SANDBOX: EnvironmentPolicy(backups=False, log_retention_days=3),
}


class RegionFormat(NamedTuple):
    pattern: re.Pattern[str]
    cloud_name: str  # as the message says it: "Google Cloud"
    example: str


@dataclass(frozen=True, kw_only=True)
class CloudRules:
    """What one cloud accepts of the stack config, checked before any resource is registered. Each cloud's is
    `CONFIG_RULES` in infra/<cloud>/limits.py, beside the limits of the resources these values reach."""

    container_sizes: Mapping[float, frozenset[int]]  # CPUs -> the memory sizes (MiB) that go with them
    sizes_explained: str  # the rule in words, with its documentation link
    default_cpu: float
    default_memory_mib: int
    default_tracking_memory_mib: int
    region_keys: tuple[str, ...]  # the provider's keys holding the region (and GCP's project)
    region_format: RegionFormat | None  # None: the provider checks the region itself
    state_schemes: tuple[str, str]  # Pulumi state backend and secrets provider URL schemes
    artifact_scheme: str  # what a model source must start with
    database_tier: re.Pattern[str]
    default_database_tier: str


# The example stacks' placeholder: an `up` with it would hand deploy rights to whoever owns that repository.
PLACEHOLDER_REPOSITORIES = frozenset({"my-org/mlops-stack"})
# GitHub's numeric ids (the OIDC token's `repository_id` / `repository_owner_id` claims, decimal strings):
# they stay with the repository and its owner when a name is freed and re-registered by someone else.
# https://docs.github.com/en/actions/reference/security/oidc#oidc-token-claims
GITHUB_NUMERIC_ID = re.compile(r"^[1-9][0-9]{0,19}$")
GITHUB_IDS_HOWTO = "gh api repos/OWNER/REPO --jq .id,.owner.id prints both"
GITHUB_BRANCH = re.compile(r"^[A-Za-z0-9._/-]{1,255}$")
GITHUB_REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
IMAGE_BY_DIGEST = re.compile(r"^[^\s@]+@sha256:[0-9a-f]{64}$")
AWS_ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
AWS_OIDC_PROVIDER_ARN = re.compile(
    r"^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$"
)
# "6 to 30 lowercase letters, digits, or hyphens. It must start with a letter. Trailing hyphens are
# prohibited." (https://cloud.google.com/resource-manager/reference/rest/v1/projects). Names the stack derives
# from it are hashed to their own limits (infra/gcp/limits.py, proven with a 30-character id).
GCP_PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
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


# Each pinned model version's own requirements.txt (what MLflow logged with it), kept in the repository so
# that the API image built for a pin is reviewable and rebuilt exactly as previewed:
# stacks/models/<name>/<version>/requirements.txt, written by `scripts/promote.py --save-requirements`.
MODEL_ENVIRONMENTS = Path(__file__).resolve().parent.parent / "stacks" / "models"


def model_environment(name: str, version: int | str) -> Path:
    """The folder holding a registered model version's requirements.txt."""
    return MODEL_ENVIRONMENTS / name / str(version)


@dataclass(frozen=True)
class ModelPin:
    """The one registered model version the API serves, and where its files are in the artifact store."""

    name: str
    version: int
    source: str  # artifact-store URI of the version's model directory, e.g. gs://bucket/mlflow/1/models/m-…

    @property
    def environment(self) -> Path:
        """The folder holding this version's requirements.txt: the API image's `model` build context."""
        return model_environment(self.name, self.version)


@dataclass(frozen=True)
class CanarySettings:
    """How a new model API revision is rolled out (infra/rollout.py)."""

    percent: int  # the new revision's share while it bakes; 0: it takes all traffic at once
    bake_minutes: int  # how long the deploy workflow watches it; 0: no watch, it is promoted at once
    promote: bool = False  # this `up` promotes the revision that is baking (scripts/rollout.py promote)


@dataclass(frozen=True)
class AlertSettings:
    """Thresholds and recipient of the stack's alerts (infra/alerts.py says what each alert watches)."""

    email: str | None  # None: alerts fire and show in the cloud's console, but notify nobody
    api_5xx_count: int  # 5xx answers of the model API in 5 minutes
    api_p99_ms: int
    database_percent: int  # CPU and storage use
    drift_psi: float


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
    # GitHub's numeric ids of the repository and its owner (None: not pinned; GCP's pool condition then trusts
    # the repository's name alone, and the program warns).
    github_repository_id: str | None
    github_owner_id: str | None
    state: StateLocation | None  # this environment's state; None: the stack grants CI no state access
    hosts_sandboxes: bool  # dev only: this stack makes the sandboxes' deploy identity
    sandbox_state: StateLocation | None  # where sandbox stacks keep their state (dev with sandboxes only)
    # GCP, dev with sandboxes only: the project sandbox stacks deploy into (None: the dev stack's project).
    gcp_sandbox_project: str | None
    state_resource_group: str  # Azure: the resource group of bootstrap's state account and key vault
    azure_resource_group: str | None  # Azure sandboxes: the dev stack's resource group for sandboxes
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
    aws_interface_endpoints: InterfaceEndpointZones
    # aws:allowedAccountIds: the only accounts the stack may touch (empty: not pinned). Recommended: one
    # account per environment, each stack pinned to its own.
    aws_allowed_account_ids: tuple[str, ...]
    alerts: AlertSettings
    canary: CanarySettings = CanarySettings(percent=0, bake_minutes=0)

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
        self.environment = Environment.DEV  # whose defaults apply, until the stack's own is read

    def raw(self, key: str) -> str | None:
        """The value as Pulumi hands it to a program: a project default (Pulumi.yaml) fills an unset key."""
        value = self.read(key if ":" in key else f"{PROJECT}:{key}")
        if value is None and key in STATIC_DEFAULTS:
            return STATIC_DEFAULTS[key]
        return value.strip() if value is not None and value.strip() else None

    def _given_or_default(self, key: str) -> str | None:
        value = self.raw(key)
        return KEYS[key].default_for(self.environment) if value is None and key in KEYS else value

    def fail(self, key: str, problem: str, fix: str) -> None:
        full = key if ":" in key else f"{PROJECT}:{key}"
        self.problems.append(f"{full}: {problem}; {fix}")

    def choice(self, key: str, enum: type[EnumT], example: str) -> EnumT | None:
        value = self._given_or_default(key)
        allowed = ", ".join(member.value for member in enum)
        if value is None:
            self.fail(key, "is not set", f"set it to one of {allowed}: pulumi config set {key} {example}")
            return None
        try:
            return enum(value)
        except ValueError:
            self.fail(key, f"{value!r} is not one of {allowed}", f"pulumi config set {key} {example}")
            return None

    def integer(self, key: str, fallback: int | None = None) -> int:
        """A whole number within the key's bounds in `KEYS`; unset: its default there, else `fallback`."""
        bounds, default = KEYS[key].bounds, KEYS[key].default_for(self.environment)
        assert bounds is not None, f"KEYS[{key!r}] has no bounds"
        low, high = bounds
        fallback = int(default) if default is not None else fallback
        assert fallback is not None, f"{key} has no default"
        value = self.raw(key)
        if value is None:
            return fallback
        try:
            number = int(value)
        except ValueError:
            self.fail(key, f"{value!r} is not a whole number", f"give a number from {low} to {high}")
            return fallback
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

    def boolean(self, key: str) -> bool:
        """true or false; unset: the key's default in `KEYS` (false without one)."""
        value = self._given_or_default(key) or "false"
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        self.fail(key, f"{value!r} is not true or false", f"pulumi config set {key} true (or false)")
        return False

    def matching(self, key: str, pattern: re.Pattern[str], expected: str) -> str | None:
        value = self.raw(key)
        if value is not None and not pattern.fullmatch(value):
            self.fail(key, f"{value!r} is malformed", f"expected {expected}")
            return None
        return value


def load_settings(
    rules_for: Callable[[Cloud], CloudRules],
    read: ConfigReader = read_pulumi_config,
    stack: str | None = None,
) -> StackSettings:
    """Read and validate the whole stack config; raise ConfigError listing every problem.

    `rules_for` gives the chosen cloud's `CloudRules` (infra.platform.load_stack_settings passes the cloud
    package's), so this cloud-neutral module knows no cloud's tables.
    """
    if stack is None:
        import pulumi

        stack = pulumi.get_stack()
    check = _Checker(read)

    cloud = check.choice("cloud", Cloud, "gcp")
    environment = check.choice("environment", Environment, "dev")
    check.environment = environment or Environment.DEV
    rules = rules_for(cloud or Cloud.GCP)

    region, gcp_project = "", None
    for key in rules.region_keys if cloud else ():
        value = check.raw(key)
        if value is None:
            check.fail(
                key, "is not set", f"pulumi config set {key} <value> (the stack's {key.split(':')[1]})"
            )
        elif key == "gcp:project":
            if GCP_PROJECT_ID.fullmatch(value):
                gcp_project = value
            else:
                check.fail(
                    key,
                    f"{value!r} is not a project id",
                    "give the project's id (6-30 lowercase letters, digits or '-', starting with a letter, "
                    "not ending with '-'), not its name or number",
                )
        else:
            region = value
            region_format = rules.region_format
            if region_format is not None and not region_format.pattern.fullmatch(value):
                check.fail(
                    key,
                    f"{value!r} is not a {region_format.cloud_name} region",
                    f"give one such as {region_format.example}",
                )

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

    github_ids = _github_ids(check)

    protect = check.boolean("protect")
    if protect and environment is Environment.SANDBOX:
        check.fail("protect", "is true on a sandbox", "sandboxes must be destroyable in one step: remove it")

    expires_at = _sandbox_expiry(check, environment)
    hosts_sandboxes = check.boolean("sandboxes")
    if hosts_sandboxes and environment not in (None, Environment.DEV):
        check.fail(
            "sandboxes",
            f"is true on a {environment.value} stack",
            "only the dev stack makes the sandboxes' identity: remove it here and set it on <cloud>-dev",
        )

    tracking = _container(
        check,
        rules,
        cpu_key="trackingCpu",
        memory_key="trackingMemoryMiB",
        min_key="trackingMinInstances",
        max_key="trackingMaxInstances",
        memory_default=rules.default_tracking_memory_mib,
    )
    api = _container(
        check,
        rules,
        cpu_key="apiCpu",
        memory_key="apiMemoryMiB",
        min_key="apiMinInstances",
        max_key="apiMaxInstances",
        memory_default=rules.default_memory_mib,
    )

    api_auth = check.choice("apiAuth", ApiAuth, ApiAuth.API_KEY.value) or ApiAuth.API_KEY
    if api_auth is ApiAuth.IAM and cloud not in (None, Cloud.GCP):
        check.fail("apiAuth", "iam is only available on GCP (Cloud Run IAM)", "use apiKey on this cloud")

    database_tier = (
        check.matching("databaseTier", rules.database_tier, f"a tier such as {rules.default_database_tier}")
        or rules.default_database_tier
    )

    model_name = check.matching("modelName", MODEL_NAME, "letters, digits, '_', '.', '-'") or "throughput"
    model = _model_pin(check, rules, model_name)
    policy = ENVIRONMENT_POLICY[check.environment]

    settings = StackSettings(
        project=PROJECT,
        stack=stack,
        cloud=cloud or Cloud.GCP,
        environment=check.environment,
        region=region,
        gcp_project=gcp_project,
        github_repository=github_repository or "",
        github_environment=check.raw("githubEnvironment") or check.environment.value,
        github_branch=check.matching("githubBranch", GITHUB_BRANCH, "a branch name such as main") or "main",
        github_repository_id=github_ids[0],
        github_owner_id=github_ids[1],
        state=_state_location(check, cloud, rules, "state"),
        hosts_sandboxes=hosts_sandboxes,
        sandbox_state=_sandbox_state(check, cloud, rules, hosts_sandboxes),
        gcp_sandbox_project=_gcp_sandbox_project(check, cloud, hosts_sandboxes),
        state_resource_group=check.raw("stateResourceGroup") or STATIC_DEFAULTS["stateResourceGroup"],
        azure_resource_group=_azure_resource_group(check, cloud, environment),
        protect=protect,
        backups=policy.backups,
        backup_retention_days=check.integer("backupRetentionDays"),
        log_retention_days=policy.log_retention_days,
        sandbox_expires_at=expires_at,
        tracking=tracking,
        api=api,
        api_auth=api_auth,
        database_tier=database_tier,
        geo_redundant_backup=check.boolean("geoRedundantBackup"),
        tracking_image=check.matching(
            "trackingImage", IMAGE_BY_DIGEST, "an image pinned by digest: repo@sha256:…"
        ),
        api_image=check.matching("apiImage", IMAGE_BY_DIGEST, "an image pinned by digest: repo@sha256:…"),
        model_name=model_name,
        model=model,
        registry_keep_images=check.integer("registryKeepImages"),
        aws_oidc_provider_arn=check.matching(
            "awsOidcProviderArn", AWS_OIDC_PROVIDER_ARN, "the ARN of the account's GitHub OIDC provider"
        ),
        aws_interface_endpoints=_interface_endpoints(check, cloud),
        aws_allowed_account_ids=_aws_allowed_account_ids(check, cloud),
        alerts=_alert_settings(check),
        canary=_canary(check, cloud, environment),
    )
    if cloud is Cloud.GCP:
        _check_gcp_subjects(check, settings)
    if model is not None and settings.api_image is None:
        _check_model_environment(check, model)
    if check.problems:
        raise ConfigError(stack, check.problems)
    return settings


def _alert_settings(check: _Checker) -> AlertSettings:
    email = check.matching("alertEmail", EMAIL, "one email address, such as ml-oncall@example.com")
    low, high = DRIFT_PSI_BOUNDS
    psi = check.number("alertDriftPsi", float(STATIC_DEFAULTS["alertDriftPsi"]))
    if not low <= psi <= high:
        check.fail(
            "alertDriftPsi", f"{psi:g} is out of range", f"give a PSI from {low:g} to {high:g} (0.2 is usual)"
        )
    return AlertSettings(
        email=email,
        api_5xx_count=check.integer("alertApi5xxCount"),
        api_p99_ms=check.integer("alertApiP99Ms"),
        database_percent=check.integer("alertDatabasePercent"),
        drift_psi=psi,
    )


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
    check: _Checker,
    rules: CloudRules,
    *,
    cpu_key: str,
    memory_key: str,
    min_key: str,
    max_key: str,
    memory_default: int,
) -> ContainerSettings:
    cpu = check.number(cpu_key, rules.default_cpu)
    memory = check.integer(memory_key, memory_default)
    sizes = rules.container_sizes.get(cpu)
    if sizes is None:
        check.fail(cpu_key, f"{cpu:g} CPUs is not a size this cloud offers", rules.sizes_explained)
    elif memory not in sizes:
        check.fail(memory_key, f"{memory} MiB does not fit {cpu:g} CPU", rules.sizes_explained)
    min_instances = check.integer(min_key)
    max_instances = check.integer(max_key)
    if check.raw(max_key) is None:
        # Unset, the maximum follows a minimum set above the environment's default maximum.
        max_instances = max(max_instances, min_instances)
    if min_instances > max_instances:
        check.fail(
            min_key,
            f"{min_instances} is more than {max_key} ({max_instances})",
            "lower the minimum or raise the maximum",
        )
    return ContainerSettings(cpu, memory, min_instances, max_instances)


def _interface_endpoints(check: _Checker, cloud: Cloud | None) -> InterfaceEndpointZones:
    default = InterfaceEndpointZones(KEYS["awsInterfaceEndpoints"].default_for(check.environment) or "")
    if check.raw("awsInterfaceEndpoints") is None:
        return default
    if cloud not in (None, Cloud.AWS):
        check.fail(
            "awsInterfaceEndpoints", f"is set on a {cloud.value} stack", "it applies to AWS only: remove it"
        )
        return default
    return check.choice("awsInterfaceEndpoints", InterfaceEndpointZones, default.value) or default


def _model_pin(check: _Checker, rules: CloudRules, name: str) -> ModelPin | None:
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
    scheme = rules.artifact_scheme
    if not source.startswith(scheme):
        check.fail("modelSource", f"{source!r} is not in this cloud's artifact store", f"expected {scheme}…")
        return None
    return ModelPin(name=name, version=int(version), source=source)


def _check_model_environment(check: _Checker, model: ModelPin) -> None:
    """The API image this program builds installs the pinned version's own requirements."""
    requirements = model.environment / "requirements.txt"
    if not requirements.is_file():
        check.fail(
            "modelVersion",
            f"{requirements.relative_to(MODEL_ENVIRONMENTS.parent.parent)} is missing: the API image "
            f"installs the packages version {model.version} of {model.name!r} was logged with",
            "write it with `uv run python -m scripts.promote --print-pin --save-requirements` and commit it "
            "(or set apiImage to an image built for this model)",
        )


# Express Mode deploys every update as its own canary, fixed at 5% of traffic for 3 minutes with a rollback
# alarm on 4xx + 5xx errors, and the provider exposes no deployment settings (ecs.ExpressGatewayService):
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/express-service-update-full.html
EXPRESS_CANARY = "Express Mode runs its own canary on every update (5% for 3 minutes, rolled back on errors)"


def _canary(check: _Checker, cloud: Cloud | None, environment: Environment | None) -> CanarySettings:
    """`canaryPercent` + `canaryBakeMinutes` (+ the one-shot `rolloutPromote`)."""
    percent = check.integer("canaryPercent")
    bake_minutes = check.integer("canaryBakeMinutes")
    promote = check.boolean("rolloutPromote")
    if environment is Environment.SANDBOX and (percent or bake_minutes):
        key = "canaryPercent" if percent else "canaryBakeMinutes"
        check.fail(key, "is set on a sandbox", "sandboxes roll out at once: remove it")
        return CanarySettings(0, 0, promote)
    if percent and cloud is Cloud.AWS:
        check.fail(
            "canaryPercent",
            f"is {percent} but {EXPRESS_CANARY} and cannot split traffic otherwise",
            "remove it; canaryBakeMinutes still watches a new revision after Express's canary and rolls it "
            "back",
        )
        percent = 0
    if percent and not bake_minutes:
        check.fail(
            "canaryBakeMinutes",
            f"is 0 but canaryPercent is {percent}: nothing would promote the canary",
            "set canaryBakeMinutes from 1 to 30",
        )
    return CanarySettings(percent, bake_minutes, promote)


def _state_location(
    check: _Checker, cloud: Cloud | None, rules: CloudRules, prefix: str
) -> StateLocation | None:
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
    backend_scheme, provider_scheme = rules.state_schemes
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


def _sandbox_state(
    check: _Checker, cloud: Cloud | None, rules: CloudRules, hosts_sandboxes: bool
) -> StateLocation | None:
    location = _state_location(check, cloud, rules, "sandboxState")
    if location is not None and not hosts_sandboxes:
        check.fail(
            "sandboxStateBackend",
            "is set but sandboxes is not true",
            "set mlops-stack:sandboxes true on the dev stack, or remove the sandbox state keys",
        )
    return location


def _github_ids(check: _Checker) -> tuple[str | None, str | None]:
    """`githubRepositoryId` + `githubOwnerId`: both or neither, each GitHub's decimal id."""
    keys = ("githubRepositoryId", "githubOwnerId")
    values = [
        check.matching(key, GITHUB_NUMERIC_ID, f"GitHub's numeric id: {GITHUB_IDS_HOWTO}") for key in keys
    ]
    raw = [check.raw(key) for key in keys]
    if (raw[0] is None) != (raw[1] is None):
        missing = keys[0] if raw[0] is None else keys[1]
        check.fail(missing, "is not set but the other GitHub id is", f"set both: {GITHUB_IDS_HOWTO}")
        return None, None
    return values[0], values[1]


def _gcp_sandbox_project(check: _Checker, cloud: Cloud | None, hosts_sandboxes: bool) -> str | None:
    """GCP only: the project sandboxes deploy into; it makes sense only on the dev stack that hosts them."""
    value = check.matching(
        "gcpSandboxProject", GCP_PROJECT_ID, "a GCP project id (6-30 lowercase letters, digits, '-')"
    )
    if check.raw("gcpSandboxProject") is None:
        return None
    if cloud not in (None, Cloud.GCP):
        check.fail("gcpSandboxProject", f"is set on a {cloud.value} stack", "remove it: it is GCP only")
        return None
    if not hosts_sandboxes:
        check.fail(
            "gcpSandboxProject",
            "is set but sandboxes is not true",
            "set mlops-stack:sandboxes true on the dev stack, or remove gcpSandboxProject",
        )
        return None
    return value


# Workload Identity Federation maps the token's `sub` to `google.subject`, which "cannot exceed 127 bytes"
# (WorkloadIdentityPoolProvider.attributeMapping, https://cloud.google.com/iam/docs/reference/rest/v1/
# projects.locations.workloadIdentityPools.providers): a longer subject fails the token exchange.
GCP_SUBJECT_MAX_BYTES = 127


def _check_gcp_subjects(check: _Checker, settings: StackSettings) -> None:
    from infra.github import trusted_subjects

    for identity, subject in trusted_subjects(settings).items():
        if len(subject.encode()) > GCP_SUBJECT_MAX_BYTES:
            key = "githubBranch" if ":ref:" in subject else "githubRepository"
            check.fail(
                key,
                f"makes the {identity} identity's OIDC subject {len(subject.encode())} bytes long, over the "
                f"{GCP_SUBJECT_MAX_BYTES} that Workload Identity Federation maps",
                "use a shorter branch, GitHub environment or repository name",
            )


def _azure_resource_group(
    check: _Checker, cloud: Cloud | None, environment: Environment | None
) -> str | None:
    """Azure sandboxes deploy into the resource group the dev stack made for them (its sandbox identity may
    change that group only); every other stack makes its own group."""
    group = check.raw("azureResourceGroup")
    sandbox = cloud is Cloud.AZURE and environment is Environment.SANDBOX
    if sandbox and group is None:
        check.fail(
            "azureResourceGroup",
            "is not set: an Azure sandbox deploys into the dev stack's resource group for sandboxes",
            "set it to sandboxCiIdentity.resourceGroup of the azure-dev stack (SANDBOX_CONFIG)",
        )
    if group is not None and not sandbox:
        check.fail(
            "azureResourceGroup",
            "is only read by Azure sandbox stacks",
            "remove it: this stack makes its own",
        )
    return group


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
