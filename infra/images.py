"""The two container images: built from this repository and pushed by the program, or prebuilt ones named
in config. Either way services deploy them by digest, so a deploy is exactly what was built."""

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker_build as docker_build

from infra.config import StackSettings

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
TRACKING_DOCKERFILE = "infra/mlflow_server/Dockerfile"
API_DOCKERFILE = "service/Dockerfile"


@dataclass(frozen=True)
class RegistryLogin:
    """Where to push and how to log in; the password is a short-lived token, never a stored key."""

    address: pulumi.Input[
        str
    ]  # e.g. europe-west1-docker.pkg.dev, 123456789012.dkr.ecr.eu-west-1.amazonaws.com
    repository_prefix: pulumi.Input[str]  # e.g. europe-west1-docker.pkg.dev/project/repo
    username: pulumi.Input[str]
    password: pulumi.Input[str]


@dataclass(frozen=True)
class ImageRefs:
    tracking: pulumi.Input[str]
    api: pulumi.Input[str]


def build_images(
    name: str, settings: StackSettings, login: RegistryLogin, parent: pulumi.Resource
) -> ImageRefs:
    """Build and push whichever image config does not already name, and return digest references."""
    tracking = settings.tracking_image or _build(
        f"{name}-tracking-image", TRACKING_DOCKERFILE, "mlflow-tracking", settings, login, parent
    )
    api = settings.api_image or _build(
        f"{name}-api-image", API_DOCKERFILE, "model-api", settings, login, parent
    )
    return ImageRefs(tracking=tracking, api=api)


def _build(
    resource_name: str,
    dockerfile: str,
    image_name: str,
    settings: StackSettings,
    login: RegistryLogin,
    parent: pulumi.Resource,
) -> pulumi.Output[str]:
    tag = pulumi.Output.concat(login.repository_prefix, f"/{image_name}:{settings.stack}")
    image = docker_build.Image(
        resource_name,
        context=docker_build.BuildContextArgs(location=str(REPOSITORY_ROOT)),
        dockerfile=docker_build.DockerfileArgs(location=str(REPOSITORY_ROOT / dockerfile)),
        # The serverless platforms run linux/amd64.
        platforms=[docker_build.Platform.LINUX_AMD64],
        push=True,
        tags=[tag],
        registries=[
            docker_build.RegistryArgs(address=login.address, username=login.username, password=login.password)
        ],
        opts=pulumi.ResourceOptions(parent=parent),
    )
    # `ref` is the pushed tag with its digest (name@sha256:…): what the services deploy.
    return image.ref
