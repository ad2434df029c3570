"""PostgreSQL: private, reachable from the tracking server only, protected in prod, free while paused. The
tasks' network: out only to AWS through VPC endpoints."""

import pytest

from infra.tests.aws.conftest import REGION, config_for, express_service, run_aws, with_model
from testing.pulumi_program import ProgramRun

CLUSTER = "aws:rds/cluster:Cluster"
INSTANCE = "aws:rds/instance:Instance"


def test_serverless_by_default_and_pauses_at_zero_acu() -> None:
    run = run_aws("dev")
    cluster = run.one(CLUSTER).inputs
    assert cluster["engine"] == "aurora-postgresql"
    assert cluster["serverlessv2ScalingConfiguration"]["minCapacity"] == 0
    assert cluster["serverlessv2ScalingConfiguration"]["secondsUntilAutoPause"] == 300
    writer = run.one("aws:rds/clusterInstance:ClusterInstance").inputs
    assert writer["instanceClass"] == "db.serverless"
    assert writer["publiclyAccessible"] is False
    assert run.of_type(INSTANCE) == []


def test_serverless_tracking_server_holds_no_idle_connections() -> None:
    environments = express_service(run_aws("dev"), "tracking").inputs["primaryContainer"]["environments"]
    assert {"name": "MLFLOW_SQLALCHEMYSTORE_POOLCLASS", "value": "NullPool"} in environments


def test_an_instance_class_tier_gets_a_private_rds_instance_and_keeps_pooling() -> None:
    run = run_aws("dev", config_for("dev", databaseTier="db.t4g.micro"))
    instance = run.one(INSTANCE).inputs
    assert instance["instanceClass"] == "db.t4g.micro"
    assert instance["publiclyAccessible"] is False
    assert instance["storageEncrypted"] is True
    assert run.of_type(CLUSTER) == []
    environments = express_service(run, "tracking").inputs["primaryContainer"]["environments"]
    assert "MLFLOW_SQLALCHEMYSTORE_POOLCLASS" not in {e["name"] for e in environments}


def test_protection_backups_and_final_snapshot_follow_the_environment(environment: str) -> None:
    cluster = run_aws(environment).one(CLUSTER).inputs
    assert cluster["storageEncrypted"] is True
    assert cluster["deletionProtection"] is (environment == "prod")
    assert cluster["backupRetentionPeriod"] == {"dev": 7, "prod": 14, "sandbox": 1}[environment]
    if environment == "sandbox":
        assert cluster["skipFinalSnapshot"] is True
        assert "finalSnapshotIdentifier" not in cluster
    else:
        assert cluster["skipFinalSnapshot"] is False
        assert cluster["finalSnapshotIdentifier"].startswith(f"aws-{environment}")


def test_database_is_in_subnets_without_a_route_out(environment: str) -> None:
    run = run_aws(environment)
    subnet_group = run.one("aws:rds/subnetGroup:SubnetGroup").inputs
    database_subnets = {
        f"{s.name}-id" for s in run.of_type("aws:ec2/subnet:Subnet") if "-database-" in s.name
    }
    assert set(subnet_group["subnetIds"]) == database_subnets
    assert len(database_subnets) == 2
    for subnet in run.of_type("aws:ec2/subnet:Subnet"):
        if "-database-" in subnet.name:
            assert subnet.inputs["mapPublicIpOnLaunch"] is False
    isolated = run.one("aws:ec2/routeTable:RouteTable", "-isolated-routes")
    assert isolated.inputs.get("routes", []) == []
    for association in run.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation"):
        if association.inputs["subnetId"] in database_subnets:
            assert association.inputs["routeTableId"] == f"{isolated.name}-id"


def test_only_the_tracking_security_group_reaches_postgres(environment: str) -> None:
    run = run_aws(environment)
    database_sg = f"{run.one('aws:ec2/securityGroup:SecurityGroup', '-database-sg').name}-id"
    tracking_sg = f"{run.one('aws:ec2/securityGroup:SecurityGroup', '-tracking-sg').name}-id"
    assert run.one(CLUSTER).inputs["vpcSecurityGroupIds"] == [database_sg]
    ingress = run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    (rule,) = [r.inputs for r in ingress if r.inputs["securityGroupId"] == database_sg]
    assert rule["referencedSecurityGroupId"] == tracking_sg
    assert (rule["fromPort"], rule["toPort"], rule["ipProtocol"]) == (5432, 5432, "tcp")
    assert "cidrIpv4" not in rule
    assert "cidrIpv6" not in rule
    # Security groups carry no inline rules that could open anything else.
    for group in run.of_type("aws:ec2/securityGroup:SecurityGroup"):
        assert not group.inputs.get("ingress")
        assert not group.inputs.get("egress")
    tracking = express_service(run, "tracking").inputs["networkConfigurations"][0]
    assert tracking["securityGroups"] == [tracking_sg]


ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG = "aws:ec2/securityGroup:SecurityGroup"


def _public_subnets(run: ProgramRun) -> set[str]:
    return {f"{s.name}-id" for s in run.of_type("aws:ec2/subnet:Subnet") if "-public-" in s.name}


@pytest.mark.parametrize(("environment", "zones"), [("dev", 1), ("sandbox", 1), ("prod", 2)])
def test_tasks_reach_ecr_secrets_and_logs_through_interface_endpoints(environment: str, zones: int) -> None:
    """Express tasks get no public IP (the API has no assignPublicIp): without these endpoints they cannot
    pull their image, read their secrets or write logs, and never start."""
    run = run_aws(environment)
    assert run.of_type("aws:ec2/natGateway:NatGateway") == []
    assert run.of_type("aws:ec2/eip:Eip") == []
    interface = {
        e.inputs["serviceName"]: e.inputs
        for e in run.of_type(ENDPOINT)
        if e.inputs["vpcEndpointType"] == "Interface"
    }
    assert set(interface) == {
        f"com.amazonaws.{REGION}.{service}" for service in ("ecr.api", "ecr.dkr", "secretsmanager", "logs")
    }
    endpoint_group = f"{run.one(SG, '-endpoints-sg').name}-id"
    for endpoint in interface.values():
        assert endpoint["privateDnsEnabled"] is True  # the SDKs' usual host names resolve to the endpoint
        assert endpoint["securityGroupIds"] == [endpoint_group]
        assert len(endpoint["subnetIds"]) == zones
        assert set(endpoint["subnetIds"]) <= _public_subnets(run)
    (gateway,) = [e.inputs for e in run.of_type(ENDPOINT) if e.inputs["vpcEndpointType"] == "Gateway"]
    assert gateway["serviceName"] == f"com.amazonaws.{REGION}.s3"
    assert gateway["routeTableIds"] == [
        f"{run.one('aws:ec2/routeTable:RouteTable', '-public-routes').name}-id"
    ]


def test_one_zone_or_every_zone_is_a_config_choice() -> None:
    run = run_aws("dev", config_for("dev", awsInterfaceEndpoints="everyZone"))
    assert {len(e.inputs["subnetIds"]) for e in run.of_type(ENDPOINT) if "subnetIds" in e.inputs} == {2}


@pytest.mark.parametrize("purpose", ["tracking", "api"])
def test_tasks_may_open_https_only_to_the_endpoints_and_s3(purpose: str) -> None:
    run = run_aws("dev", with_model("dev"))
    group = f"{run.one(SG, f'-{purpose}-sg').name}-id"
    endpoint_group = f"{run.one(SG, '-endpoints-sg').name}-id"
    out = [r.inputs for r in run.of_type(EGRESS) if r.inputs["securityGroupId"] == group]
    https = [r for r in out if r["fromPort"] == 443]
    assert {r.get("referencedSecurityGroupId") or r.get("prefixListId") for r in https} == {
        endpoint_group,
        "pl-6da54004",  # the S3 gateway endpoint's prefix list, as AWS computes it
    }
    assert all(r["toPort"] == 443 and r["ipProtocol"] == "tcp" for r in https)
    assert not any("cidrIpv4" in r or "cidrIpv6" in r for r in out), "no rule opens the internet"
    assert {r["fromPort"] for r in out} == ({443, 5432} if purpose == "tracking" else {443})
    (into_endpoints,) = [
        r.inputs
        for r in run.of_type(INGRESS)
        if r.inputs["securityGroupId"] == endpoint_group and r.inputs["referencedSecurityGroupId"] == group
    ]
    assert (into_endpoints["fromPort"], into_endpoints["toPort"]) == (443, 443)
    network = express_service(run, purpose).inputs["networkConfigurations"]
    # One list for the load balancer and the tasks: public subnets, so the load balancer faces the internet;
    # at least two (terraform-provider-aws docs for aws_ecs_express_gateway_service).
    assert set(network[0]["subnets"]) == _public_subnets(run)
    assert len(network[0]["subnets"]) >= 2
    assert network[0]["securityGroups"] == [group]
