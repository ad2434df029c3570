"""Keyless CI: GitHub Actions exchanges its OIDC token for a short-lived Google token. No key is created.

Which token subject each account trusts is the cross-cloud table in `infra.github` (deploy: the stack's
GitHub environment; preview: pull requests, or for prod only the deploy branch; sandbox: the `sandbox`
environment, made by the dev stack with `sandboxes: true`). Sandbox stacks make no CI account.

Trust is checked twice: the pool provider admits only tokens of `githubRepository` (and, when
`githubRepositoryId`/`githubOwnerId` are set, of that repository id and owner id, which survive renames and
cannot be re-registered by someone else), and each account's `workloadIdentityUser` binding names one
subject, which GitHub sets and a workflow cannot.

What each account may do:
- deploy: the roles of `DEPLOY_ROLES` in the environment's project; `projectIamAdmin` is fenced by an IAM
  condition on `iam.googleapis.com/modifiedGrantsByRole`, so it can grant and revoke project-level roles
  from `PROJECT_GRANTABLE_ROLES` only (never owner, editor or its own roles), see
  https://cloud.google.com/iam/docs/setting-limits-on-granting-roles. It reads/writes its environment's
  Pulumi state and encrypts/decrypts with its key (`infra.gcp.state_access`).
- preview: read-only (`PREVIEW_ROLES`) in the project, reads (never writes) its environment's state,
  decrypts with its key.
- sandbox: the deploy roles in the sandboxes' project (`sandboxProject`, default the dev project), the
  sandbox state and key.
What GCP cannot fence, and the README says: `serviceAccountAdmin`, `run.admin` and
`artifactregistry.admin` do not honour resource-name conditions (only storage, secretmanager, sqladmin,
cloudkms, compute, ... do: https://cloud.google.com/iam/docs/conditions-resource-attributes), so in a project
shared by two environments the deploy account of one can change the other's service accounts. One project
per environment (dev and sandboxes may share one) is the isolation the stack recommends and supports.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pulumi
import pulumi_gcp.iam as iam
import pulumi_gcp.projects as projects
import pulumi_gcp.serviceaccount as serviceaccount
import pulumi_random as random

from infra.config import StackSettings
from infra.gcp.apis import Api, RequiredApis
from infra.gcp.state_access import grant_state_access
from infra.github import ISSUER, CiRole, trusted_subjects
from infra.naming import short_name

WORKLOAD_IDENTITY_USER = "roles/iam.workloadIdentityUser"
PROVIDER_ID = "github"
# Pool ids are 4-32 characters and may not start with "gcp-" (reserved), hence the "gh" prefix.
POOL_ID_MAX = 32
POOL_SUFFIX_BYTES = 3  # 6 hex characters

# What `pulumi up` of this program does, role by role. The deploy account manages IAM, so it is as
# powerful as the stack it deploys: guard its GitHub environment with required reviewers.
DEPLOY_ROLES: Mapping[str, str] = {
    "roles/serviceusage.serviceUsageAdmin": "enable the APIs the stack uses",
    "roles/storage.admin": "the artifact bucket, its settings and its IAM bindings",
    "roles/artifactregistry.admin": "the Docker repository, its cleanup policies, and pushing images",
    "roles/cloudsql.admin": "the PostgreSQL instance, database and user",
    "roles/secretmanager.admin": "the secrets, their versions and their IAM bindings",
    "roles/run.admin": "the Cloud Run services and their invoker bindings",
    "roles/iam.serviceAccountAdmin": "the runtime and CI service accounts and their IAM bindings",
    "roles/iam.workloadIdentityPoolAdmin": "this workload identity pool and its GitHub provider",
    "roles/resourcemanager.projectIamAdmin": "project-level bindings, of PROJECT_GRANTABLE_ROLES only",
}
# The only roles the program grants at project level once the CI accounts exist: the deploy account may grant
# and revoke these and nothing else (its own roles come from the admin's first `up`; CI never changes them).
PROJECT_GRANTABLE_ROLES = ("roles/cloudsql.client",)
PROJECT_IAM_ADMIN = "roles/resourcemanager.projectIamAdmin"
# `pulumi preview` reads state and the live configuration, never writes.
PREVIEW_ROLES: Mapping[str, str] = {
    "roles/viewer": "read every resource's configuration for the diff",
    "roles/iam.securityReviewer": "read IAM policies (bucket, secrets, services), which viewer does not",
}


@dataclass(frozen=True)
class CiIdentityArgs:
    settings: StackSettings
    apis: RequiredApis


class CiIdentity(pulumi.ComponentResource):
    """The stack's CI accounts (none for a sandbox) and the pool GitHub's tokens are exchanged in."""

    accounts: dict[CiRole, serviceaccount.Account]
    outputs: pulumi.Output[dict[str, str]]  # the stack's `ciIdentity`: what google-github-actions/auth takes
    sandbox_outputs: pulumi.Output[dict[str, str]] | None  # `sandboxCiIdentity` (dev with sandboxes only)

    def __init__(self, name: str, args: CiIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-stack:gcp:CiIdentity", name, None, opts)
        settings = args.settings
        self.accounts = {}
        self.sandbox_outputs = None
        subjects = trusted_subjects(settings)
        if not subjects:
            self.outputs = pulumi.Output.from_input({})
            self.register_outputs({})
            return
        project = settings.gcp_project or ""
        provider, pool_name = self._pool(name, settings, args)
        for role, subject in subjects.items():
            account = self._account(name, settings, role, args)
            self.accounts[role] = account
            serviceaccount.IAMMember(
                f"{name}-{role}-federation",
                service_account_id=account.name,
                role=WORKLOAD_IDENTITY_USER,
                member=pool_name.apply(_principal(subject)),
                opts=pulumi.ResourceOptions(parent=self),
            )
        project_iam = pulumi.ResourceOptions(
            parent=self, depends_on=args.apis.needed_by([Api.RESOURCE_MANAGER])
        )
        deploy = _member(self.accounts[CiRole.DEPLOY])
        preview = _member(self.accounts[CiRole.PREVIEW])
        self._grant_deploy_roles(f"{name}-deploy", project, deploy, project_iam)
        for preview_role in PREVIEW_ROLES:
            projects.IAMMember(
                f"{name}-preview-{_role_slug(preview_role)}",
                project=project,
                role=preview_role,
                member=preview,
                opts=project_iam,
            )
        if settings.state is not None:
            grant_state_access(f"{name}-deploy", settings.state, deploy, write=True, parent=self)
            grant_state_access(f"{name}-preview", settings.state, preview, write=False, parent=self)
        else:
            pulumi.log.warn(
                "mlops-stack:stateBackend is not set: the CI accounts get no access to this stack's state, "
                "so workflows cannot preview or deploy it (scripts/bootstrap.py sets it)",
                resource=self,
            )
        self.outputs = pulumi.Output.all(
            provider.name, self.accounts[CiRole.DEPLOY].email, self.accounts[CiRole.PREVIEW].email
        ).apply(
            lambda values: {
                "workloadIdentityProvider": values[0],
                "deployServiceAccount": values[1],
                "previewServiceAccount": values[2],
                "project": project,
            }
        )
        if CiRole.SANDBOX in self.accounts:
            sandbox_project = settings.sandbox_project or project
            sandbox = _member(self.accounts[CiRole.SANDBOX])
            self._grant_deploy_roles(f"{name}-sandbox", sandbox_project, sandbox, project_iam)
            if settings.sandbox_state is not None:
                grant_state_access(
                    f"{name}-sandbox", settings.sandbox_state, sandbox, write=True, parent=self
                )
            self.sandbox_outputs = pulumi.Output.all(
                provider.name, self.accounts[CiRole.SANDBOX].email
            ).apply(
                lambda values: {
                    "workloadIdentityProvider": values[0],
                    "deployServiceAccount": values[1],
                    "project": sandbox_project,
                }
            )
        self.register_outputs({"ciIdentity": self.outputs})

    def _pool(
        self, name: str, settings: StackSettings, args: CiIdentityArgs
    ) -> tuple[iam.WorkloadIdentityPoolProvider, pulumi.Output[str]]:
        child = pulumi.ResourceOptions(parent=self)
        # A deleted pool keeps its id for 30 days (soft delete), so a stack that is destroyed and brought up
        # again could not reuse a fixed id. Every stack's pool gets a random suffix, kept in state: stable for
        # the stack's life, fresh when the stack is recreated. The stack name keeps pools readable.
        suffix = random.RandomId(f"{name}-pool-suffix", byte_length=POOL_SUFFIX_BYTES, opts=child)
        pool_prefix = short_name("gh", settings.stack, max_length=POOL_ID_MAX - 2 * POOL_SUFFIX_BYTES - 1)
        pool = iam.WorkloadIdentityPool(
            f"{name}-pool",
            workload_identity_pool_id=pulumi.Output.concat(pool_prefix, "-", suffix.hex),
            project=settings.gcp_project,
            display_name=f"GitHub {settings.stack}"[:32],
            description=f"GitHub Actions of {settings.github_repository} for stack {settings.stack}",
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.apis.needed_by([Api.IAM, Api.STS])),
        )
        provider = iam.WorkloadIdentityPoolProvider(
            f"{name}-provider",
            workload_identity_pool_id=pool.workload_identity_pool_id,
            workload_identity_pool_provider_id=PROVIDER_ID,
            project=settings.gcp_project,
            display_name="GitHub Actions",
            attribute_mapping={
                "google.subject": "assertion.sub",
                "attribute.repository": "assertion.repository",
                "attribute.repository_id": "assertion.repository_id",
                "attribute.repository_owner_id": "assertion.repository_owner_id",
            },
            attribute_condition=attribute_condition(settings),
            oidc=iam.WorkloadIdentityPoolProviderOidcArgs(issuer_uri=ISSUER),
            opts=child,
        )
        return provider, pool.name

    def _grant_deploy_roles(
        self, name: str, project: str, member: pulumi.Input[str], opts: pulumi.ResourceOptions
    ) -> None:
        for role in DEPLOY_ROLES:
            condition = None
            if role == PROJECT_IAM_ADMIN:
                condition = projects.IAMMemberConditionArgs(
                    title="grant-only-workload-roles",
                    description="May grant and revoke only the project roles the stack's workloads get",
                    expression=modified_grants_condition(PROJECT_GRANTABLE_ROLES),
                )
            projects.IAMMember(
                f"{name}-{_role_slug(role)}",
                project=project,
                role=role,
                member=member,
                condition=condition,
                opts=opts,
            )

    def _account(
        self, name: str, settings: StackSettings, role: CiRole, args: CiIdentityArgs
    ) -> serviceaccount.Account:
        return serviceaccount.Account(
            f"{name}-{role}-account",
            account_id=short_name(settings.stack, "ci", role.value, max_length=30),
            project=settings.gcp_project,
            display_name=f"{settings.stack} CI {role}",
            description=f"{ROLE_PURPOSE[role]} from GitHub Actions of {settings.github_repository}",
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.apis.needed_by([Api.IAM])),
        )


ROLE_PURPOSE: Mapping[CiRole, str] = {
    CiRole.DEPLOY: "Deploys this stack",
    CiRole.PREVIEW: "Previews this stack (read-only)",
    CiRole.SANDBOX: "Deploys and destroys sandbox stacks",
}


def attribute_condition(settings: StackSettings) -> str:
    """The pool admits tokens of this repository only (by name, and by its numeric ids when configured)."""
    parts = [f"assertion.repository == '{settings.github_repository}'"]
    if settings.github_repository_id:
        parts.append(f"assertion.repository_id == '{settings.github_repository_id}'")
    if settings.github_owner_id:
        parts.append(f"assertion.repository_owner_id == '{settings.github_owner_id}'")
    return " && ".join(parts)


def modified_grants_condition(roles: tuple[str, ...]) -> str:
    """CEL: the change to the allow policy adds or removes bindings of these roles only."""
    allowed = ", ".join(f"'{role}'" for role in roles)
    return f"api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly([{allowed}])"


def _principal(subject: str) -> Callable[[str], str]:
    """The IAM member for tokens with this `sub` in a pool (pool resource name -> principal URI)."""
    return lambda pool: f"principal://iam.googleapis.com/{pool}/subject/{subject}"


def _member(account: serviceaccount.Account) -> pulumi.Output[str]:
    return account.email.apply(lambda email: f"serviceAccount:{email}")


def _role_slug(role: str) -> str:
    """`roles/iam.serviceAccountAdmin` -> `iam-serviceaccountadmin`, for readable resource names."""
    return role.removeprefix("roles/").replace(".", "-").lower()
