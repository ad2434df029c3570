"""Who and where the stack runs: account id, partition and region, looked up once."""

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class Account:
    """The deploying account. ARNs built here keep policies free of `*` account or region parts."""

    id: pulumi.Output[str]
    partition: pulumi.Output[str]
    region: str
    # The permissions boundaries every role this stack creates carries (infra/aws/fence.py): the CI deploy
    # identities may create and change roles only with them. Set once the boundaries exist (or, in a sandbox,
    # to the dev stack's sandbox boundaries); None only before that.
    workload_boundary_arn: pulumi.Output[str] | None = None  # task and execution roles
    infrastructure_boundary_arn: pulumi.Output[str] | None = None  # the ECS Express infrastructure role

    def arn(self, service: str, resource: pulumi.Input[str], *, regional: bool = True) -> pulumi.Output[str]:
        """arn:<partition>:<service>:<region>:<account>:<resource> (region empty for global services)."""
        region = self.region if regional else ""
        return pulumi.Output.concat("arn:", self.partition, f":{service}:{region}:", self.id, ":", resource)

    def managed_policy(self, name: str) -> pulumi.Output[str]:
        """The ARN of an AWS-managed policy, e.g. `service-role/AmazonECSTaskExecutionRolePolicy`."""
        return pulumi.Output.concat("arn:", self.partition, f":iam::aws:policy/{name}")


def lookup_account(region: str, parent: pulumi.Resource) -> Account:
    options = pulumi.InvokeOutputOptions(parent=parent)
    identity = aws.get_caller_identity_output(opts=options)
    partition = aws.get_partition_output(opts=options)
    return Account(id=identity.account_id, partition=partition.partition, region=region)
