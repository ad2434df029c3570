"""A service account per workload, and the one grant that lets CI deploy a service that runs as it."""

from dataclasses import dataclass

import pulumi
import pulumi_gcp.serviceaccount as serviceaccount

from infra.config import StackSettings
from infra.naming import short_name

SERVICE_ACCOUNT_USER = "roles/iam.serviceAccountUser"


@dataclass(frozen=True)
class RuntimeIdentity:
    account: serviceaccount.Account
    member: pulumi.Output[str]  # "serviceAccount:<email>", for IAM bindings
    deployable: serviceaccount.IAMMember  # the deployer's actAs on this account only


def runtime_identity(
    name: str,
    settings: StackSettings,
    purpose: str,
    deployer: pulumi.Input[str],
    parent: pulumi.Resource,
    depends_on: list[pulumi.Resource],
) -> RuntimeIdentity:
    """A dedicated account, plus actAs for the CI deployer on it alone.

    Deploying a Cloud Run service that runs as an account needs `iam.serviceAccounts.actAs` on that
    account. Granting it per account (not project-wide) keeps CI from acting as any other account in the
    project, such as the default compute account that often holds Editor.
    """
    account = serviceaccount.Account(
        f"{name}-account",
        # 6-30 characters; short_name keeps it unique per stack when the stack name is long.
        account_id=short_name(settings.stack, purpose, max_length=30),
        project=settings.gcp_project,
        display_name=f"{settings.stack} {purpose}",
        description=f"Runs the {purpose} service of the {settings.stack} MLOps stack",
        opts=pulumi.ResourceOptions(parent=parent, depends_on=depends_on),
    )
    deployable = serviceaccount.IAMMember(
        f"{name}-deployer-acts-as",
        service_account_id=account.name,
        role=SERVICE_ACCOUNT_USER,
        member=deployer,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return RuntimeIdentity(account, account.email.apply(lambda email: f"serviceAccount:{email}"), deployable)
