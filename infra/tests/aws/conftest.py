"""Hooks for running the AWS program under Pulumi mocks: config per environment, the outputs AWS would
compute (ARNs, bucket names, endpoints, the Express service's URL) and the data-source invokes (caller
identity, partition, availability zones, ECR's authorization token).

The computed values have the shapes AWS gives them, not shapes derived from our inputs:
- an Express endpoint is `<two letters>-<UUID4 as 32 hex digits>.ecs.<region>.on.aws`, and the letters are
  not the service name's (public deployments: `ca-4f7c4875...` for a service `web`); the mock picks letters
  that differ from the name's first two, so code that assumed the name in the host fails here too;
- a bucket made from `bucket_prefix` is the prefix and 26 more characters (terraform-provider-aws
  `id.PrefixedUniqueId`: a UTC timestamp and a counter);
- the S3 gateway endpoint's prefix list id is `pl-` and 8 hex digits.
"""

import functools
import json
import random
import re
import secrets
import string
import uuid
import zlib
from typing import Any

import pytest
from pulumi.runtime import MockCallArgs, MockResourceArgs

from testing.pulumi_program import ProgramRun, Registered, run_program, stack_config

ACCOUNT_ID = "123456789012"
REGION = "eu-west-1"
REPOSITORY = "acme-ml/mlops-stack"
STACKS = {"dev": "aws-dev", "prod": "aws-prod", "sandbox": "aws-sandbox-alice"}
MODEL_SOURCE = "s3://aws-dev-artifacts-bucket/mlflow/1/models/m-0123/artifacts"
REGISTRY_HOST = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com"
ZONES = [f"{REGION}a", f"{REGION}b", f"{REGION}c"]
# Generated per test session: no credential-looking constant in the tests.
ECR_TOKEN = secrets.token_urlsafe(24)


def config_for(environment: str, **overrides: str) -> dict[str, str]:
    """A valid AWS stack config for `environment`; `overrides` are project keys (camelCase)."""
    return stack_config("aws", environment, {"aws:region": REGION}, REPOSITORY, **overrides)


def with_model(environment: str, **overrides: str) -> dict[str, str]:
    return config_for(environment, modelVersion="1", modelSource=MODEL_SOURCE, **overrides)


# The 26 characters AWS appends to a bucket_prefix (a UTC timestamp and a counter).
BUCKET_SUFFIX = "20261201180000000000000001"
# What AWS documents or shows for an Express endpoint host (see infra/aws/express.py).
EXPRESS_ENDPOINT = re.compile(
    r"[a-z]{2}-[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}\.ecs\.[a-z0-9-]+\.on\.aws"
)


def express_endpoint(service_name: str) -> str:
    """A host the way Express Mode assigns one: random letters (never the name's) and a random UUID4."""
    # Seeded by the name: the same service gets the same host in every run (not a secret, hence S311).
    rng = random.Random(service_name)  # noqa: S311
    letters = "".join(rng.choice(string.ascii_lowercase) for _ in range(2))
    while letters == service_name[:2].lower():
        letters = "".join(rng.choice(string.ascii_lowercase) for _ in range(2))
    return f"{letters}-{uuid.UUID(int=rng.getrandbits(128), version=4).hex}.ecs.{REGION}.on.aws"


def arn_of(args: MockResourceArgs) -> str:
    service = args.typ.split(":")[1].split("/")[0]
    return f"arn:aws:{service}:{REGION}:{ACCOUNT_ID}:{args.name}"


def outputs_for(args: MockResourceArgs) -> dict[str, Any]:
    """What AWS computes: ARNs for everything, and the few names, URLs and endpoints the program reads."""
    inputs = args.inputs
    if args.typ == "random:index/randomString:RandomString":
        # As long as asked for (the harness's stand-in would make names longer than they will be).
        return {"result": "k3x9q2vz7wm4"[: int(inputs["length"])]}
    if not args.typ.startswith(("aws:", "docker-build:")):
        return {}
    outputs: dict[str, Any] = {"arn": arn_of(args)}
    if args.typ == "aws:s3/bucket:Bucket":
        outputs["bucket"] = f"{inputs['bucketPrefix']}{BUCKET_SUFFIX}"
        outputs["arn"] = f"arn:aws:s3:::{outputs['bucket']}"
    elif args.typ == "aws:ecr/repository:Repository":
        outputs["repositoryUrl"] = f"{REGISTRY_HOST}/{inputs['name']}"
    elif args.typ == "aws:iam/role:Role":
        outputs["name"] = f"{inputs['namePrefix']}0001"
        outputs["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:role{inputs['path']}{outputs['name']}"
    elif args.typ == "aws:iam/policy:Policy":
        outputs["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:policy{inputs['path']}{inputs['name']}"
    elif args.typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
        outputs["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com"
    elif args.typ == "aws:rds/cluster:Cluster":
        outputs["endpoint"] = f"{inputs['clusterIdentifier']}.cluster-c9akciq32.{REGION}.rds.amazonaws.com"
    elif args.typ == "aws:rds/instance:Instance":
        outputs["address"] = f"{inputs['identifier']}.c9akciq32.{REGION}.rds.amazonaws.com"
    elif args.typ == "aws:rds/subnetGroup:SubnetGroup":
        outputs["name"] = args.name
    elif args.typ == "aws:ecs/expressGatewayService:ExpressGatewayService":
        outputs["ingressPaths"] = [
            {"accessType": "PUBLIC", "endpoint": express_endpoint(inputs["serviceName"])}
        ]
    elif args.typ == "aws:ec2/vpcEndpoint:VpcEndpoint" and inputs.get("vpcEndpointType") == "Gateway":
        outputs["prefixListId"] = "pl-6da54004"
    elif args.typ == "aws:secretsmanager/secret:Secret":
        outputs["arn"] = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:{inputs['namePrefix']}AbCdEf"
    elif args.typ == "aws:cloudwatch/logGroup:LogGroup":
        outputs["arn"] = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{inputs['name']}"
    elif args.typ == "aws:cloudwatch/eventRule:EventRule":
        # Pulumi's autoname: the logical name, '-' and 7 random hex characters (iam_requests.AUTONAME_SUFFIX).
        outputs["name"] = inputs.get("name") or f"{args.name}-a1b2c3d"
    elif args.typ == "docker-build:index:Image":
        outputs["ref"] = f"{inputs['tags'][0]}@sha256:{'0' * 64}"
    return outputs


def calls(args: MockCallArgs) -> dict[str, Any]:
    if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
        return {
            "accountId": ACCOUNT_ID,
            "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/ci",
            "userId": "AIDA",
            "id": "x",
        }
    if args.token == "aws:index/getPartition:getPartition":
        return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
    if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
        return {"names": ZONES, "zoneIds": ["euw1-az1", "euw1-az2", "euw1-az3"], "id": REGION}
    if args.token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
        return {
            "proxyEndpoint": f"https://{REGISTRY_HOST}",
            "userName": "AWS",
            "password": ECR_TOKEN,
            "authorizationToken": ECR_TOKEN,
            "expiresAt": "2026-12-01T00:00:00Z",
            "id": REGION,
        }
    if args.token == "aws:ecs/getService:getService":
        # Express Mode's target group and, for its canary deployments, the alternate one.
        groups = target_group_arns(args.args["serviceName"])
        return {
            "serviceName": args.args["serviceName"],
            "loadBalancers": [
                {
                    "targetGroupArn": groups[0],
                    "advancedConfigurations": [{"alternateTargetGroupArn": groups[1]}],
                }
            ],
        }
    if args.token == "aws:lb/getTargetGroup:getTargetGroup":
        return {"arn": args.args["arn"], "loadBalancerArns": [LOAD_BALANCER_ARN]}
    return {}


ELB_ARN_PREFIX = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT_ID}"
LOAD_BALANCER_ARN = f"{ELB_ARN_PREFIX}:loadbalancer/app/ecs-express-alb-1a2b/50dc6c495c0c9188"


def target_group_arns(service_name: str) -> tuple[str, str]:
    """The two target groups Express Mode makes for a service (names it chooses, as AWS would)."""
    prefix = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT_ID}:targetgroup"
    digest = zlib.crc32(service_name.encode()) % 10**6
    return (
        f"{prefix}/ecs-gateway-tg-{digest}a/73e2d6bc24d8a067",
        f"{prefix}/ecs-gateway-tg-{digest}b/8c4ab2e5c1d7f903",
    )


@functools.cache
def _run(stack: str, config_items: tuple[tuple[str, str], ...]) -> ProgramRun:
    return run_program(dict(config_items), stack, outputs_for=outputs_for, calls=calls)


def run_aws(environment: str, config: dict[str, str] | None = None) -> ProgramRun:
    """The program's run for this environment (cached: the program is deterministic under mocks)."""
    config = config if config is not None else config_for(environment)
    return _run(STACKS[environment], tuple(sorted(config.items())))


@pytest.fixture(params=["dev", "prod", "sandbox"])
def environment(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def policy(resource: Registered, key: str = "policy") -> dict[str, Any]:
    """A JSON policy input, parsed."""
    return dict(json.loads(resource.inputs[key]))


def statements(resource: Registered, key: str = "policy") -> dict[str, dict[str, Any]]:
    """A policy's statements by Sid."""
    return {s["Sid"]: s for s in policy(resource, key)["Statement"]}


def role_policy(run: ProgramRun, role: Registered) -> dict[str, dict[str, Any]]:
    """The statements of the inline policy attached to `role` (by the mock id `<name>-id`)."""
    found = [p for p in run.of_type("aws:iam/rolePolicy:RolePolicy") if p.inputs["role"] == f"{role.name}-id"]
    assert len(found) == 1, f"expected one inline policy on {role.name}, found {len(found)}"
    return statements(found[0])


def bucket_name(run: ProgramRun) -> str:
    """The artifact bucket's name as the mocks computed it."""
    return f"{run.one('aws:s3/bucket:Bucket').inputs['bucketPrefix']}{BUCKET_SUFFIX}"


def express_service(run: ProgramRun, purpose: str) -> Registered:
    return run.one("aws:ecs/expressGatewayService:ExpressGatewayService", f"-{purpose}-service-service")
