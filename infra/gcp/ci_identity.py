"""Keyless CI: GitHub Actions exchanges its OIDC token for a short-lived Google token. No key is created.

Two accounts, two trust rules, both on the token's `sub` claim, which GitHub sets and a workflow cannot:
- deploy: only jobs of `githubRepository` running in the GitHub environment `githubEnvironment`
  (`repo:<repo>:environment:<env>`), so the environment's protection rules (reviewers, branches) gate
  every deploy;
- preview: only pull-request jobs of that repository (`repo:<repo>:pull_request`), read-only, for
  `pulumi preview` comments. Forks' PR jobs get no OIDC token unless the repository allows it.
The provider's attribute condition admits tokens of `githubRepository` only, so no other repository on
GitHub can even exchange a token with this pool.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_gcp.iam as iam
import pulumi_gcp.projects as projects
import pulumi_gcp.serviceaccount as serviceaccount
import pulumi_random as random

from infra.config import StackSettings
from infra.gcp.apis import Api, RequiredApis
from infra.naming import short_name

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
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
    "roles/resourcemanager.projectIamAdmin": "project-level bindings: cloudsql.client and these CI roles",
}
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
    provider: iam.WorkloadIdentityPoolProvider
    deploy_account: serviceaccount.Account
    preview_account: serviceaccount.Account
    deploy_member: pulumi.Output[str]  # "serviceAccount:<deploy email>"
    outputs: pulumi.Output[dict[str, str]]  # the stack's `ciIdentity`: what google-github-actions/auth takes

    def __init__(self, name: str, args: CiIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-stack:gcp:CiIdentity", name, None, opts)
        settings = args.settings
        project = settings.gcp_project or ""
        child = pulumi.ResourceOptions(parent=self)
        iam_api = pulumi.ResourceOptions(parent=self, depends_on=args.apis.needed_by([Api.IAM, Api.STS]))
        # A deleted pool keeps its id for 30 days (soft delete), so a stack that is destroyed and brought up
        # again, as sandboxes are, could not reuse a fixed id. Every stack's pool gets a random suffix, kept
        # in state: stable for the stack's life, fresh when the stack is recreated. The stack name in the id
        # keeps pools readable and apart in a shared project.
        suffix = random.RandomId(f"{name}-pool-suffix", byte_length=POOL_SUFFIX_BYTES, opts=child)
        pool_prefix = short_name("gh", settings.stack, max_length=POOL_ID_MAX - 2 * POOL_SUFFIX_BYTES - 1)
        pool = iam.WorkloadIdentityPool(
            f"{name}-pool",
            workload_identity_pool_id=pulumi.Output.concat(pool_prefix, "-", suffix.hex),
            project=project,
            display_name=f"GitHub {settings.stack}"[:32],
            description=f"GitHub Actions of {settings.github_repository} for stack {settings.stack}",
            opts=iam_api,
        )
        self.provider = iam.WorkloadIdentityPoolProvider(
            f"{name}-provider",
            workload_identity_pool_id=pool.workload_identity_pool_id,
            workload_identity_pool_provider_id=PROVIDER_ID,
            project=project,
            display_name="GitHub Actions",
            attribute_mapping={
                "google.subject": "assertion.sub",
                "attribute.repository": "assertion.repository",
            },
            attribute_condition=f"assertion.repository == '{settings.github_repository}'",
            oidc=iam.WorkloadIdentityPoolProviderOidcArgs(issuer_uri=GITHUB_ISSUER),
            opts=child,
        )

        def subject(claim: str) -> pulumi.Output[str]:
            return pool.name.apply(
                lambda pool_name: (
                    f"principal://iam.googleapis.com/{pool_name}/subject/"
                    f"repo:{settings.github_repository}:{claim}"
                )
            )

        self.deploy_account = self._account(name, settings, "deploy", "Deploys", args)
        self.preview_account = self._account(name, settings, "preview", "Previews (read-only)", args)
        self.deploy_member = self.deploy_account.email.apply(lambda email: f"serviceAccount:{email}")
        preview_member = self.preview_account.email.apply(lambda email: f"serviceAccount:{email}")
        serviceaccount.IAMMember(
            f"{name}-deploy-federation",
            service_account_id=self.deploy_account.name,
            role=WORKLOAD_IDENTITY_USER,
            member=subject(f"environment:{settings.github_environment}"),
            opts=child,
        )
        serviceaccount.IAMMember(
            f"{name}-preview-federation",
            service_account_id=self.preview_account.name,
            role=WORKLOAD_IDENTITY_USER,
            member=subject("pull_request"),
            opts=child,
        )
        project_iam = pulumi.ResourceOptions(
            parent=self, depends_on=args.apis.needed_by([Api.RESOURCE_MANAGER])
        )
        for role in DEPLOY_ROLES:
            projects.IAMMember(
                f"{name}-deploy-{_role_slug(role)}",
                project=project,
                role=role,
                member=self.deploy_member,
                opts=project_iam,
            )
        for role in PREVIEW_ROLES:
            projects.IAMMember(
                f"{name}-preview-{_role_slug(role)}",
                project=project,
                role=role,
                member=preview_member,
                opts=project_iam,
            )
        self.outputs = pulumi.Output.all(
            self.provider.name, self.deploy_account.email, self.preview_account.email
        ).apply(
            lambda values: {
                "workloadIdentityProvider": values[0],
                "deployServiceAccount": values[1],
                "previewServiceAccount": values[2],
                "project": project,
            }
        )
        self.register_outputs({"ciIdentity": self.outputs})

    def _account(
        self, name: str, settings: StackSettings, purpose: str, verb: str, args: CiIdentityArgs
    ) -> serviceaccount.Account:
        return serviceaccount.Account(
            f"{name}-{purpose}-account",
            account_id=short_name(settings.stack, "ci", purpose, max_length=30),
            project=settings.gcp_project,
            display_name=f"{settings.stack} CI {purpose}",
            description=f"{verb} {settings.stack} from GitHub Actions of {settings.github_repository}",
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.apis.needed_by([Api.IAM])),
        )


def _role_slug(role: str) -> str:
    """`roles/iam.serviceAccountAdmin` -> `iam-serviceaccountadmin`, for readable resource names."""
    return role.removeprefix("roles/").replace(".", "-").lower()
