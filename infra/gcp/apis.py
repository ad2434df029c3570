"""The Google APIs the platform uses, enabled by the program so a fresh project needs no manual clicks.

Enabling an API needs `serviceusage.googleapis.com`, which every new project has on. APIs are never
disabled on destroy: other stacks (or people) in the same project may use them too.
"""

from collections.abc import Iterable
from enum import StrEnum

import pulumi
import pulumi_gcp.projects as projects


class Api(StrEnum):
    RUN = "run.googleapis.com"
    SQL_ADMIN = "sqladmin.googleapis.com"
    SECRET_MANAGER = "secretmanager.googleapis.com"  # noqa: S105 (an API name)
    ARTIFACT_REGISTRY = "artifactregistry.googleapis.com"
    STORAGE = "storage.googleapis.com"
    IAM = "iam.googleapis.com"
    # Workload Identity Federation: STS exchanges GitHub's token, IAM Credentials impersonates the account.
    STS = "sts.googleapis.com"
    IAM_CREDENTIALS = "iamcredentials.googleapis.com"
    # Project-level IAM bindings (projects.IAMMember) go through Resource Manager.
    RESOURCE_MANAGER = "cloudresourcemanager.googleapis.com"
    # Alert policies, dashboards and log-based metrics (infra/gcp/monitoring.py).
    MONITORING = "monitoring.googleapis.com"
    LOGGING = "logging.googleapis.com"


class RequiredApis(pulumi.ComponentResource):
    """One `projects.Service` per API; resources that need an API depend on it via `needed_by`."""

    def __init__(self, name: str, project: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-stack:gcp:RequiredApis", name, None, opts)
        self.services = {
            api: projects.Service(
                f"{name}-{api.value.split('.')[0]}",
                project=project,
                service=api.value,
                disable_on_destroy=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for api in Api
        }
        self.register_outputs({})

    def needed_by(self, apis: Iterable[Api]) -> list[pulumi.Resource]:
        """What to put in `depends_on` of a resource that calls these APIs."""
        return [self.services[api] for api in apis]
