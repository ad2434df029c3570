"""The two container images: built from this repository and pushed by the program, or prebuilt ones named
in config. Either way services deploy them by digest, so a deploy is exactly what was built."""

import hashlib
import shlex
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
    # A tag per source version: registries with immutable tags (ECR) accept every new build, and the
    # same sources keep the same tag, so an unchanged image is neither rebuilt nor pushed again.
    version = source_digest(REPOSITORY_ROOT / dockerfile)[:12]
    tag = pulumi.Output.concat(login.repository_prefix, f"/{image_name}:{settings.stack}-{version}")
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


def copied_sources(dockerfile: Path, context: Path = REPOSITORY_ROOT) -> list[Path]:
    """The build-context paths a Dockerfile's COPY/ADD instructions take (not those `--from` a stage)."""
    sources: list[Path] = []
    for line in dockerfile.read_text().replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        if any(word.startswith("--from") for word in words[1:]):
            continue
        paths = [word for word in words[1:] if not word.startswith("--")]
        sources.extend(context / path for path in paths[:-1])  # the last path is the destination
    return sources


def source_digest(dockerfile: Path, context: Path = REPOSITORY_ROOT) -> str:
    """SHA-256 over the Dockerfile and every file it copies from the context (tests and caches excluded,
    as .dockerignore excludes them)."""
    digest = hashlib.sha256(dockerfile.read_bytes())
    for source in copied_sources(dockerfile, context):
        for path in sorted(source.rglob("*")) if source.is_dir() else [source]:
            relative = path.relative_to(context)
            if path.is_file() and "__pycache__" not in relative.parts and "tests" not in relative.parts:
                digest.update(str(relative).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()
