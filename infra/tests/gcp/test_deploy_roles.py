"""Every resource type the GCP program creates, held to who may create and change it.

After the admin's first `pulumi up`, CI's deploy account runs every `up`: each resource outside the
admin's own components (the CI identities and their grants, the enabled APIs, the environment's Docker
repository) must be something one of its roles lets it create, or the first real `up` by CI is refused
half-way. The alerts once came after the deploy roles and would have been; so every type the program makes
is in one table below, with the roles that cover it (any one suffices), and a new type fails here until
someone names its role (and adds the role, with its fence, in infra/gcp/ci_identity.py). Sandboxes are held
to the sandbox account's roles the same way.

Which permission each role carries is Google's fact, from the predefined roles reference
(https://cloud.google.com/iam/docs/roles-permissions): e.g. `run.services.create` is in `roles/run.admin`,
`iam.serviceAccounts.create` in `roles/iam.serviceAccountAdmin`, `logging.logMetrics.create` in
`roles/logging.configWriter`. What only a real `up` settles is in the README's first-deploy checklist.
"""

import pytest

from infra.gcp.ci_identity import DEPLOY_ROLES, SANDBOX_ROLES
from infra.tests.gcp.conftest import config_for, model_source, run_stack, with_model
from infra.tests.gcp.test_ci_identity import LONGEST_SANDBOX, SANDBOX_PROJECT, run_dev_with_sandboxes, run_env
from testing.pulumi_program import ProgramRun, Registered

# The roles, any one of which lets the deploying account create and change each type (none: no cloud call).
ROLES_FOR_TYPE: dict[str, tuple[str, ...]] = {
    # The push (the image is built on the runner); a sandbox's account has the admin role, a superset.
    "docker-build:index:Image": ("roles/artifactregistry.writer", "roles/artifactregistry.admin"),
    "gcp:artifactregistry/repository:Repository": ("roles/artifactregistry.admin",),  # a sandbox's own
    "gcp:cloudrunv2/service:Service": ("roles/run.admin",),
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember": ("roles/run.admin",),
    "gcp:logging/metric:Metric": ("roles/logging.configWriter",),
    "gcp:monitoring/alertPolicy:AlertPolicy": ("roles/monitoring.alertPolicyEditor",),
    "gcp:monitoring/dashboard:Dashboard": ("roles/monitoring.dashboardEditor",),
    "gcp:monitoring/notificationChannel:NotificationChannel": ("roles/monitoring.notificationChannelEditor",),
    # Only the tracking server's cloudsql.client binding (its condition is tested in test_ci_identity).
    "gcp:projects/iAMMember:IAMMember": ("roles/resourcemanager.projectIamAdmin",),
    # The APIs: the admin's first `up` enables them (for a sandbox project, the dev stack's). Creating one
    # that is on already only lists the project's services (terraform-provider-google,
    # resource_google_project_service.go: "Check if the service has already been enabled"), which this role
    # allows; enabling one would need serviceusage.services.enable, which no CI account has.
    "gcp:projects/service:Service": ("roles/serviceusage.serviceUsageConsumer",),
    "gcp:secretmanager/secret:Secret": ("roles/secretmanager.admin",),
    "gcp:secretmanager/secretIamMember:SecretIamMember": ("roles/secretmanager.admin",),
    "gcp:secretmanager/secretVersion:SecretVersion": ("roles/secretmanager.admin",),
    "gcp:serviceaccount/account:Account": ("roles/iam.serviceAccountAdmin",),
    "gcp:serviceaccount/iAMMember:IAMMember": ("roles/iam.serviceAccountAdmin",),  # actAs for the deployer
    "gcp:sql/database:Database": ("roles/cloudsql.admin",),
    "gcp:sql/databaseInstance:DatabaseInstance": ("roles/cloudsql.admin",),
    "gcp:sql/user:User": ("roles/cloudsql.admin",),
    "gcp:storage/bucket:Bucket": ("roles/storage.admin",),
    "gcp:storage/bucketIAMMember:BucketIAMMember": ("roles/storage.admin",),
    "pulumi:providers:gcp": (),
    "pulumi:pulumi:StackReference": (),  # reads this stack's own state (apiRollout)
    "random:index/randomId:RandomId": (),
    "random:index/randomPassword:RandomPassword": (),
    "time:index/sleep:Sleep": (),
}
# The components the admin's first `up` creates and CI's deploy account never changes (ci_identity.py: the
# pool, the CI accounts and their grants; apis.py: the enabled APIs; the registry's repository, to which
# the deploy account only pushes).
ADMIN_COMPONENTS = frozenset(
    {"mlops-stack:gcp:CiIdentity", "mlops-stack:gcp:RequiredApis", "mlops-stack:gcp:ContainerRegistry"}
)
# The types only the admin's components create (a deploy account that could make them could trust itself).
ADMIN_ONLY_TYPES = frozenset(
    {
        "gcp:iam/workloadIdentityPool:WorkloadIdentityPool",
        "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider",
        "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember",
    }
)


def parent_types(resource: Registered) -> list[str]:
    """The types of the components a resource sits under, outermost first, from its URN
    (`urn:pulumi:<stack>::<project>::<parent type>$...$<type>::<name>`)."""
    parts = resource.urn.split("::")
    return parts[2].split("$")[:-1] if len(parts) == 4 else []


def deployed_by_ci(run: ProgramRun) -> list[Registered]:
    """What the deploying account creates and changes: everything outside the admin's components."""
    return [r for r in created(run) if not ADMIN_COMPONENTS & set(parent_types(r))]


def created(run: ProgramRun) -> list[Registered]:
    """The resources of a run that are not our own components."""
    return [r for r in run.resources if not r.type.startswith("mlops-stack:")]


@pytest.fixture(scope="module")
def environments() -> dict[str, ProgramRun]:
    """Each environment with a model pinned (the API and its alerts exist) and an alert email (a channel)."""
    email = {"alertEmail": "oncall@example.com"}
    return {
        "dev": run_dev_with_sandboxes(**with_model(), **email),
        "staging": run_env("staging", **with_model(modelSource=model_source("gcp-staging")), **email),
        "prod": run_env("prod", **with_model("prod"), **email),
    }


@pytest.fixture(scope="module")
def sandbox() -> ProgramRun:
    pin = with_model(modelSource=model_source(LONGEST_SANDBOX, SANDBOX_PROJECT))
    config = config_for("sandbox", **{"gcp:project": SANDBOX_PROJECT}, **pin)
    return run_stack(config, LONGEST_SANDBOX)


def test_every_type_the_program_creates_has_its_row(
    environments: dict[str, ProgramRun], sandbox: ProgramRun
) -> None:
    types = {r.type for run in (*environments.values(), sandbox) for r in created(run)}
    assert types == set(ROLES_FOR_TYPE) | ADMIN_ONLY_TYPES


def test_the_deploy_account_holds_the_role_for_everything_it_creates(
    environments: dict[str, ProgramRun],
) -> None:
    for environment, run in environments.items():
        for resource in deployed_by_ci(run):
            assert resource.type not in ADMIN_ONLY_TYPES, (environment, resource.name)
            roles = ROLES_FOR_TYPE[resource.type]
            assert not roles or set(roles) & set(DEPLOY_ROLES), (environment, resource.type, roles)


def test_the_sandbox_account_holds_the_role_for_everything_a_sandbox_creates(sandbox: ProgramRun) -> None:
    """A sandbox has no admin `up`: the sandbox account creates all of it, its Docker repository included."""
    assert not [r for r in sandbox.resources if "mlops-stack:gcp:CiIdentity" in parent_types(r)]
    for resource in created(sandbox):
        assert resource.type not in ADMIN_ONLY_TYPES, resource.name
        roles = ROLES_FOR_TYPE[resource.type]
        assert not roles or set(roles) & set(SANDBOX_ROLES), (resource.type, roles)


def test_what_only_the_admin_makes_sits_in_the_admins_components(environments: dict[str, ProgramRun]) -> None:
    """The CI identities, their grants, the pool and the APIs: none of them may be created by an `up` of the
    account they grant to (it could widen its own trust); the registry's repository: the deploy account only
    pushes to it (artifactregistry.writer)."""
    for run in environments.values():
        admins = [r for r in created(run) if ADMIN_COMPONENTS & set(parent_types(r))]
        assert {r.type for r in run.resources if r.type in ADMIN_ONLY_TYPES} <= {r.type for r in admins}
        repositories = run.of_type("gcp:artifactregistry/repository:Repository")
        assert repositories
        assert all("mlops-stack:gcp:ContainerRegistry" in parent_types(r) for r in repositories)
        assert "roles/artifactregistry.admin" not in DEPLOY_ROLES


def test_urns_name_their_parents() -> None:
    """The parser above, on a URN of the shape Pulumi writes."""
    urn = (
        "urn:pulumi:gcp-dev::mlops-stack::mlops-stack:gcp:Platform$mlops-stack:gcp:CiIdentity"
        "$gcp:serviceaccount/account:Account::gcp-dev-ci-deploy-account"
    )
    resource = Registered("gcp:serviceaccount/account:Account", "gcp-dev-ci-deploy-account", {}, urn=urn)
    assert parent_types(resource) == ["mlops-stack:gcp:Platform", "mlops-stack:gcp:CiIdentity"]
