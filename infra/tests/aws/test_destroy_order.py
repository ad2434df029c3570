"""Each Express service depends on everything it needs until its tasks have drained, so `pulumi destroy`
(every sandbox teardown) removes those only after the service.

pulumi-aws's ecs.ExpressGatewayService docs: "make sure to set `depends_on` to the related `iam.RolePolicy` or
`iam.RolePolicyAttachment` resources. Otherwise, the policy may be destroyed too soon and the ECS service will
then get stuck in the `DRAINING` state." The same holds for the secret values a task starts with and the
network it runs in (routes, endpoints, egress rules). Pulumi destroys a resource before the resources in its
dependency list, which is what these tests read (recorded from the registration, as the engine gets it).
"""

import pytest

from infra.tests.aws.conftest import express_service, run_aws, with_model
from testing.pulumi_program import ProgramRun, Registered


def _by_type(run: ProgramRun, type_token: str) -> list[Registered]:
    return run.of_type(type_token)


def _role_of(run: ProgramRun, arn: str) -> Registered:
    (role,) = [r for r in run.of_type("aws:iam/role:Role") if arn.endswith(f"/{r.inputs['namePrefix']}0001")]
    return role


def _needed_until_drained(run: ProgramRun, service: Registered) -> dict[str, Registered]:
    """What the service must outlive, by URN, found from its inputs (not from the code that builds it)."""
    roles = [_role_of(run, service.inputs[key]) for key in ("executionRoleArn", "taskRoleArn")]
    infrastructure = _role_of(run, service.inputs["infrastructureRoleArn"])
    role_ids = {f"{role.name}-id" for role in roles}
    secret_ids = {
        f"{secret.name}-id"
        for secret in run.of_type("aws:secretsmanager/secret:Secret")
        for reference in service.inputs["primaryContainer"].get("secrets", [])
        if reference["valueFrom"] == secret.outputs["arn"]
    }
    subnets = set(service.inputs["networkConfigurations"][0]["subnets"])
    groups = set(service.inputs["networkConfigurations"][0]["securityGroups"])
    needed = [
        *[p for p in _by_type(run, "aws:iam/rolePolicy:RolePolicy") if p.inputs["role"] in role_ids],
        *[
            a
            for a in _by_type(run, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
            if a.inputs["role"] == infrastructure.outputs["name"]
        ],
        *[
            v
            for v in _by_type(run, "aws:secretsmanager/secretVersion:SecretVersion")
            if v.inputs["secretId"] in secret_ids
        ],
        *[
            a
            for a in _by_type(run, "aws:ec2/routeTableAssociation:RouteTableAssociation")
            if a.inputs["subnetId"] in subnets
        ],
        *_by_type(run, "aws:ec2/vpcEndpoint:VpcEndpoint"),
        *[
            r
            for r in _by_type(run, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
            if r.inputs["securityGroupId"] in groups
        ],
    ]
    return {resource.urn: resource for resource in needed}


@pytest.mark.parametrize("purpose", ["tracking", "api"])
def test_the_service_outlives_its_policies_secret_values_and_network(purpose: str) -> None:
    run = run_aws("sandbox", with_model("sandbox"))
    service = express_service(run, purpose)
    needed = _needed_until_drained(run, service)
    kinds = {resource.type.rsplit(":", 1)[1] for resource in needed.values()}
    # The test finds something of each kind: an empty set would pass vacuously.
    assert kinds == {
        "RolePolicy",
        "RolePolicyAttachment",
        "SecretVersion",
        "RouteTableAssociation",
        "VpcEndpoint",
        "SecurityGroupEgressRule",
    }
    missing = sorted(resource.name for urn, resource in needed.items() if urn not in service.dependencies)
    assert not missing, f"{service.name} does not depend on {missing}"
