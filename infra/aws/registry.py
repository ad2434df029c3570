"""ECR: one repository per image, under the stack's own path, and the short-lived login to push to it."""

import json
from dataclasses import dataclass

import pulumi
from pulumi_aws import ecr

from infra.config import StackSettings
from infra.images import RegistryLogin

# The names infra/images.py pushes under `<repository_prefix>/`.
IMAGE_NAMES = ("mlflow-tracking", "model-api")


@dataclass(frozen=True, kw_only=True)
class ContainerRegistryArgs:
    settings: StackSettings


class ContainerRegistry(pulumi.ComponentResource):
    """Immutable tags, scan on push, and a lifecycle policy that keeps the last N images."""

    repository_prefix: pulumi.Output[str]  # <account>.dkr.ecr.<region>.amazonaws.com/<stack>
    repository_arns: list[pulumi.Output[str]]

    def __init__(
        self, name: str, args: ContainerRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops-stack:aws:ContainerRegistry", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)
        urls: list[pulumi.Output[str]] = []
        self.repository_arns = []
        for image in IMAGE_NAMES:
            repository = ecr.Repository(
                f"{name}-{image}",
                name=f"{settings.stack}/{image}",
                image_tag_mutability="IMMUTABLE",
                image_scanning_configuration=ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
                force_delete=settings.is_sandbox,
                opts=child,
            )
            ecr.LifecyclePolicy(
                f"{name}-{image}-lifecycle",
                repository=repository.name,
                policy=keep_last_images_policy(settings.registry_keep_images),
                opts=child,
            )
            urls.append(repository.repository_url)
            self.repository_arns.append(repository.arn)
        # Both URLs share the prefix; depending on both makes pushes wait for both repositories.
        self.repository_prefix = pulumi.Output.all(*urls).apply(lambda found: found[0].rsplit("/", 1)[0])
        self.register_outputs({"repositoryPrefix": self.repository_prefix})

    def login(self) -> RegistryLogin:
        """A push login from ECR's 12-hour authorization token: no stored registry password anywhere."""
        token = ecr.get_authorization_token_output(opts=pulumi.InvokeOutputOptions(parent=self))
        return RegistryLogin(
            address=token.proxy_endpoint.apply(lambda endpoint: endpoint.removeprefix("https://")),
            repository_prefix=self.repository_prefix,
            username=token.user_name,
            password=pulumi.Output.secret(token.password),
        )


def keep_last_images_policy(keep: int) -> str:
    """ECR lifecycle policy: expire everything beyond the newest `keep` images."""
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"keep the last {keep} images",
                    "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
                    "action": {"type": "expire"},
                }
            ]
        }
    )
