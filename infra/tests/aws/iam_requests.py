"""The IAM requests AWS authorizes when our program's resources are created, and the roles the program makes
as principals, so that tests can evaluate our policies (testing/iam_policy.py) against what a real `up` sends.

Which resource ARNs and condition keys each action evaluates is the Service Authorization Reference's
(https://docs.aws.amazon.com/service-authorization/latest/reference/, per service page); which calls a
resource's creation makes is the provider's (terraform-provider-aws internal/service/<service>/<resource>.go).
EC2 calls are split per resource the way EC2 authorizes them: a new resource carries the request's tags
(`aws:RequestTag/…`, tag-on-create), an existing one its own (`aws:ResourceTag/…`). A resource type with no
mapping here raises `UnmappedResourceError`: a new resource must say how AWS authorizes creating it before the
identity tests can pass.

Names that Pulumi chooses (autonaming: the logical name, a dash and 7 random hex characters,
https://www.pulumi.com/docs/iac/concepts/resources/names/#autonaming) are written as such, lowercased where
the service lowercases them (RDS).
"""

import json
import uuid
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from pulumi.runtime import MockCallArgs, MockResourceArgs

from infra.tests.aws.conftest import ACCOUNT_ID, REGION, calls, outputs_for
from testing.iam_policy import Principal, Request, ResourcePolicy
from testing.pulumi_program import ProgramRun, Registered, run_program

ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/policy:Policy"
# Key ids are random UUIDs; the mocks derive one per alias.
KEY_IDS = {
    "alias/mlops-stack-dev": "1234abcd-12ab-34cd-56ef-1234567890ab",
    "alias/mlops-stack-staging": "2345bcde-23bc-45de-67f0-234567890abc",
    "alias/mlops-stack-prod": "3456cdef-34cd-56ef-7801-34567890abcd",
    "alias/mlops-stack-sandbox": "4567def0-45de-67f0-8912-4567890abcde",
}
AUTONAME_SUFFIX = "-a1b2c3d"


class UnmappedResourceError(AssertionError):
    """A resource type whose creation these tests cannot yet express as IAM requests."""


def key_arn(alias: str) -> str:
    return f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{KEY_IDS[alias]}"


def outputs_with_iam(args: MockResourceArgs) -> dict[str, Any]:
    """conftest's outputs, with the ARNs that policies name in the shapes AWS gives them: a customer managed
    policy `policy<path><name>`, a repository `repository/<name>`, a key `key/<uuid>`."""
    outputs = outputs_for(args)
    if args.typ == POLICY:
        outputs["arn"] = (
            f"arn:aws:iam::{ACCOUNT_ID}:policy{args.inputs.get('path', '/')}{args.inputs['name']}"
        )
    elif args.typ == "aws:ecr/repository:Repository":
        outputs["arn"] = arn("ecr", f"repository/{args.inputs['name']}")
    elif args.typ == "aws:kms/key:Key":
        outputs["arn"] = arn("kms", f"key/{uuid.uuid5(uuid.NAMESPACE_URL, args.name)}")
    return outputs


def calls_with_aliases(args: MockCallArgs) -> dict[str, Any]:
    """conftest's invokes, and kms.getAlias answering as AWS does for the aliases bootstrap makes."""
    if args.token == "aws:kms/getAlias:getAlias":
        name = args.args["name"]
        return {
            "arn": f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:{name}",
            "id": f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:{name}",
            "name": name,
            "region": REGION,
            "targetKeyArn": key_arn(name),
            "targetKeyId": KEY_IDS[name],
        }
    return dict(calls(args))


@cache
def _run(stack: str, config_items: tuple[tuple[str, str], ...]) -> ProgramRun:
    return run_program(dict(config_items), stack, outputs_for=outputs_with_iam, calls=calls_with_aliases)


def run_stack(stack: str, config: Mapping[str, str]) -> ProgramRun:
    return _run(stack, tuple(sorted(config.items())))


def default_tags(run: ProgramRun) -> dict[str, str]:
    (provider,) = [r for r in run.resources if r.type == "pulumi:providers:aws"]
    return dict(json.loads(provider.inputs["defaultTags"])["tags"])


def tags_of(run: ProgramRun, resource: Registered) -> dict[str, str]:
    """The tags AWS receives: the provider's default_tags, overridden by the resource's own."""
    # docker-build's `tags` are image references, not resource tags.
    own = resource.inputs.get("tags") if resource.type.startswith("aws:") else None
    return {**default_tags(run), **(own or {})}


def request_tags(tags: Mapping[str, str]) -> dict[str, Any]:
    return {**{f"aws:RequestTag/{k}": v for k, v in tags.items()}, "aws:TagKeys": list(tags)}


def resource_tags(tags: Mapping[str, str]) -> dict[str, Any]:
    return {f"aws:ResourceTag/{k}": v for k, v in tags.items()}


def arn(service: str, resource: str, *, regional: bool = True) -> str:
    return f"arn:aws:{service}:{REGION if regional else ''}:{ACCOUNT_ID}:{resource}"


def role_arn(role: Registered) -> str:
    return f"arn:aws:iam::{ACCOUNT_ID}:role{role.inputs['path']}{role.inputs['namePrefix']}0001"


def secret_arn(secret: Registered) -> str:
    """name_prefix, the provider's 26 unique characters, and the 6 that Secrets Manager appends."""
    return arn("secretsmanager", f"secret:{secret.inputs['namePrefix']}{'0' * 26}-AbCdEf")


def role_by_id(run: ProgramRun, role_id: str) -> Registered:
    """The role a child resource refers to by mock id (`<logical name>-id`), name or ARN."""
    found = [
        r
        for r in run.of_type(ROLE)
        if role_id in (f"{r.name}-id", f"{r.inputs['namePrefix']}0001", role_arn(r))
    ]
    assert len(found) == 1, f"no single role for {role_id!r}"
    return found[0]


def policies_by_arn(*runs: ProgramRun) -> dict[str, dict[str, Any]]:
    """The customer managed policies the runs create, and AWS's managed policies as moto ships them."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    found = {
        f"arn:aws:iam::aws:policy{entry['Path']}{name}": entry["Document"]
        for name, entry in json.loads(aws_managed_policies_data).items()
    }
    for run in runs:
        for policy in run.of_type(POLICY):
            arn_ = f"arn:aws:iam::{ACCOUNT_ID}:policy{policy.inputs['path']}{policy.inputs['name']}"
            found[arn_] = json.loads(policy.inputs["policy"])
    return found


def principal(run: ProgramRun, role: Registered, policies: Mapping[str, dict[str, Any]]) -> Principal:
    """A session of `role`: its managed and inline policies, its boundary and its tags."""
    name = f"{role.inputs['namePrefix']}0001"
    inline = [
        json.loads(p.inputs["policy"])
        for p in run.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.inputs["role"] == f"{role.name}-id"
    ]
    managed = [
        policies[a.inputs["policyArn"]]
        for a in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == name
    ]
    boundary_arn = role.inputs.get("permissionsBoundary")
    return Principal(
        [*managed, *inline],
        boundary=policies[boundary_arn] if boundary_arn else None,
        tags=tags_of(run, role),
    )


def _autoname(resource: Registered, key: str, *, lower: bool = False) -> str:
    value = resource.inputs.get(key) or f"{resource.name}{AUTONAME_SUFFIX}"
    return str(value).lower() if lower else str(value)


def _bucket(run: ProgramRun) -> str:
    """The artifact bucket's name, from the stack's own output (whatever naming the bucket uses)."""
    return str(run.outputs["artifactRoot"]).removeprefix("s3://").split("/", 1)[0]


def _ec2(action: str, new: str | None, existing: Sequence[str], tags: Mapping[str, str]) -> list[Request]:
    """One EC2 call: the new resource type (request tags), and existing resources (their own tags)."""
    parts = [Request(f"ec2:{action}", arn("ec2", f"{new}/*"), request_tags(tags))] if new else []
    return [
        *parts,
        *(
            Request(f"ec2:{action}", arn("ec2", f"{kind}/{kind}-0abc"), resource_tags(tags))
            for kind in existing
        ),
    ]


_S3_CONFIGURATION = {
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "s3:PutBucketOwnershipControls",
    "aws:s3/bucketVersioning:BucketVersioning": "s3:PutBucketVersioning",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "s3:PutEncryptionConfiguration"
    ),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
    "aws:s3/bucketPolicy:BucketPolicy": "s3:PutBucketPolicy",
}
_SKIPPED = ("pulumi:providers:", "random:", "mlops-stack:")
Calls = list[list[Request]]


def _network(run: ProgramRun, resource: Registered, tags: dict[str, str]) -> Calls:
    kind = resource.type
    if kind == "aws:ec2/vpc:Vpc":
        return [_ec2("CreateVpc", "vpc", [], tags), _ec2("ModifyVpcAttribute", None, ["vpc"], tags)]
    if kind == "aws:ec2/subnet:Subnet":
        return [_ec2("CreateSubnet", "subnet", ["vpc"], tags)]
    if kind == "aws:ec2/internetGateway:InternetGateway":
        return [
            _ec2("CreateInternetGateway", "internet-gateway", [], tags),
            _ec2("AttachInternetGateway", None, ["internet-gateway", "vpc"], tags),
        ]
    if kind == "aws:ec2/routeTable:RouteTable":
        return [
            _ec2("CreateRouteTable", "route-table", ["vpc"], tags),
            _ec2("CreateRoute", None, ["route-table"], tags),
        ]
    if kind == "aws:ec2/routeTableAssociation:RouteTableAssociation":
        return [_ec2("AssociateRouteTable", None, ["route-table", "subnet"], tags)]
    if kind == "aws:ec2/securityGroup:SecurityGroup":
        # The provider removes the default allow-all egress rule of a new group.
        return [
            _ec2("CreateSecurityGroup", "security-group", ["vpc"], tags),
            _ec2("RevokeSecurityGroupEgress", None, ["security-group"], tags),
        ]
    if kind == "aws:ec2/vpcEndpoint:VpcEndpoint":
        endpoint_type = resource.inputs.get("vpcEndpointType")
        existing = ["vpc", *(["route-table"] if endpoint_type == "Gateway" else ["subnet", "security-group"])]
        return [_ec2("CreateVpcEndpoint", "vpc-endpoint", existing, tags)]
    direction = "Egress" if "Egress" in kind else "Ingress"
    return [_ec2(f"AuthorizeSecurityGroup{direction}", "security-group-rule", ["security-group"], tags)]


def _storage(run: ProgramRun, resource: Registered, tags: dict[str, str]) -> Calls:
    bucket = f"arn:aws:s3:::{_bucket(run)}"
    if resource.type == "aws:kms/key:Key":
        key = arn("kms", "key/0f9e8d7c-6b5a-4c3d-2e1f-0a9b8c7d6e5f")
        return [
            [Request("kms:CreateKey", "*", request_tags(tags))],
            [Request("kms:EnableKeyRotation", key, resource_tags(tags))],
        ]
    if resource.type == "aws:s3/bucket:Bucket":
        return [[Request("s3:CreateBucket", bucket, request_tags(tags))]]
    return [[Request(_S3_CONFIGURATION[resource.type], bucket)]]


def _images_and_logs(run: ProgramRun, resource: Registered, tags: dict[str, str]) -> Calls:
    kind, inputs = resource.type, resource.inputs
    if kind == "aws:ecr/repository:Repository":
        return [
            [Request("ecr:CreateRepository", arn("ecr", f"repository/{inputs['name']}"), request_tags(tags))]
        ]
    if kind == "aws:ecr/lifecyclePolicy:LifecyclePolicy":
        target = arn("ecr", f"repository/{inputs['repository']}")
        return [[Request("ecr:PutLifecyclePolicy", target, resource_tags(tags))]]
    if kind == "docker-build:index:Image":
        repository = inputs["tags"][0].split("/", 1)[1].rsplit(":", 1)[0]
        # Pushed into the stack's repository, which carries the stack's tags.
        target = arn("ecr", f"repository/{repository}")
        pushes = ("ecr:InitiateLayerUpload", "ecr:PutImage")
        return [[Request(action, target, resource_tags(tags))] for action in pushes]
    if kind == "aws:cloudwatch/logGroup:LogGroup":
        group = arn("logs", f"log-group:{inputs['name']}")
        return [
            [Request("logs:CreateLogGroup", group, request_tags(tags))],
            [Request("logs:PutRetentionPolicy", group, resource_tags(tags))],
        ]
    if kind == "aws:secretsmanager/secret:Secret":
        return [[Request("secretsmanager:CreateSecret", secret_arn(resource), request_tags(tags))]]
    (secret,) = [
        r for r in run.of_type("aws:secretsmanager/secret:Secret") if f"{r.name}-id" == inputs["secretId"]
    ]
    return [[Request("secretsmanager:PutSecretValue", secret_arn(secret), resource_tags(tags))]]


def _monitoring(run: ProgramRun, resource: Registered, tags: dict[str, str]) -> Calls:
    """infra/aws/monitoring.py: alarms, the drift metric filter, the crash-event rule, the dashboard and the
    SNS topic for email (each create authorized as the service's API reference names it)."""
    kind, inputs, new = resource.type, resource.inputs, request_tags(tags)
    if kind == "aws:cloudwatch/metricAlarm:MetricAlarm":
        return [[Request("cloudwatch:PutMetricAlarm", arn("cloudwatch", f"alarm:{inputs['name']}"), new)]]
    if kind == "aws:cloudwatch/logMetricFilter:LogMetricFilter":
        group = arn("logs", f"log-group:{inputs['logGroupName']}")
        return [[Request("logs:PutMetricFilter", group, resource_tags(tags))]]
    if kind == "aws:cloudwatch/eventRule:EventRule":
        rule = arn("events", f"rule/{_autoname(resource, 'name')}")
        return [[Request("events:PutRule", rule, new)]]
    if kind == "aws:sns/topic:Topic":
        return [[Request("sns:CreateTopic", arn("sns", _autoname(resource, "name")), new)]]
    if kind == "aws:cloudwatch/dashboard:Dashboard":
        # Global to the account (no region in its ARN); no tags: the provider's Dashboard takes none.
        dashboard = arn("cloudwatch", f"dashboard/{inputs['dashboardName']}", regional=False)
        return [[Request("cloudwatch:PutDashboard", dashboard)]]
    return [[Request("sns:Subscribe", str(inputs["topic"]))]]


def _database(run: ProgramRun, resource: Registered, tags: dict[str, str]) -> Calls:
    kind, inputs, new = resource.type, resource.inputs, request_tags(tags)
    if kind == "aws:rds/subnetGroup:SubnetGroup":
        name = _autoname(resource, "name", lower=True)
        return [[Request("rds:CreateDBSubnetGroup", arn("rds", f"subgrp:{name}"), new)]]
    subnets = arn("rds", f"subgrp:{inputs.get('dbSubnetGroupName')}")
    if kind == "aws:rds/cluster:Cluster":
        cluster = arn("rds", f"cluster:{_autoname(resource, 'clusterIdentifier', lower=True)}")
        defaults = [
            arn("rds", "cluster-pg:default.aurora-postgresql16"),
            arn("rds", "og:default:aurora-postgresql-16"),
        ]
        return [
            [
                Request("rds:CreateDBCluster", cluster, new),
                *(Request("rds:CreateDBCluster", target) for target in [*defaults, subnets]),
            ]
        ]
    instance = _autoname(resource, "identifier", lower=True)
    if kind == "aws:rds/clusterInstance:ClusterInstance":
        cluster = arn("rds", f"cluster:{inputs['clusterIdentifier']}")
        return [
            [
                Request("rds:CreateDBInstance", arn("rds", f"db:{instance}"), new),
                Request("rds:CreateDBInstance", cluster),
            ]
        ]
    defaults = [arn("rds", "pg:default.postgres16"), arn("rds", "og:default:postgres-16"), subnets]
    return [
        [
            Request("rds:CreateDBInstance", arn("rds", f"db:{instance}"), new),
            *(Request("rds:CreateDBInstance", target) for target in defaults),
        ]
    ]


def _containers(run: ProgramRun, resource: Registered, tags: dict[str, str]) -> Calls:
    inputs = resource.inputs
    if resource.type == "aws:ecs/cluster:Cluster":
        return [[Request("ecs:CreateCluster", arn("ecs", f"cluster/{inputs['name']}"), request_tags(tags))]]
    service = arn("ecs", f"service/{inputs['cluster']}/{inputs['serviceName']}")
    passes = [
        (inputs["executionRoleArn"], "ecs-tasks.amazonaws.com"),
        (inputs["taskRoleArn"], "ecs-tasks.amazonaws.com"),
        (inputs["infrastructureRoleArn"], "ecs.amazonaws.com"),
    ]
    return [
        [Request("ecs:CreateExpressGatewayService", service, request_tags(tags))],
        *([Request("iam:PassRole", role, {"iam:PassedToService": to})] for role, to in passes),
    ]


def _identities(run: ProgramRun, resource: Registered, tags: dict[str, str]) -> Calls:
    kind, inputs, new = resource.type, resource.inputs, request_tags(tags)
    if kind == ROLE:
        bounded = (
            {"iam:PermissionsBoundary": inputs["permissionsBoundary"]}
            if inputs.get("permissionsBoundary")
            else {}
        )
        target = role_arn(resource)
        return [
            [Request("iam:CreateRole", target, {**new, **bounded})],
            [Request("iam:TagRole", target, new)],
        ]
    if kind == POLICY:
        policy = f"arn:aws:iam::{ACCOUNT_ID}:policy{inputs['path']}{inputs['name']}"
        return [[Request("iam:CreatePolicy", policy, new)]]
    if kind == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
        provider = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com"
        return [[Request("iam:CreateOpenIDConnectProvider", provider, new)]]
    role = role_by_id(run, inputs["role"])
    context = (
        {"iam:PermissionsBoundary": role.inputs["permissionsBoundary"]}
        if role.inputs.get("permissionsBoundary")
        else {}
    )
    if kind == "aws:iam/rolePolicy:RolePolicy":
        return [[Request("iam:PutRolePolicy", role_arn(role), context)]]
    return [
        [Request("iam:AttachRolePolicy", role_arn(role), {**context, "iam:PolicyARN": inputs["policyArn"]})]
    ]


_MAPPINGS = {
    **dict.fromkeys(
        (
            "aws:ec2/vpc:Vpc",
            "aws:ec2/subnet:Subnet",
            "aws:ec2/internetGateway:InternetGateway",
            "aws:ec2/routeTable:RouteTable",
            "aws:ec2/routeTableAssociation:RouteTableAssociation",
            "aws:ec2/securityGroup:SecurityGroup",
            "aws:ec2/vpcEndpoint:VpcEndpoint",
            "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        ),
        _network,
    ),
    **dict.fromkeys(("aws:kms/key:Key", "aws:s3/bucket:Bucket", *_S3_CONFIGURATION), _storage),
    **dict.fromkeys(
        (
            "aws:ecr/repository:Repository",
            "aws:ecr/lifecyclePolicy:LifecyclePolicy",
            "docker-build:index:Image",
            "aws:cloudwatch/logGroup:LogGroup",
            "aws:secretsmanager/secret:Secret",
            "aws:secretsmanager/secretVersion:SecretVersion",
        ),
        _images_and_logs,
    ),
    **dict.fromkeys(
        (
            "aws:rds/subnetGroup:SubnetGroup",
            "aws:rds/cluster:Cluster",
            "aws:rds/clusterInstance:ClusterInstance",
            "aws:rds/instance:Instance",
        ),
        _database,
    ),
    **dict.fromkeys(
        ("aws:ecs/cluster:Cluster", "aws:ecs/expressGatewayService:ExpressGatewayService"), _containers
    ),
    **dict.fromkeys(
        (
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            "aws:cloudwatch/logMetricFilter:LogMetricFilter",
            "aws:cloudwatch/eventRule:EventRule",
            "aws:cloudwatch/dashboard:Dashboard",
            "aws:sns/topic:Topic",
            "aws:sns/topicSubscription:TopicSubscription",
        ),
        _monitoring,
    ),
    **dict.fromkeys(
        (
            ROLE,
            POLICY,
            "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
            "aws:iam/rolePolicy:RolePolicy",
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        ),
        _identities,
    ),
}


def creation_requests(run: ProgramRun, resource: Registered) -> Calls:
    """The API calls (each a list of requests AWS authorizes together) that creating `resource` makes."""
    if resource.type.startswith(_SKIPPED) or not resource.custom:
        return []
    mapping = _MAPPINGS.get(resource.type)
    if mapping is None:
        raise UnmappedResourceError(f"{resource.type} ({resource.name}): map how AWS authorizes creating it")
    return mapping(run, resource, tags_of(run, resource))


def bucket_policies(run: ProgramRun) -> list[ResourcePolicy]:
    """The bucket policies the run writes, as AWS evaluates them on requests to those buckets."""
    return [
        ResourcePolicy(json.loads(p.inputs["policy"]))
        for p in run.of_type("aws:s3/bucketPolicy:BucketPolicy")
    ]
