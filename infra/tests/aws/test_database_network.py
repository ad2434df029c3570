"""PostgreSQL: private, reachable from the tracking server only, protected in prod, free while paused."""

from infra.tests.aws.conftest import config_for, express_service, run_aws

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


def test_no_nat_gateway_tasks_use_public_subnets_and_s3_uses_the_free_gateway(environment: str) -> None:
    run = run_aws(environment)
    assert run.of_type("aws:ec2/natGateway:NatGateway") == []
    assert run.of_type("aws:ec2/eip:Eip") == []
    (endpoint,) = run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert endpoint.inputs["vpcEndpointType"] == "Gateway"
    assert endpoint.inputs["serviceName"] == "com.amazonaws.eu-west-1.s3"
    public = {f"{s.name}-id" for s in run.of_type("aws:ec2/subnet:Subnet") if "-public-" in s.name}
    assert set(express_service(run, "tracking").inputs["networkConfigurations"][0]["subnets"]) == public
