"""The two container images: built from this repository and pushed by the program, or prebuilt ones named
in config. Either way services deploy them by digest, so a deploy is exactly what was built.

Each image has exactly its own inputs. Both build from the repository root (they need pyproject.toml and
uv.lock), and each Dockerfile has its own ignore file beside it, `<Dockerfile>.dockerignore`, which BuildKit
reads instead of the root `.dockerignore` (https://docs.docker.com/build/concepts/context/#filename-and-location)
and which pulumi-docker-build reads to hash the context (pulumi/pulumi-docker-build provider/internal/
context.go, getIgnorePatterns: "Prefer <Dockerfile>.dockerignore if it's present"; hashBuildContext hashes the
Dockerfile's content and every file the ignore file lets in, with its relative path and mode).

The provider rebuilds and pushes whenever that hash changes, and ECR tags are immutable
(ImageTagAlreadyExistsException for an existing tag with a new digest). So the tag is derived from the same
inputs (`context_digest`): whenever the provider would rebuild an image, its tag is new; a change to one
image's files changes neither the other image's context nor its tag.
"""

import hashlib
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker_build as docker_build

from infra.config import ModelPin, StackSettings

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


# The API Dockerfile's named build context for the pinned model's requirements (`COPY --from=model`).
MODEL_CONTEXT = "model"


@dataclass(frozen=True)
class ImageRefs:
    tracking: pulumi.Input[str]
    api: pulumi.Input[str] | None  # None until a model version is pinned: the API image is built for it


@dataclass(frozen=True)
class BuildInputs:
    """What one image is built from, beyond the repository root context and its Dockerfile."""

    named_contexts: dict[str, Path]
    build_args: dict[str, str]

    def digest(self) -> str:
        """Every file of the named contexts (path, mode, content) and the build arguments.

        The tag must carry these itself: pulumi-docker-build hashes a named context through the *main*
        Dockerfile's ignore file (provider/internal/context.go, hashBuildContext: `rootFS(namedContext,
        excludes)`), and ours starts with `*`, so a changed requirements.txt would not change its context
        hash. A new tag is a changed input, and the provider rebuilds on it."""
        digest = hashlib.sha256()
        for context_name, location in sorted(self.named_contexts.items()):
            digest.update(context_name.encode())
            for path in sorted(p for p in location.rglob("*") if p.is_file()):
                digest.update(path.relative_to(location).as_posix().encode())
                digest.update(oct(path.lstat().st_mode).encode())
                digest.update(path.read_bytes())
        for key, value in sorted(self.build_args.items()):
            digest.update(f"{key}={value}".encode())
        return digest.hexdigest()


NO_INPUTS = BuildInputs(named_contexts={}, build_args={})


def api_build_inputs(settings: StackSettings, model: ModelPin) -> BuildInputs:
    """The pinned version's requirements and the cloud whose storage client the API reads its model with."""
    return BuildInputs(
        named_contexts={MODEL_CONTEXT: model.environment},
        build_args={"CLOUD": settings.cloud.value},
    )


def build_images(
    name: str, settings: StackSettings, login: RegistryLogin, parent: pulumi.Resource
) -> ImageRefs:
    """Build and push whichever image config does not already name, and return digest references."""
    tracking = settings.tracking_image or _build(
        f"{name}-tracking-image", TRACKING_DOCKERFILE, "mlflow-tracking", NO_INPUTS, settings, login, parent
    )
    api: pulumi.Input[str] | None = settings.api_image
    if api is None and settings.model is not None:
        api = _build(
            f"{name}-api-image",
            API_DOCKERFILE,
            "model-api",
            api_build_inputs(settings, settings.model),
            settings,
            login,
            parent,
        )
    return ImageRefs(tracking=tracking, api=api)


def _build(
    resource_name: str,
    dockerfile: str,
    image_name: str,
    inputs: BuildInputs,
    settings: StackSettings,
    login: RegistryLogin,
    parent: pulumi.Resource,
) -> pulumi.Output[str]:
    # A tag per build input: registries with immutable tags (ECR) accept every new build, and the same
    # inputs keep the same tag, so an unchanged image is neither rebuilt nor pushed again.
    version = hashlib.sha256(
        (context_digest(REPOSITORY_ROOT / dockerfile) + inputs.digest()).encode()
    ).hexdigest()[:12]
    tag = pulumi.Output.concat(login.repository_prefix, f"/{image_name}:{settings.stack}-{version}")
    image = docker_build.Image(
        resource_name,
        context=docker_build.BuildContextArgs(
            location=str(REPOSITORY_ROOT),
            named={
                context_name: docker_build.ContextArgs(location=str(location))
                for context_name, location in inputs.named_contexts.items()
            }
            or None,
        ),
        dockerfile=docker_build.DockerfileArgs(location=str(REPOSITORY_ROOT / dockerfile)),
        build_args=inputs.build_args or None,
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


def ignore_file(dockerfile: Path) -> Path:
    """The Dockerfile's own ignore file, `<Dockerfile>.dockerignore` beside it."""
    return dockerfile.with_name(f"{dockerfile.name}.dockerignore")


@dataclass(frozen=True)
class IgnorePattern:
    """One line of a .dockerignore file, compiled as moby's patternmatcher compiles it (what BuildKit and
    pulumi-docker-build use, through tonistiigi/fsutil): `*` and `?` stop at `/`, `**` crosses it, `[...]`
    is a class, a leading `!` re-includes; the pattern is cleaned and anchored at the context root."""

    regex: re.Pattern[str]
    exclusion: bool
    # The pattern's leading path components that hold no wildcard ("" for none), or None when even the first
    # component has one; what a walk needs to know whether the pattern could match below a directory.
    literal_directories: str | None

    @classmethod
    def parse(cls, line: str) -> "IgnorePattern":
        exclusion = line.startswith("!")
        pattern = _clean(line[1:].strip() if exclusion else line)
        expression = ""
        index = 0
        while index < len(pattern):
            char = pattern[index]
            if pattern.startswith("**", index):
                index += 2
                if pattern.startswith("/", index):
                    index += 1
                expression += ".*" if index >= len(pattern) else "(.*/)?"
                continue
            if char == "*":
                expression += "[^/]*"
            elif char == "?":
                expression += "[^/]"
            elif char == "\\" and index + 1 < len(pattern):
                index += 1
                expression += re.escape(pattern[index])
            elif char in ".+()|{}$^":
                expression += re.escape(char)
            else:
                expression += char
            index += 1
        literal: list[str] = []
        for part in pattern.split("/"):
            if any(char in part for char in "*?[\\"):
                break
            literal.append(part)
        wildcard_first = bool(pattern) and not literal and pattern != "."
        return cls(re.compile(f"^{expression}$"), exclusion, None if wildcard_first else "/".join(literal))

    def matches(self, path: str) -> bool:
        """The path itself or one of its parent directories matches (moby's MatchesOrParentMatches)."""
        parts = path.split("/")
        return any(self.regex.match("/".join(parts[: end + 1])) for end in range(len(parts)))


def _clean(pattern: str) -> str:
    """Go's filepath.Clean for the relative, slash-separated patterns an ignore file holds."""
    parts: list[str] = []
    for part in pattern.strip("/").split("/"):
        if part in ("", "."):
            continue
        if part == ".." and parts and parts[-1] != "..":
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts) or "."


def read_ignore_file(path: Path) -> list[IgnorePattern]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [IgnorePattern.parse(line) for line in lines if line and not line.startswith("#")]


def is_ignored(relative: str, patterns: list[IgnorePattern]) -> bool:
    """Whether a context-relative path stays out of the context: the last pattern that matches decides."""
    ignored = False
    for pattern in patterns:
        if pattern.matches(relative):
            ignored = not pattern.exclusion
    return ignored


def context_files(dockerfile: Path, context: Path = REPOSITORY_ROOT) -> list[Path]:
    """Every file of `context` that the Dockerfile's own ignore file lets into its build context, sorted.

    Like fsutil, the walk skips an ignored directory unless a `!` pattern could re-include something under
    it, so a large ignored tree (.venv, node_modules) costs nothing.
    """
    patterns = read_ignore_file(ignore_file(dockerfile))
    found: list[Path] = []
    for directory, subdirectories, files in os.walk(context):
        base = Path(directory)
        relative = base.relative_to(context).as_posix()
        subdirectories[:] = [
            name
            for name in subdirectories
            if not is_ignored(_join(relative, name), patterns)
            or _may_reinclude(_join(relative, name), patterns)
        ]
        found.extend(base / name for name in files if not is_ignored(_join(relative, name), patterns))
    return sorted(found)


def _join(directory: str, name: str) -> str:
    return name if directory == "." else f"{directory}/{name}"


def _may_reinclude(directory: str, patterns: list[IgnorePattern]) -> bool:
    """Whether a `!` pattern could match something inside `directory` (conservative: a pattern whose
    leading directories are not literal could match anywhere)."""
    for pattern in patterns:
        if not pattern.exclusion:
            continue
        literal = pattern.literal_directories
        if not literal:  # wildcards from the first component on: could match anywhere
            return True
        if literal == directory or literal.startswith(f"{directory}/") or directory.startswith(f"{literal}/"):
            return True
    return False


def context_digest(dockerfile: Path, context: Path = REPOSITORY_ROOT) -> str:
    """SHA-256 over what pulumi-docker-build hashes to decide a rebuild: the Dockerfile's content and each
    context file's relative path, mode and content (a symlink's target), so the tag changes whenever the
    provider would build a new image."""
    digest = hashlib.sha256(dockerfile.read_bytes())
    for path in context_files(dockerfile, context):
        digest.update(path.relative_to(context).as_posix().encode())
        digest.update(oct(path.lstat().st_mode).encode())
        digest.update(str(path.readlink()).encode() if path.is_symlink() else path.read_bytes())
    return digest.hexdigest()


def copied_sources(dockerfile: Path, context: Path = REPOSITORY_ROOT) -> list[Path]:
    """The build-context paths a Dockerfile's COPY/ADD instructions take (not those `--from` a stage, nor
    URLs that ADD downloads)."""
    sources: list[Path] = []
    for line in dockerfile.read_text().replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        if any(word.startswith("--from") for word in words[1:]):
            continue
        paths = [word for word in words[1:] if not word.startswith("--")]
        # The last path is the destination.
        sources.extend(context / path for path in paths[:-1] if "://" not in path)
    return sources
