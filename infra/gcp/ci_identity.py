"""Keyless CI on GCP: GitHub Actions trades its OIDC token for a short-lived Google token. No key is created.

The isolation model (README, "Environments and isolation"), as this stack builds it:

| identity (service account) | made by | trusts (token `sub`) |
|---|---|---|
| deploy of E | stack `gcp-E` | `repo:R:environment:E` |
| preview of dev / staging | stack `gcp-dev` / `gcp-staging` | `repo:R:pull_request` |
| preview of prod | stack `gcp-prod` | `repo:R:ref:refs/heads/<githubBranch>` (never a PR) |
| sandbox deploy | stack `gcp-dev` with `sandboxes: true` | `repo:R:environment:sandbox` |
| retrain of E | stack `gcp-E` | `repo:R:environment:retrain-E` |

Sandbox stacks make no CI identity (their `ciIdentity` is `{}`); they are deployed by the dev stack's sandbox
account, whose email they know from their project (`sandbox_deployer_member`).

Trust: each account's only `roles/iam.workloadIdentityUser` binding names one subject. The pool's provider
admits tokens of `githubRepository` only and, once `githubRepositoryId`/`githubOwnerId` are set, only of that
repository and owner by GitHub's numeric ids (a freed name can be re-registered by someone else; the ids
cannot). No other repository can exchange a token with the pool.

What the stack enforces on each grant (the README's isolation table says the same):
- Project IAM admin carries `iam.googleapis.com/modifiedGrantsByRole` `hasOnly(['roles/cloudsql.client'])`: a
  deploy identity can add or remove that role only, the one project-level role the stack grants (to the
  tracking server). It cannot make itself owner or grant any other role on the project.
  https://cloud.google.com/iam/docs/setting-limits-on-granting-roles
- Storage, Secret Manager and Cloud SQL recognise resource names in IAM conditions
  (https://cloud.google.com/iam/docs/conditions-resource-attributes lists storage.googleapis.com,
  secretmanager.googleapis.com, sqladmin.googleapis.com among the services that do): their admin roles are
  narrowed to the names this stack (or sandboxes) create, `<stack>-…` (buckets `<project>-<stack>-…`), plus
  the project itself, against which creating and listing are checked. State buckets are always excluded.
- Cloud Run, Artifact Registry and IAM service accounts are not in that list, so a name condition cannot
  narrow them: `run.admin`, `artifactregistry.writer` and `iam.serviceAccountAdmin` hold on the whole project
  (`serviceAccountAdmin` because the stack creates runtime accounts, the API's on the first model pin, and
  grants the deployer `actAs` on each). Within its project a deploy identity can therefore change any
  service account's grants, including the CI accounts'. Put each environment in its own project
  (`gcp:project`) and sandboxes in theirs (`gcpSandboxProject`): then that reach ends at the project.
- The retrain account (.github/workflows/retrain.yml) holds one grant: `roles/secretmanager.secretAccessor` on
  the tracking server's admin-password secret (a binding on that secret, no project role). It reads that
  password to train against the stack's MLflow, and can reach nothing else of the project or of the state.
- The pool and the CI accounts' project grants are made by the admin's first `pulumi up`: CI gets only
  `workloadIdentityPoolViewer`, never pool admin (which could add an OIDC provider of its own to a pool).
- State (`stateBackend`/`stateSecretsProvider`, made per environment by scripts/bootstrap.py): deploy reads
  and writes objects under its prefix and encrypts/decrypts with its key; preview reads and lists objects and
  decrypts only (Pulumi's DIY backend writes nothing on preview); the sandbox account gets the sandbox state
  and key. The grants are on the bucket and the key themselves, wherever they live.
"""

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import pulumi
import pulumi_gcp.iam as iam
import pulumi_gcp.kms as kms
import pulumi_gcp.organizations as organizations
import pulumi_gcp.projects as projects
import pulumi_gcp.secretmanager as secretmanager
import pulumi_gcp.serviceaccount as serviceaccount
import pulumi_gcp.storage as storage
import pulumi_random as random

from infra.config import GITHUB_IDS_HOWTO, Environment, StackSettings, StateLocation
from infra.gcp.apis import Api, RequiredApis
from infra.gcp.secrets import SECRET_ACCESSOR
from infra.github import ISSUER, CiRole
from infra.github import trusted_subjects as github_subjects
from infra.naming import short_name

WORKLOAD_IDENTITY_USER = "roles/iam.workloadIdentityUser"
PROVIDER_ID = "github"
# Pool ids are 4-32 characters and may not start with "gcp-" (reserved), hence the "gh" prefix.
POOL_ID_MAX = 32
POOL_SUFFIX_BYTES = 3  # 6 hex characters
# The sandbox deploy account lives in the sandboxes' project under a fixed id, so a sandbox stack knows whom
# to let deploy its services (`actAs` on its runtime accounts) from its own `gcp:project` alone.
SANDBOX_DEPLOYER_ACCOUNT_ID = "mlops-sandbox-deployer"
# The only project-level role the stack grants (the tracking server's Cloud SQL client, conditioned on its
# instance). Project IAM admin is fenced to it.
GRANTABLE_PROJECT_ROLES: tuple[str, ...] = ("roles/cloudsql.client",)
PROJECT_RESOURCE_TYPE = "cloudresourcemanager.googleapis.com/Project"


class Fence(StrEnum):
    """How a project-level grant is narrowed."""

    PROJECT = "project"  # none possible: the service ignores resource attributes in IAM conditions
    BUCKETS = "buckets"  # storage.googleapis.com: projects/_/buckets/<name>[/objects/…]
    SQL_INSTANCES = "sql-instances"  # sqladmin.googleapis.com: projects/<project id>/instances/<name>
    SECRETS = "secrets"  # secretmanager.googleapis.com: projects/<project number>/secrets/<name>[/versions/…]
    GRANTS = "grants"  # iam.googleapis.com/modifiedGrantsByRole: which roles a setIamPolicy may change


@dataclass(frozen=True)
class RoleGrant:
    why: str
    fence: Fence


# What `pulumi up` of an environment needs after the admin's first `up`, role by role.
DEPLOY_ROLES: Mapping[str, RoleGrant] = {
    "roles/serviceusage.serviceUsageConsumer": RoleGrant(
        "see the enabled APIs (the admin's first `up` enables them)", Fence.PROJECT
    ),
    "roles/storage.admin": RoleGrant("the artifact bucket, its settings and its IAM bindings", Fence.BUCKETS),
    "roles/artifactregistry.writer": RoleGrant(
        "push the images (the repository and its cleanup policies are the admin's)", Fence.PROJECT
    ),
    "roles/cloudsql.admin": RoleGrant("the PostgreSQL instance, database and user", Fence.SQL_INSTANCES),
    "roles/secretmanager.admin": RoleGrant(
        "the secrets, their versions and their IAM bindings", Fence.SECRETS
    ),
    "roles/run.admin": RoleGrant("the Cloud Run services and their invoker bindings", Fence.PROJECT),
    "roles/iam.serviceAccountAdmin": RoleGrant(
        "the runtime accounts (the API's appears with the first model pin) and actAs on them", Fence.PROJECT
    ),
    "roles/iam.workloadIdentityPoolViewer": RoleGrant("read the pool (the admin's)", Fence.PROJECT),
    "roles/resourcemanager.projectIamAdmin": RoleGrant(
        "the tracking server's conditional cloudsql.client binding, and no other role", Fence.GRANTS
    ),
    **{
        role: RoleGrant(f"the stack's alerts (infra/gcp/monitoring.py): {what}", Fence.PROJECT)
        for role, what in (
            ("roles/monitoring.alertPolicyEditor", "its alert policies"),
            ("roles/monitoring.notificationChannelEditor", "the alertEmail channel"),
            ("roles/monitoring.dashboardEditor", "its dashboard"),
            ("roles/logging.configWriter", "the log-based metrics the drift and restart policies read"),
            # scripts/rollout.py bake lists open alerts (monitoring.alerts.list) during a rollout.
            ("roles/monitoring.viewer", "read which alerts are open while a new revision bakes"),
        )
    },
}
# Sandboxes have no alerts (infra/alerts.py), so their deployer gets none of the monitoring roles.
MONITORING_ROLES = frozenset(
    role for role in DEPLOY_ROLES if role.startswith(("roles/monitoring.", "roles/logging."))
)
# Sandbox stacks create everything themselves, their Docker repository included, and no pool.
SANDBOX_ROLES: Mapping[str, RoleGrant] = {
    **{
        role: grant
        for role, grant in DEPLOY_ROLES.items()
        if role not in ("roles/iam.workloadIdentityPoolViewer", "roles/artifactregistry.writer")
        and role not in MONITORING_ROLES
    },
    "roles/artifactregistry.admin": RoleGrant(
        "each sandbox's Docker repository, its cleanup policies and images", Fence.PROJECT
    ),
}
# `pulumi preview` reads state and the live configuration, never writes.
PREVIEW_ROLES: Mapping[str, RoleGrant] = {
    "roles/viewer": RoleGrant("read every resource's configuration for the diff", Fence.PROJECT),
    "roles/iam.securityReviewer": RoleGrant(
        "read IAM policies (bucket, secrets, services), which viewer does not", Fence.PROJECT
    ),
}
# Pulumi's DIY backend keeps `.pulumi/…` objects under the backend URL's path; gcpkms wraps the data key.
STATE_OBJECTS_READ_WRITE = "roles/storage.objectUser"
STATE_OBJECTS_READ = "roles/storage.objectViewer"
STATE_KEY_READ_WRITE = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
STATE_KEY_READ = "roles/cloudkms.cryptoKeyDecrypter"


@dataclass(frozen=True)
class NameScope:
    """The names one identity's fenced roles reach: everything whose name starts with `prefix`."""

    project: str
    project_number: pulumi.Input[str]
    prefix: str  # "gcp-dev-" for the dev stack's resources, "gcp-sandbox-" for every sandbox's
    state_buckets: tuple[str, ...]  # never reachable through the admin roles, whatever their names

    def expression(self, fence: Fence) -> pulumi.Input[str] | None:
        """The CEL condition for a role fenced this way (None: the role holds on the whole project)."""
        if fence is Fence.PROJECT:
            return None
        if fence is Fence.GRANTS:
            roles = ", ".join(f"'{role}'" for role in GRANTABLE_PROJECT_ROLES)
            return f"api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly([{roles}])"
        project_itself = f"resource.type == '{PROJECT_RESOURCE_TYPE}'"
        if fence is Fence.BUCKETS:
            named = f"resource.name.startsWith('projects/_/buckets/{self.project}-{self.prefix}')"
            not_state = "".join(
                f" && !resource.name.startsWith('projects/_/buckets/{bucket}')"
                for bucket in self.state_buckets
            )
            return f"{project_itself} || ({named}{not_state})"
        if fence is Fence.SQL_INSTANCES:
            instances = f"projects/{self.project}/instances/{self.prefix}"
            return f"{project_itself} || resource.name.startsWith('{instances}')"
        # Secret Manager names secrets by project number; the id form is admitted too, so the condition does
        # not depend on which one a request carries.
        return pulumi.Output.from_input(self.project_number).apply(
            lambda number: (
                f"{project_itself} || resource.name.startsWith('projects/{number}/secrets/{self.prefix}') "
                f"|| resource.name.startsWith('projects/{self.project}/secrets/{self.prefix}')"
            )
        )


@dataclass(frozen=True, kw_only=True)
class CiIdentityArgs:
    settings: StackSettings
    apis: RequiredApis


@dataclass(frozen=True)
class CiAccess:
    """What the rest of the stack needs from CI: who deploys it, and the outputs workflows log in with."""

    deploy_member: pulumi.Output[str]  # "serviceAccount:<email>" that runs `pulumi up` on this stack
    outputs: pulumi.Input[Mapping[str, pulumi.Input[str]]]  # the stack's `ciIdentity` ({} on sandboxes)
    sandbox_outputs: pulumi.Input[Mapping[str, pulumi.Input[str]]] | None  # dev with sandboxes only
    identity: "CiIdentity | None" = None  # None on sandboxes

    def with_retrain_reading(self, secret: secretmanager.Secret) -> "CiAccess":
        """Let the retrain identity read `secret` (the MLflow admin password, made after the CI identities:
        the tracking server needs the deploy account first) and name it in the `ciIdentity` output."""
        if self.identity is None:
            return self
        return dataclasses.replace(self, outputs=self.identity.let_retrain_read(secret))


def sandbox_deployer_email(project: str) -> str:
    return f"{SANDBOX_DEPLOYER_ACCOUNT_ID}@{project}.iam.gserviceaccount.com"


def ci_access(name: str, settings: StackSettings, apis: RequiredApis, parent: pulumi.Resource) -> CiAccess:
    """The CI identities of a dev/staging/prod stack; a sandbox makes none: the sandbox account deploys it."""
    if settings.is_sandbox:
        deployer = pulumi.Output.from_input(
            f"serviceAccount:{sandbox_deployer_email(settings.gcp_project or '')}"
        )
        return CiAccess(deployer, {}, None)
    ci = CiIdentity(
        name, CiIdentityArgs(settings=settings, apis=apis), opts=pulumi.ResourceOptions(parent=parent)
    )
    return CiAccess(ci.deploy_member, ci.outputs, ci.sandbox_outputs, ci)


class CiIdentity(pulumi.ComponentResource):
    provider: iam.WorkloadIdentityPoolProvider
    deploy_account: serviceaccount.Account
    preview_account: serviceaccount.Account
    retrain_account: serviceaccount.Account
    sandbox_account: serviceaccount.Account | None
    deploy_member: pulumi.Output[str]  # "serviceAccount:<deploy email>"
    outputs: pulumi.Output[dict[str, str]]  # the stack's `ciIdentity`: what google-github-actions/auth takes
    sandbox_outputs: pulumi.Output[dict[str, str]] | None  # `sandboxCiIdentity` (dev with sandboxes)

    def __init__(self, name: str, args: CiIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-stack:gcp:CiIdentity", name, None, opts)
        settings = args.settings
        project = settings.gcp_project or ""
        subjects = github_subjects(settings)
        self._name, self._settings, self._apis = name, settings, args.apis
        self.provider, pool_name = self._pool(name, settings)

        def principal(subject: str) -> pulumi.Output[str]:
            return pool_name.apply(lambda pool: f"principal://iam.googleapis.com/{pool}/subject/{subject}")

        number = organizations.get_project_output(project_id=project).number
        scope = NameScope(project, number, f"{settings.stack}-", _state_buckets(settings))
        self.deploy_account = self._account("deploy", project, "Deploys", principal(subjects[CiRole.DEPLOY]))
        self.preview_account = self._account(
            "preview", project, "Previews (read-only)", principal(subjects[CiRole.PREVIEW])
        )
        # No project role and no state: its one grant is on the admin-password secret (let_retrain_read).
        self.retrain_account = self._account(
            "retrain", project, "Reads the MLflow password to retrain", principal(subjects[CiRole.RETRAIN])
        )
        self.deploy_member = _member(self.deploy_account)
        self._project_roles("deploy", project, self.deploy_member, DEPLOY_ROLES, scope, args.apis)
        self._project_roles(
            "preview", project, _member(self.preview_account), PREVIEW_ROLES, scope, args.apis
        )
        self._state_access("deploy", self.deploy_member, settings.state, writable=True)
        self._state_access("preview", _member(self.preview_account), settings.state, writable=False)
        if settings.state is None:
            pulumi.log.warn(
                f"{settings.stack}: mlops-stack:stateBackend/stateSecretsProvider are not set, so the CI "
                "identities get no access to the state bucket or key and CI will not be able to read state: "
                "set both to what scripts/bootstrap.py printed for this environment",
                self,
            )
        if settings.github_repository_id is None:
            pulumi.log.warn(
                f"{settings.stack}: the pool trusts the repository name {settings.github_repository!r} "
                "alone; if that name is ever freed, whoever registers it could deploy. Pin GitHub's numeric "
                "ids: pulumi config set mlops-stack:githubRepositoryId … and mlops-stack:githubOwnerId … "
                f"({GITHUB_IDS_HOWTO})",
                self,
            )
        self.outputs = pulumi.Output.all(
            self.provider.name,
            self.deploy_account.email,
            self.preview_account.email,
            self.retrain_account.email,
        ).apply(
            lambda values: {
                "workloadIdentityProvider": values[0],
                "deployServiceAccount": values[1],
                "previewServiceAccount": values[2],
                "retrainServiceAccount": values[3],
                "project": project,
            }
        )
        self.sandbox_account, self.sandbox_outputs = None, None
        if settings.hosts_sandboxes:
            self._sandbox_identity(principal(subjects[CiRole.SANDBOX]))
        self.register_outputs({"ciIdentity": self.outputs, "sandboxCiIdentity": self.sandbox_outputs})

    def let_retrain_read(self, secret: secretmanager.Secret) -> pulumi.Output[dict[str, str]]:
        """The retrain account's one grant: read this secret's versions. Returns `ciIdentity` with the
        secret's id, which the retrain workflow reads it by (`gcloud secrets versions access`)."""
        secretmanager.SecretIamMember(
            f"{self._name}-retrain-reads-tracking-password",
            secret_id=secret.id,
            project=self._settings.gcp_project,
            role=SECRET_ACCESSOR,
            member=_member(self.retrain_account),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return pulumi.Output.all(self.outputs, secret.secret_id).apply(
            lambda values: {**values[0], "trackingPasswordSecret": values[1]}
        )

    def _pool(
        self, name: str, settings: StackSettings
    ) -> tuple[iam.WorkloadIdentityPoolProvider, pulumi.Output[str]]:
        project = settings.gcp_project or ""
        iam_api = pulumi.ResourceOptions(parent=self, depends_on=self._apis.needed_by([Api.IAM, Api.STS]))
        # A deleted pool keeps its id for 30 days (soft delete), so a stack that is destroyed and brought up
        # again could not reuse a fixed id. Every stack's pool gets a random suffix, kept in state: stable for
        # the stack's life, fresh when the stack is recreated. The stack name keeps pools readable and apart.
        suffix = random.RandomId(
            f"{name}-pool-suffix", byte_length=POOL_SUFFIX_BYTES, opts=pulumi.ResourceOptions(parent=self)
        )
        pool_prefix = short_name("gh", settings.stack, max_length=POOL_ID_MAX - 2 * POOL_SUFFIX_BYTES - 1)
        pool = iam.WorkloadIdentityPool(
            f"{name}-pool",
            workload_identity_pool_id=pulumi.Output.concat(pool_prefix, "-", suffix.hex),
            project=project,
            display_name=f"GitHub {settings.stack}"[:32],
            description=f"GitHub Actions of {settings.github_repository} for stack {settings.stack}",
            opts=iam_api,
        )
        provider = iam.WorkloadIdentityPoolProvider(
            f"{name}-provider",
            workload_identity_pool_id=pool.workload_identity_pool_id,
            workload_identity_pool_provider_id=PROVIDER_ID,
            project=project,
            display_name="GitHub Actions",
            attribute_mapping={
                "google.subject": "assertion.sub",
                "attribute.repository": "assertion.repository",
            },
            attribute_condition=attribute_condition(settings),
            oidc=iam.WorkloadIdentityPoolProviderOidcArgs(issuer_uri=ISSUER),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return provider, pool.name

    def _account(
        self,
        purpose: str,
        project: str,
        verb: str,
        principal: pulumi.Input[str],
        account_id: str | None = None,
    ) -> serviceaccount.Account:
        """A CI service account and its one trust binding (logical names `<stack>-ci-<purpose>-…`)."""
        settings = self._settings
        account = serviceaccount.Account(
            f"{self._name}-{purpose}-account",
            account_id=account_id or short_name(settings.stack, "ci", purpose, max_length=30),
            project=project,
            display_name=f"{settings.stack} CI {purpose}",
            description=f"{verb} from GitHub Actions of {settings.github_repository} ({settings.stack})",
            opts=pulumi.ResourceOptions(parent=self, depends_on=self._apis.needed_by([Api.IAM])),
        )
        serviceaccount.IAMMember(
            f"{self._name}-{purpose}-federation",
            service_account_id=account.name,
            role=WORKLOAD_IDENTITY_USER,
            member=principal,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return account

    def _project_roles(
        self,
        purpose: str,
        project: str,
        member: pulumi.Input[str],
        roles: Mapping[str, RoleGrant],
        scope: NameScope,
        apis: RequiredApis,
    ) -> None:
        options = pulumi.ResourceOptions(parent=self, depends_on=apis.needed_by([Api.RESOURCE_MANAGER]))
        for role, grant in roles.items():
            expression = scope.expression(grant.fence)
            projects.IAMMember(
                f"{self._name}-{purpose}-{_role_slug(role)}",
                project=project,
                role=role,
                member=member,
                condition=None
                if expression is None
                else projects.IAMMemberConditionArgs(
                    title=f"{grant.fence.value} of {scope.prefix.rstrip('-')}"[:100],
                    description=grant.why,
                    expression=expression,
                ),
                opts=options,
            )

    def _state_access(
        self, purpose: str, member: pulumi.Input[str], state: StateLocation | None, writable: bool
    ) -> None:
        if state is None:
            return
        child = pulumi.ResourceOptions(parent=self)
        condition = None
        if state.prefix:
            # Listing is checked on the bucket, objects by their full name. A shared bucket's other prefixes
            # stay unreadable (their object names stay listable: IAM cannot narrow a list by prefix).
            bucket = f"projects/_/buckets/{state.bucket}"
            condition = storage.BucketIAMMemberConditionArgs(
                title=f"state under {state.prefix}"[:100],
                expression=f"resource.name == '{bucket}' "
                f"|| resource.name.startsWith('{bucket}/objects/{state.prefix}/')",
            )
        storage.BucketIAMMember(
            f"{self._name}-{purpose}-state-objects",
            bucket=state.bucket,
            role=STATE_OBJECTS_READ_WRITE if writable else STATE_OBJECTS_READ,
            member=member,
            condition=condition,
            opts=child,
        )
        kms.CryptoKeyIAMMember(
            f"{self._name}-{purpose}-state-key",
            crypto_key_id=state.key,
            role=STATE_KEY_READ_WRITE if writable else STATE_KEY_READ,
            member=member,
            opts=child,
        )

    def _sandbox_identity(self, principal: pulumi.Output[str]) -> None:
        """The sandboxes' deploy account, in the sandboxes' project, fenced to sandbox-named resources."""
        settings = self._settings
        dev_project = settings.gcp_project or ""
        project = settings.gcp_sandbox_project or dev_project
        apis = self._apis
        if project != dev_project:
            # A dedicated project: enable the stack's APIs there now, so sandbox stacks only read them.
            apis = RequiredApis(f"{self._name}-sandbox-apis", project, pulumi.ResourceOptions(parent=self))
        else:
            pulumi.log.warn(
                f"{settings.stack}: sandboxes share the dev project {dev_project!r}. Their deploy account is "
                "fenced to sandbox-named buckets, secrets and Cloud SQL instances, but Cloud Run, Artifact "
                "Registry and service accounts cannot be fenced by name on GCP: sandbox jobs (pull-request "
                "code) can change the dev stack's services and act as its accounts. Give sandboxes their own "
                "project: "
                "pulumi config set mlops-stack:gcpSandboxProject <project-id>",
                self,
            )
        self.sandbox_account = self._account(
            "sandbox", project, "Deploys sandboxes", principal, account_id=SANDBOX_DEPLOYER_ACCOUNT_ID
        )
        member = _member(self.sandbox_account)
        number = organizations.get_project_output(project_id=project).number
        prefix = f"{settings.cloud.value}-{Environment.SANDBOX.value}-"
        scope = NameScope(project, number, prefix, _state_buckets(settings))
        self._project_roles("sandbox", project, member, SANDBOX_ROLES, scope, apis)
        self._state_access("sandbox", member, settings.sandbox_state, writable=True)
        if settings.sandbox_state is None:
            pulumi.log.warn(
                f"{settings.stack}: sandboxStateBackend/sandboxStateSecretsProvider are not set, so the "
                "sandbox account gets no access to the sandbox state: set both to what scripts/bootstrap.py "
                "printed",
                self,
            )
        self.sandbox_outputs = pulumi.Output.all(self.provider.name, self.sandbox_account.email).apply(
            lambda values: {
                "workloadIdentityProvider": values[0],
                "deployServiceAccount": values[1],
                "project": project,
            }
        )


def attribute_condition(settings: StackSettings) -> str:
    """The provider's CEL condition: this repository, by name and (once configured) by GitHub's ids."""
    clauses = [f"assertion.repository == '{settings.github_repository}'"]
    if settings.github_repository_id is not None and settings.github_owner_id is not None:
        # GitHub puts both ids in the token as decimal strings.
        clauses.append(f"assertion.repository_id == '{settings.github_repository_id}'")
        clauses.append(f"assertion.repository_owner_id == '{settings.github_owner_id}'")
    return " && ".join(clauses)


def _state_buckets(settings: StackSettings) -> tuple[str, ...]:
    locations: Sequence[StateLocation | None] = (settings.state, settings.sandbox_state)
    return tuple(sorted({location.bucket for location in locations if location is not None}))


def _member(account: serviceaccount.Account) -> pulumi.Output[str]:
    return account.email.apply(lambda email: f"serviceAccount:{email}")


def _role_slug(role: str) -> str:
    """`roles/iam.serviceAccountAdmin` -> `iam-serviceaccountadmin`, for readable resource names."""
    return role.removeprefix("roles/").replace(".", "-").lower()
