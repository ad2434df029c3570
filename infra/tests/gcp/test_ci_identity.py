"""GCP CI identities under mocks: who each account trusts, what it may touch, and the joins to the rest of the
stack (the names the fences admit are the names the stack creates).

IAM conditions and the pool's attribute condition are evaluated with cel-python, a CEL implementation, over
the attributes Google documents:
- `resource.type`, `resource.name`: https://cloud.google.com/iam/docs/conditions-resource-attributes
  (buckets `projects/_/buckets/B`, objects `projects/_/buckets/B/objects/O`, Cloud SQL
  `projects/P/instances/I`, secrets `projects/<number>/secrets/S`);
- `api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', [])`: the roles whose bindings a setIamPolicy
  call adds or removes, `[]` for any other call; `hasOnly(list)` is true when every element is in the list
  (https://cloud.google.com/iam/docs/setting-limits-on-granting-roles);
- `assertion.*`: the claims of GitHub's OIDC token, ids as decimal strings
  (https://docs.github.com/en/actions/reference/security/oidc#oidc-token-claims).
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import celpy
import pulumi
import pytest

from infra.gcp.ci_identity import (
    DEPLOY_ROLES,
    GRANTABLE_PROJECT_ROLES,
    MONITORING_ROLES,
    PREVIEW_ROLES,
    SANDBOX_DEPLOYER_ACCOUNT_ID,
    SANDBOX_ROLES,
)
from infra.tests.gcp.conftest import (
    PROJECT,
    PROJECT_NUMBER,
    REPOSITORY,
    config_for,
    model_source,
    run_stack,
    with_model,
)
from testing.pulumi_program import ProgramRun, Registered

ACCOUNT = "gcp:serviceaccount/account:Account"
SA_IAM = "gcp:serviceaccount/iAMMember:IAMMember"
PROJECT_IAM = "gcp:projects/iAMMember:IAMMember"
BUCKET_IAM = "gcp:storage/bucketIAMMember:BucketIAMMember"
KEY_IAM = "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"
PROVIDER = "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider"
PROJECT_TYPE = "cloudresourcemanager.googleapis.com/Project"
SANDBOX_PROJECT = "acme-ml-sandboxes"
# The longest sandbox id config accepts (30 characters).
LONGEST_SANDBOX = "gcp-sandbox-" + "a" * 28 + "z1"
REPOSITORY_ID, OWNER_ID = "812345678", "98765432"

STATE = {
    env: {
        "stateBackend": f"gs://acme-ml-pulumi-state-{env}",
        "stateSecretsProvider": "gcpkms://projects/acme-ml/locations/europe-west1/keyRings/mlops-stack/"
        f"cryptoKeys/pulumi-secrets-{env}",
    }
    for env in ("dev", "staging", "prod")
}
SANDBOX_STATE = {
    "sandboxStateBackend": "gs://acme-ml-pulumi-state-sandbox/sandboxes",
    "sandboxStateSecretsProvider": "gcpkms://projects/acme-ml/locations/europe-west1/keyRings/mlops-stack/"
    "cryptoKeys/pulumi-secrets-sandbox",
}
IDS = {"githubRepositoryId": REPOSITORY_ID, "githubOwnerId": OWNER_ID}


def run_env(environment: str, stack: str | None = None, **overrides: str | None) -> ProgramRun:
    state = STATE.get(environment, {})
    return run_stack(config_for(environment, **{**state, **IDS, **overrides}), stack or f"gcp-{environment}")


def run_dev_with_sandboxes(**overrides: str | None) -> ProgramRun:
    return run_env(
        "dev", sandboxes="true", **{**SANDBOX_STATE, "gcpSandboxProject": SANDBOX_PROJECT, **overrides}
    )


@pytest.fixture(scope="module")
def runs() -> dict[str, ProgramRun]:
    return {
        "dev": run_dev_with_sandboxes(**with_model()),
        "staging": run_env("staging", modelVersion="1", modelSource=model_source("gcp-staging")),
        "prod": run_env("prod", **with_model("prod")),
    }


# --- CEL, as Google's IAM and STS evaluate it -----------------------------------------------------------


def evaluate(expression: str, **activation: Any) -> bool:
    env = celpy.Environment()
    program = env.program(
        env.compile(expression),
        functions={
            "getAttribute": lambda api, name, default: api.get(celpy.celtypes.StringType(name), default),
            "hasOnly": lambda values, allowed: celpy.celtypes.BoolType(
                all(value in allowed for value in values)
            ),
        },
    )
    return bool(program.evaluate({name: celpy.json_to_cel(value) for name, value in activation.items()}))


def admits(binding: Registered, resource_type: str, name: str) -> bool:
    """Whether a (conditional) project-level grant applies to a request on this resource."""
    condition = binding.inputs.get("condition")
    if condition is None:
        return True
    return evaluate(condition["expression"], resource={"type": resource_type, "name": name}, api={})


def may_modify_grants(binding: Registered, roles: Sequence[str]) -> bool:
    condition = binding.inputs.get("condition")
    if condition is None:
        return True
    modified = {"iam.googleapis.com/modifiedGrantsByRole": list(roles)}
    return evaluate(condition["expression"], resource={"type": PROJECT_TYPE, "name": ""}, api=modified)


# --- helpers over a run ---------------------------------------------------------------------------------


def account(run: ProgramRun, identity: str) -> Registered:
    return run.one(ACCOUNT, f"-ci-{identity}-account")


def member(run: ProgramRun, identity: str) -> str:
    inputs = account(run, identity).inputs
    return f"serviceAccount:{inputs['accountId']}@{inputs['project']}.iam.gserviceaccount.com"


def grants(run: ProgramRun, identity: str, type_token: str = PROJECT_IAM) -> dict[str, Registered]:
    return {
        b.inputs["role"]: b for b in run.of_type(type_token) if b.inputs["member"] == member(run, identity)
    }


def trusted_subjects(run: ProgramRun) -> dict[str, set[str]]:
    """Identity -> the OIDC subjects its workloadIdentityUser bindings admit (via this stack's pool)."""
    pool = run.one("gcp:iam/workloadIdentityPool:WorkloadIdentityPool").inputs["workloadIdentityPoolId"]
    prefix = (
        f"principal://iam.googleapis.com/projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/"
    )
    accounts = {
        f"projects/{inputs['project']}/serviceAccounts/{inputs['accountId']}@{inputs['project']}."
        "iam.gserviceaccount.com": a.name
        for a in run.of_type(ACCOUNT)
        for inputs in [a.inputs]
    }
    trust: dict[str, set[str]] = {}
    for binding in run.of_type(SA_IAM):
        if binding.inputs["role"] != "roles/iam.workloadIdentityUser":
            continue
        principal = binding.inputs["member"]
        assert principal.startswith(f"{prefix}{pool}/subject/"), principal
        name = accounts[binding.inputs["serviceAccountId"]]
        # the naming contract of the join test: the trust binding's name starts with its identity's name
        identity = name.removesuffix("-account")
        assert binding.name.startswith(identity), (binding.name, identity)
        trust.setdefault(identity, set()).add(principal.split("/subject/", 1)[1])
    return trust


# --- trust ----------------------------------------------------------------------------------------------

CANDIDATE_SUBJECTS = [
    f"repo:{REPOSITORY}:environment:dev",
    f"repo:{REPOSITORY}:environment:staging",
    f"repo:{REPOSITORY}:environment:prod",
    f"repo:{REPOSITORY}:environment:sandbox",
    f"repo:{REPOSITORY}:environment:retrain-dev",
    f"repo:{REPOSITORY}:environment:retrain-staging",
    f"repo:{REPOSITORY}:environment:retrain-prod",
    f"repo:{REPOSITORY}:pull_request",
    f"repo:{REPOSITORY}:ref:refs/heads/main",
    f"repo:{REPOSITORY}:ref:refs/heads/feature",
    "repo:acme-ml/other:environment:prod",
]


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        (
            "dev",
            {
                "gcp-dev-ci-deploy": f"repo:{REPOSITORY}:environment:dev",
                "gcp-dev-ci-preview": f"repo:{REPOSITORY}:pull_request",
                "gcp-dev-ci-sandbox": f"repo:{REPOSITORY}:environment:sandbox",
                "gcp-dev-ci-retrain": f"repo:{REPOSITORY}:environment:retrain-dev",
            },
        ),
        (
            "staging",
            {
                "gcp-staging-ci-deploy": f"repo:{REPOSITORY}:environment:staging",
                "gcp-staging-ci-preview": f"repo:{REPOSITORY}:pull_request",
                "gcp-staging-ci-retrain": f"repo:{REPOSITORY}:environment:retrain-staging",
            },
        ),
        (
            "prod",
            {
                "gcp-prod-ci-deploy": f"repo:{REPOSITORY}:environment:prod",
                "gcp-prod-ci-preview": f"repo:{REPOSITORY}:ref:refs/heads/main",
                "gcp-prod-ci-retrain": f"repo:{REPOSITORY}:environment:retrain-prod",
            },
        ),
    ],
)
def test_each_identity_accepts_its_one_subject_and_refuses_every_other(
    runs: dict[str, ProgramRun], environment: str, expected: dict[str, str]
) -> None:
    trust = trusted_subjects(runs[environment])
    assert set(trust) == set(expected)
    for identity, subject in expected.items():
        accepted = {candidate for candidate in CANDIDATE_SUBJECTS if candidate in trust[identity]}
        assert accepted == {subject}, identity


def test_prod_preview_follows_the_configured_branch() -> None:
    trust = trusted_subjects(run_env("prod", githubBranch="release/v2"))
    assert trust["gcp-prod-ci-preview"] == {f"repo:{REPOSITORY}:ref:refs/heads/release/v2"}


def test_sandbox_stacks_make_no_ci_identity_and_are_deployed_by_the_sandbox_account() -> None:
    run = run_stack(config_for("sandbox", **{"gcp:project": SANDBOX_PROJECT}), LONGEST_SANDBOX)
    assert run.outputs["ciIdentity"] == {}
    assert "sandboxCiIdentity" not in run.outputs
    assert not [r for r in run.resources if "-ci-" in r.name]
    assert not run.of_type("gcp:iam/workloadIdentityPool:WorkloadIdentityPool")
    deployer = f"serviceAccount:{SANDBOX_DEPLOYER_ACCOUNT_ID}@{SANDBOX_PROJECT}.iam.gserviceaccount.com"
    acts_as = [b for b in run.of_type(SA_IAM) if b.inputs["role"] == "roles/iam.serviceAccountUser"]
    assert {b.inputs["member"] for b in acts_as} == {deployer}


def test_the_sandbox_account_sandbox_stacks_name_is_the_one_the_dev_stack_makes(
    runs: dict[str, ProgramRun],
) -> None:
    dev = runs["dev"]
    assert member(dev, "sandbox") == (
        f"serviceAccount:{SANDBOX_DEPLOYER_ACCOUNT_ID}@{SANDBOX_PROJECT}.iam.gserviceaccount.com"
    )
    assert dev.outputs["sandboxCiIdentity"] == {
        "workloadIdentityProvider": dev.outputs["ciIdentity"]["workloadIdentityProvider"],
        "deployServiceAccount": f"{SANDBOX_DEPLOYER_ACCOUNT_ID}@{SANDBOX_PROJECT}.iam.gserviceaccount.com",
        "project": SANDBOX_PROJECT,
    }
    assert "sandboxCiIdentity" not in runs["prod"].outputs


def test_ci_identity_output_is_what_the_auth_action_takes(runs: dict[str, ProgramRun]) -> None:
    for environment, run in runs.items():
        pool = run.one("gcp:iam/workloadIdentityPool:WorkloadIdentityPool").inputs["workloadIdentityPoolId"]
        assert 4 <= len(pool) <= 32
        assert not pool.startswith("gcp-")
        assert run.outputs["ciIdentity"] == {
            "workloadIdentityProvider": f"projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/"
            f"{pool}/providers/github",
            "deployServiceAccount": member(run, "deploy").split(":")[1],
            "previewServiceAccount": member(run, "preview").split(":")[1],
            "retrainServiceAccount": member(run, "retrain").split(":")[1],
            "trackingPasswordSecret": f"gcp-{environment}-mlflow-admin-password",
            "project": PROJECT,
        }, environment


SECRET = "gcp:secretmanager/secret:Secret"
SECRET_IAM = "gcp:secretmanager/secretIamMember:SecretIamMember"


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_the_retrain_account_reads_the_admin_password_secret_and_nothing_else(
    runs: dict[str, ProgramRun], environment: str
) -> None:
    """Its one grant, wherever IAM can hold one: accessor on the secret the tracking server's admin password
    lives in (found through the container's variable, not by the name the output claims)."""
    run = runs[environment]
    retrain = member(run, "retrain")
    (admin_password,) = [
        s
        for s in run.of_type(SECRET)
        if s.name == f"gcp-{environment}-tracking-secrets-mlflow-admin-password"
    ]
    held = [r for r in run.resources if r.inputs.get("member") == retrain]
    assert [(r.type, r.inputs["role"], r.inputs["secretId"]) for r in held] == [
        (SECRET_IAM, "roles/secretmanager.secretAccessor", f"{admin_password.name}-id")
    ]
    assert run.outputs["ciIdentity"]["trackingPasswordSecret"] == admin_password.inputs["secretId"]
    # No state, no key, no project role: nothing in the stack's state is open to it.
    for kind in (PROJECT_IAM, BUCKET_IAM, KEY_IAM):
        assert not grants(run, "retrain", kind)
    # The tracking server reads the same secret: the one the workflow reads is the one MLflow uses.
    readers = {
        b.inputs["member"]
        for b in run.of_type(SECRET_IAM)
        if b.inputs["secretId"] == f"{admin_password.name}-id"
    }
    tracking = run.one(ACCOUNT, "-tracking-account").inputs
    assert readers == {retrain, f"serviceAccount:{tracking['accountId']}@{PROJECT}.iam.gserviceaccount.com"}


def token(**claims: str) -> dict[str, str]:
    return {
        "repository": REPOSITORY,
        "repository_id": REPOSITORY_ID,
        "repository_owner_id": OWNER_ID,
        "sub": f"repo:{REPOSITORY}:environment:prod",
        **claims,
    }


def test_the_pool_admits_only_this_repository_by_name_and_by_githubs_ids(runs: dict[str, ProgramRun]) -> None:
    provider = runs["prod"].one(PROVIDER).inputs
    assert provider["oidc"]["issuerUri"] == "https://token.actions.githubusercontent.com"
    assert provider["attributeMapping"]["google.subject"] == "assertion.sub"
    condition = provider["attributeCondition"]
    assert evaluate(condition, assertion=token())
    # a re-registered name: same owner/repo string, new ids
    assert not evaluate(condition, assertion=token(repository_id="999", repository_owner_id="555"))
    assert not evaluate(condition, assertion=token(repository_owner_id="555"))
    assert not evaluate(condition, assertion=token(repository="acme-ml/other"))


def test_without_githubs_ids_the_pool_trusts_the_name_and_the_program_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *_args, **_kw: warnings.append(message))
    run = run_env("dev", githubRepositoryId=None, githubOwnerId=None)
    condition = run.one(PROVIDER).inputs["attributeCondition"]
    assert condition == f"assertion.repository == '{REPOSITORY}'"
    assert evaluate(condition, assertion=token(repository_id="999"))
    [warning] = [w for w in warnings if "numeric" in w]
    assert "gh api repos/OWNER/REPO --jq .id,.owner.id" in warning


# --- the fences -----------------------------------------------------------------------------------------


def test_project_iam_admin_can_grant_only_cloudsql_client(runs: dict[str, ProgramRun]) -> None:
    for identity, run in (("deploy", runs["prod"]), ("deploy", runs["dev"]), ("sandbox", runs["dev"])):
        admin = grants(run, identity)["roles/resourcemanager.projectIamAdmin"]
        assert may_modify_grants(admin, ["roles/cloudsql.client"])
        assert may_modify_grants(admin, [])  # getIamPolicy and the other calls the role carries
        for escalation in ("roles/owner", "roles/editor", "roles/iam.serviceAccountTokenCreator"):
            assert not may_modify_grants(admin, [escalation]), escalation
            assert not may_modify_grants(admin, ["roles/cloudsql.client", escalation]), escalation


def test_the_stack_itself_grants_only_roles_project_iam_admin_may_grant(runs: dict[str, ProgramRun]) -> None:
    """Join: a project-level binding the program makes outside the admin-made CI grants must pass the fence,
    or CI's own `up` would be refused."""
    for environment, run in runs.items():
        stack = f"gcp-{environment}"
        roles = {b.inputs["role"] for b in run.of_type(PROJECT_IAM) if not b.name.startswith(f"{stack}-ci-")}
        assert roles, environment
        assert roles <= set(GRANTABLE_PROJECT_ROLES), environment


def stack_resource_names(run: ProgramRun, project: str) -> dict[str, list[str]]:
    """The resource names (as IAM conditions see them) of what the stack creates in the fenced services."""
    return {
        "storage.googleapis.com/Bucket": [
            f"projects/_/buckets/{b.inputs['name']}" for b in run.of_type("gcp:storage/bucket:Bucket")
        ],
        "storage.googleapis.com/Object": [
            f"projects/_/buckets/{b.inputs['name']}/objects/mlflow/1/model.pkl"
            for b in run.of_type("gcp:storage/bucket:Bucket")
        ],
        "sqladmin.googleapis.com/Instance": [
            f"projects/{project}/instances/{i.inputs['name']}"
            for i in run.of_type("gcp:sql/databaseInstance:DatabaseInstance")
        ],
        "secretmanager.googleapis.com/SecretVersion": [
            f"projects/{PROJECT_NUMBER}/secrets/{s.inputs['secretId']}/versions/1"
            for s in run.of_type("gcp:secretmanager/secret:Secret")
        ],
    }


# Each fenced admin role and the resource types of its service.
FENCED_ROLES: Mapping[str, tuple[str, ...]] = {
    "roles/storage.admin": ("storage.googleapis.com/Bucket", "storage.googleapis.com/Object"),
    "roles/cloudsql.admin": ("sqladmin.googleapis.com/Instance",),
    "roles/secretmanager.admin": ("secretmanager.googleapis.com/SecretVersion",),
}


def fenced_reach(binding: Registered, names: Mapping[str, list[str]]) -> dict[str, bool]:
    """Which of these names the role's condition admits, for the resource types the role's service has."""
    kinds = FENCED_ROLES[binding.inputs["role"]]
    return {
        name: admits(binding, kind, name)
        for kind, listed in names.items()
        if kind in kinds
        for name in listed
    }


def test_each_deploy_identity_reaches_its_own_buckets_secrets_and_database_and_no_other(
    runs: dict[str, ProgramRun],
) -> None:
    names = {env: stack_resource_names(run, PROJECT) for env, run in runs.items()}
    for environment, run in runs.items():
        for role in FENCED_ROLES:
            binding = grants(run, "deploy")[role]
            for owner, owned in names.items():
                reach = fenced_reach(binding, owned)
                assert reach, (environment, role, owner)
                assert all(reach.values()) is (owner == environment), (environment, role, owner)
                assert any(reach.values()) is (owner == environment), (environment, role, owner)
            # creating and listing are checked on the project
            assert admits(binding, PROJECT_TYPE, f"projects/{PROJECT}")


def test_the_sandbox_account_reaches_sandbox_named_resources_even_for_the_longest_id_and_nothing_else(
    runs: dict[str, ProgramRun],
) -> None:
    sandbox = run_stack(
        config_for(
            "sandbox",
            **{"gcp:project": SANDBOX_PROJECT, "modelVersion": "1"},
            modelSource=model_source(LONGEST_SANDBOX, SANDBOX_PROJECT),
        ),
        LONGEST_SANDBOX,
    )
    sandbox_names = stack_resource_names(sandbox, SANDBOX_PROJECT)
    for role in FENCED_ROLES:
        binding = grants(runs["dev"], "sandbox")[role]
        assert binding.inputs["project"] == SANDBOX_PROJECT
        reach = fenced_reach(binding, sandbox_names)
        assert reach, role
        assert all(reach.values()), role
        for environment, run in runs.items():
            assert not any(fenced_reach(binding, stack_resource_names(run, PROJECT)).values()), environment


def test_state_buckets_are_out_of_reach_of_every_admin_role_whatever_their_names() -> None:
    """A state bucket named like the stack's own resources stays out of storage.admin's reach."""
    state = {
        "stateBackend": "gs://acme-ml-gcp-dev-state",
        "stateSecretsProvider": STATE["dev"]["stateSecretsProvider"],
    }
    run = run_env("dev", **state)
    admin = grants(run, "deploy")["roles/storage.admin"]
    assert admits(admin, "storage.googleapis.com/Bucket", "projects/_/buckets/acme-ml-gcp-dev-mlflow")
    assert not admits(admin, "storage.googleapis.com/Bucket", "projects/_/buckets/acme-ml-gcp-dev-state")
    assert not admits(
        admin, "storage.googleapis.com/Object", "projects/_/buckets/acme-ml-gcp-dev-state/objects/x"
    )


def test_no_ci_identity_administers_the_pool_or_holds_a_basic_role(runs: dict[str, ProgramRun]) -> None:
    for run in runs.values():
        deploy = grants(run, "deploy")
        assert set(deploy) == set(DEPLOY_ROLES)
        assert set(grants(run, "preview")) == set(PREVIEW_ROLES)
        assert "roles/iam.workloadIdentityPoolAdmin" not in deploy
        assert not {"roles/owner", "roles/editor"} & set(deploy)
        assert all(
            "condition" not in b.inputs or b.inputs["condition"] is None
            for b in grants(run, "preview").values()
        )
    assert set(grants(runs["dev"], "sandbox")) == set(SANDBOX_ROLES)
    assert "roles/iam.workloadIdentityPoolViewer" not in SANDBOX_ROLES


# --- state ----------------------------------------------------------------------------------------------


def state_grants(run: ProgramRun, identity: str) -> tuple[dict[str, str], dict[str, str]]:
    objects = {b.inputs["bucket"]: b.inputs["role"] for b in grants(run, identity, BUCKET_IAM).values()}
    keys = {b.inputs["cryptoKeyId"]: b.inputs["role"] for b in grants(run, identity, KEY_IAM).values()}
    return objects, keys


def key_of(environment: str) -> str:
    return STATE[environment]["stateSecretsProvider"].removeprefix("gcpkms://")


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_deploy_writes_and_preview_reads_only_their_environments_state(
    runs: dict[str, ProgramRun], environment: str
) -> None:
    run = runs[environment]
    bucket = f"acme-ml-pulumi-state-{environment}"
    assert state_grants(run, "deploy") == (
        {bucket: "roles/storage.objectUser"},
        {key_of(environment): "roles/cloudkms.cryptoKeyEncrypterDecrypter"},
    )
    assert state_grants(run, "preview") == (
        {bucket: "roles/storage.objectViewer"},
        {key_of(environment): "roles/cloudkms.cryptoKeyDecrypter"},
    )


def test_the_sandbox_account_reads_and_writes_only_the_sandbox_state_under_its_prefix(
    runs: dict[str, ProgramRun],
) -> None:
    run = runs["dev"]
    objects, keys = state_grants(run, "sandbox")
    assert objects == {"acme-ml-pulumi-state-sandbox": "roles/storage.objectUser"}
    assert keys == {
        "projects/acme-ml/locations/europe-west1/keyRings/mlops-stack/cryptoKeys/pulumi-secrets-sandbox": (
            "roles/cloudkms.cryptoKeyEncrypterDecrypter"
        )
    }
    [binding] = grants(run, "sandbox", BUCKET_IAM).values()
    bucket = "projects/_/buckets/acme-ml-pulumi-state-sandbox"
    condition = binding.inputs["condition"]["expression"]

    def reachable(name: str) -> bool:
        return evaluate(condition, resource={"type": "storage.googleapis.com/Object", "name": name})

    assert reachable(bucket)  # listing is checked on the bucket
    assert reachable(f"{bucket}/objects/sandboxes/.pulumi/stacks/mlops-stack/{LONGEST_SANDBOX}.json")
    assert not reachable(f"{bucket}/objects/other-team/.pulumi/stacks/mlops-stack/gcp-dev.json")
    assert not reachable(f"{bucket}/objects/sandboxes-old/x")


def test_unset_state_means_no_state_grants_and_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *_args, **_kw: warnings.append(message))
    run = run_stack(config_for("prod", **IDS), "gcp-prod")
    assert not [b for b in run.of_type(BUCKET_IAM) if b.name.startswith("gcp-prod-ci-")]
    assert not run.of_type(KEY_IAM)
    assert any("CI will not be able to read state" in warning for warning in warnings)


# --- sandboxes in the dev project -------------------------------------------------------------------------


def test_sandboxes_in_the_dev_project_are_fenced_where_gcp_can_and_the_program_says_where_it_cannot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *_args, **_kw: warnings.append(message))
    run = run_dev_with_sandboxes(gcpSandboxProject=None)
    sandbox_grants = grants(run, "sandbox")
    assert {b.inputs["project"] for b in sandbox_grants.values()} == {PROJECT}
    dev_names = stack_resource_names(run, PROJECT)
    for role in FENCED_ROLES:
        assert not any(fenced_reach(sandbox_grants[role], dev_names).values()), role
    [warning] = [w for w in warnings if "share the dev project" in w]
    assert "pulumi config set mlops-stack:gcpSandboxProject" in warning
    # no second set of APIs: the dev project's are the sandboxes'
    assert not [s for s in run.of_type("gcp:projects/service:Service") if s.inputs["project"] != PROJECT]


def test_a_dedicated_sandbox_project_gets_the_stacks_apis_enabled_by_the_dev_stack(
    runs: dict[str, ProgramRun],
) -> None:
    enabled: Callable[[str], set[str]] = lambda project: {  # noqa: E731
        s.inputs["service"]
        for s in runs["dev"].of_type("gcp:projects/service:Service")
        if s.inputs["project"] == project
    }
    assert enabled(SANDBOX_PROJECT) == enabled(PROJECT)
    assert "cloudresourcemanager.googleapis.com" in enabled(SANDBOX_PROJECT)


def test_the_deployer_manages_the_alerts_the_program_creates_and_sandboxes_get_no_such_role(
    runs: dict[str, ProgramRun],
) -> None:
    """The monitoring types in a stack's program and the roles that create them, held together: the alerts
    came after the deploy roles, and a real `up` by CI would have been refused."""
    role_for_type = {
        "gcp:monitoring/alertPolicy:AlertPolicy": "roles/monitoring.alertPolicyEditor",
        "gcp:monitoring/notificationChannel:NotificationChannel": (
            "roles/monitoring.notificationChannelEditor"
        ),
        "gcp:monitoring/dashboard:Dashboard": "roles/monitoring.dashboardEditor",
        "gcp:logging/metric:Metric": "roles/logging.configWriter",
    }
    emailed = run_env("prod", **with_model("prod"), alertEmail="oncall@example.com")
    created = {r.type for run in (*runs.values(), emailed) for r in run.resources}
    monitoring_types = {kind for kind in created if kind.startswith(("gcp:monitoring/", "gcp:logging/"))}
    assert monitoring_types == set(role_for_type)
    assert set(role_for_type.values()) | {"roles/monitoring.viewer"} == MONITORING_ROLES
    assert set(DEPLOY_ROLES) >= MONITORING_ROLES
    assert not MONITORING_ROLES & set(SANDBOX_ROLES)
