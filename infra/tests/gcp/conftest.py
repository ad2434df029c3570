"""GCP stacks under Pulumi mocks: config per environment, and what GCP computes (emails, names, URLs)."""

from collections.abc import Mapping
from typing import Any

import pytest
from pulumi.runtime import MockCallArgs, MockResourceArgs

from testing.pulumi_program import ProgramRun, run_program, stack_config

PROJECT = "acme-ml"
PROJECT_NUMBER = "123456789012"
REGION = "europe-west1"
REPOSITORY = "acme-ml/mlops-stack"
STACKS = {"dev": "gcp-dev", "prod": "gcp-prod", "sandbox": "gcp-sandbox-alice"}
# What scripts/promote.py --print-pin gives: a version's model directory under the stack's artifact root.
MODEL_PATH = "mlflow/1/models/m-0123456789abcdef/artifacts"
MODEL_SOURCE = f"gs://acme-ml-gcp-dev-mlflow/{MODEL_PATH}"
DIGEST = "sha256:" + "ab" * 32
# Who runs a sandbox's `pulumi up` (the dev stack's sandbox CI account), as Google reports the caller.
SANDBOX_DEPLOYER = f"gcp-dev-ci-sandbox@{PROJECT}.iam.gserviceaccount.com"


def config_for(environment: str, **overrides: str | None) -> dict[str, str]:
    """A valid GCP stack config; see testing.pulumi_program.stack_config for overrides."""
    location = {"gcp:project": PROJECT, "gcp:region": REGION}
    return stack_config("gcp", environment, location, REPOSITORY, **overrides)


def model_source(stack: str, project: str = PROJECT) -> str:
    """The pinned model's URI in `stack`'s own bucket (the name infra gives it)."""
    from infra.naming import short_name

    return f"gs://{short_name(project, stack, 'mlflow', max_length=63)}/{MODEL_PATH}"


def with_model(environment: str = "dev", **overrides: str | None) -> dict[str, str | None]:
    return {"modelVersion": "1", "modelSource": model_source(STACKS[environment]), **overrides}


def gcp_outputs(args: MockResourceArgs) -> Mapping[str, Any]:
    """What GCP (and the providers) compute from what we send, as the real API would."""
    inputs = args.inputs
    if args.typ == "gcp:serviceaccount/account:Account":
        project = inputs.get("project") or PROJECT  # an account's email names the project it lives in
        email = f"{inputs['accountId']}@{project}.iam.gserviceaccount.com"
        return {"email": email, "name": f"projects/{project}/serviceAccounts/{email}"}
    if args.typ == "gcp:iam/workloadIdentityPool:WorkloadIdentityPool":
        pool = inputs["workloadIdentityPoolId"]
        return {"name": f"projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/{pool}"}
    if args.typ == "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider":
        pool, provider = inputs["workloadIdentityPoolId"], inputs["workloadIdentityPoolProviderId"]
        pools = f"projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools"
        return {"name": f"{pools}/{pool}/providers/{provider}"}
    if args.typ == "gcp:sql/databaseInstance:DatabaseInstance":
        return {"connectionName": f"{PROJECT}:{REGION}:{inputs['name']}"}
    if args.typ == "gcp:secretmanager/secretVersion:SecretVersion":
        return {"version": "1"}
    if args.typ == "random:index/randomId:RandomId":
        return {"hex": "a1b2c3"}
    if args.typ == "docker-build:index:Image":
        return {"ref": f"{inputs['tags'][0]}@{DIGEST}"}
    return {}


def gcp_calls(args: MockCallArgs) -> Mapping[str, Any]:
    if args.token == "gcp:organizations/getProject:getProject":
        return {"projectId": PROJECT, "number": PROJECT_NUMBER}
    if args.token == "gcp:organizations/getClientOpenIdUserInfo:getClientOpenIdUserInfo":
        return {"email": SANDBOX_DEPLOYER}
    if args.token == "gcp:organizations/getClientConfig:getClientConfig":
        return {"accessToken": "mock-access-token", "project": PROJECT, "region": REGION}
    return {}


def run_gcp(environment: str, **overrides: str | None) -> ProgramRun:
    return run_stack(config_for(environment, **overrides), STACKS[environment])


def run_stack(config: Mapping[str, str], stack: str) -> ProgramRun:
    """The whole program for `stack` under mocks, with GCP's computed outputs and data sources."""
    return run_program(config, stack, gcp_outputs, gcp_calls)


@pytest.fixture(scope="module", params=sorted(STACKS))
def stack_run(request: pytest.FixtureRequest) -> ProgramRun:
    """Each environment with a model pinned (so both services exist), run once per test module."""
    run = run_gcp(request.param, **with_model(request.param))
    print(f"\n{STACKS[request.param]}: program under mocks took {run.seconds * 1000:.0f} ms")
    return run
