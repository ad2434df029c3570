"""The Artifact Registry Docker repository the two images are pushed to, and a short-lived login for it."""

from dataclasses import dataclass

import pulumi
import pulumi_gcp.artifactregistry as artifactregistry
import pulumi_gcp.organizations as organizations

from infra.config import StackSettings
from infra.images import RegistryLogin
from infra.naming import short_name


@dataclass(frozen=True, kw_only=True)
class ContainerRegistryArgs:
    settings: StackSettings
    depends_on: list[pulumi.Resource]  # the Artifact Registry API


class ContainerRegistry(pulumi.ComponentResource):
    """One Docker repository per stack with cleanup policies, so storage does not grow with every deploy."""

    repository: artifactregistry.Repository
    address: str  # the registry host, e.g. europe-west1-docker.pkg.dev
    path: pulumi.Output[str]  # <host>/<project>/<repository>: where images are pushed

    def __init__(
        self, name: str, args: ContainerRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops-stack:gcp:ContainerRegistry", name, None, opts)
        settings = args.settings
        self.repository = artifactregistry.Repository(
            f"{name}-repository",
            repository_id=short_name(settings.stack, "images", max_length=63),
            project=settings.gcp_project,
            location=settings.region,
            format="DOCKER",
            description=f"Images of the {settings.stack} MLOps stack (tracking server, model API)",
            cleanup_policy_dry_run=False,
            cleanup_policies=[
                artifactregistry.RepositoryCleanupPolicyArgs(
                    id="keep-most-recent",
                    action="KEEP",
                    most_recent_versions=artifactregistry.RepositoryCleanupPolicyMostRecentVersionsArgs(
                        keep_count=settings.registry_keep_images
                    ),
                ),
                # KEEP wins over DELETE, so this deletes every version but the newest N of each image,
                # tagged or not: the same rule as the ECR lifecycle policy and the ACR purge task.
                # https://cloud.google.com/artifact-registry/docs/repositories/cleanup-policy
                artifactregistry.RepositoryCleanupPolicyArgs(
                    id="delete-the-rest",
                    action="DELETE",
                    condition=artifactregistry.RepositoryCleanupPolicyConditionArgs(tag_state="ANY"),
                ),
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
        )
        self.address = f"{settings.region}-docker.pkg.dev"
        self.path = pulumi.Output.concat(
            self.address, "/", self.repository.project, "/", self.repository.repository_id
        )
        self.register_outputs({"path": self.path})

    def login(self) -> RegistryLogin:
        """Push with the deployer's own OAuth access token (valid about an hour): no key is ever stored."""
        token = organizations.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        return RegistryLogin(
            address=self.address,
            repository_prefix=self.path,
            username="oauth2accesstoken",
            password=pulumi.Output.secret(token.access_token),
        )
