"""Each image's build context holds exactly its own inputs, and its tag follows that context.

With immutable ECR tags, an image whose context changed must get a new tag (pulumi-docker-build rebuilds and
pushes it; ECR refuses a new digest under an existing tag), and an image whose context did not change must
keep its tag. These tests change files in a copy of the repository's build inputs and watch both contexts and
tags.
"""

import shlex
import shutil
from pathlib import Path

import docker.utils.build
import pytest

from infra.config import Cloud
from infra.images import (
    API_DOCKERFILE,
    MODEL_CONTEXT,
    REPOSITORY_ROOT,
    TRACKING_DOCKERFILE,
    BuildInputs,
    IgnorePattern,
    api_build_inputs,
    context_digest,
    context_files,
    copied_sources,
    ignore_file,
    is_ignored,
    read_ignore_file,
)
from infra.platform import load_stack_settings
from service.image_build.environment import CLOUDS
from testing.pulumi_program import EXAMPLE_REPOSITORY, stack_config

DOCKERFILES = (TRACKING_DOCKERFILE, API_DOCKERFILE)


def _relative(paths: list[Path], root: Path) -> list[str]:
    return [path.relative_to(root).as_posix() for path in paths]


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_every_copied_source_is_in_the_images_own_context(dockerfile: str) -> None:
    path = REPOSITORY_ROOT / dockerfile
    assert ignore_file(path).is_file(), f"{dockerfile} has no ignore file of its own"
    in_context = set(_relative(context_files(path), REPOSITORY_ROOT))
    sources = copied_sources(path)
    assert REPOSITORY_ROOT / "uv.lock" in sources
    for source in sources:
        assert source.exists(), f"{dockerfile} copies {source}, which does not exist"
        files = (
            [source]
            if source.is_file()
            else [p for p in source.rglob("*.py") if "__pycache__" not in p.parts]
        )
        for file in files:
            relative = file.relative_to(REPOSITORY_ROOT).as_posix()
            if "/tests/" not in f"/{relative}":
                assert relative in in_context, f"{ignore_file(path).name} keeps {relative} out of the context"


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_our_reading_of_the_ignore_file_agrees_with_docker_py(dockerfile: str) -> None:
    """docker-py implements the same .dockerignore rules independently (a port of moby's matcher); it also
    always adds the root .dockerignore, as the classic builder did (BuildKit does not)."""
    patterns = [
        line.strip()
        for line in ignore_file(REPOSITORY_ROOT / dockerfile).read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    theirs = {
        path
        for path in docker.utils.build.exclude_paths(str(REPOSITORY_ROOT), patterns, dockerfile=dockerfile)
        if (REPOSITORY_ROOT / path).is_file() and path != ".dockerignore"
    }
    assert set(_relative(context_files(REPOSITORY_ROOT / dockerfile), REPOSITORY_ROOT)) == theirs


def test_the_two_contexts_share_only_the_lock_files() -> None:
    tracking, api = (set(_relative(context_files(REPOSITORY_ROOT / d), REPOSITORY_ROOT)) for d in DOCKERFILES)
    assert tracking & api == {"pyproject.toml", "uv.lock"}
    assert not any(path.startswith("service/") for path in tracking)
    assert not any(path.startswith("infra/") for path in api)
    assert not any("/tests/" in path or "__pycache__" in path for path in tracking | api)


@pytest.fixture
def build_inputs(tmp_path: Path) -> Path:
    """A copy of what the two images are built from: both Dockerfiles with their ignore files, the lock files,
    the service and the tracking server's package, plus files that belong to neither."""
    for relative in ("pyproject.toml", "uv.lock", ".dockerignore", "README.md", "infra/__init__.py"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPOSITORY_ROOT / relative, tmp_path / relative)
    for directory in ("service", "infra/mlflow_server"):
        shutil.copytree(
            REPOSITORY_ROOT / directory, tmp_path / directory, ignore=shutil.ignore_patterns("__pycache__")
        )
    (tmp_path / "service" / "tests").mkdir(exist_ok=True)
    (tmp_path / "service" / "tests" / "test_new.py").write_text("assert True\n")
    (tmp_path / "infra" / "aws").mkdir()
    (tmp_path / "infra" / "aws" / "network.py").write_text("VPC = 1\n")
    return tmp_path


def _state(root: Path) -> dict[str, tuple[list[str], str]]:
    """Per Dockerfile: its context's files and the tag version derived from it."""
    return {
        dockerfile: (
            _relative(context_files(root / dockerfile, root), root),
            context_digest(root / dockerfile, root),
        )
        for dockerfile in DOCKERFILES
    }


def _touch(root: Path, relative: str) -> None:
    path = root / relative
    path.write_text(path.read_text() + "\n# changed\n")


@pytest.mark.parametrize(
    ("changed", "rebuilt"),
    [
        ("service/app.py", {API_DOCKERFILE}),
        ("service/Dockerfile", {API_DOCKERFILE}),
        ("infra/mlflow_server/command.py", {TRACKING_DOCKERFILE}),
        ("infra/mlflow_server/Dockerfile", {TRACKING_DOCKERFILE}),
        ("uv.lock", {API_DOCKERFILE, TRACKING_DOCKERFILE}),  # both install from it
        ("service/tests/test_new.py", set()),
        ("infra/aws/network.py", set()),
        ("README.md", set()),
    ],
)
def test_a_change_retags_exactly_the_images_whose_context_it_changes(
    build_inputs: Path, changed: str, rebuilt: set[str]
) -> None:
    before = _state(build_inputs)
    _touch(build_inputs, changed)
    after = _state(build_inputs)
    for dockerfile in DOCKERFILES:
        files_before, tag_before = before[dockerfile]
        files_after, tag_after = after[dockerfile]
        assert files_after == files_before  # an edit adds or removes no file
        assert (tag_after != tag_before) is (dockerfile in rebuilt), f"{changed} and {dockerfile}'s tag"


def test_a_new_file_or_a_mode_change_in_an_image_retags_it_alone(build_inputs: Path) -> None:
    """pulumi-docker-build hashes relative paths and modes too (hashBuildContext)."""
    before = _state(build_inputs)
    (build_inputs / "service" / "extra.py").write_text("X = 1\n")
    (build_inputs / "infra" / "mlflow_server" / "entrypoint.py").chmod(0o755)
    after = _state(build_inputs)
    assert "service/extra.py" in after[API_DOCKERFILE][0]
    assert after[API_DOCKERFILE][1] != before[API_DOCKERFILE][1]
    assert after[TRACKING_DOCKERFILE][1] != before[TRACKING_DOCKERFILE][1]
    assert after[TRACKING_DOCKERFILE][0] == before[TRACKING_DOCKERFILE][0]


@pytest.mark.parametrize(
    ("patterns", "path", "ignored"),
    [
        (["*"], "service/app.py", True),  # a parent directory matches
        (["*", "!service"], "service/app.py", False),
        (["*", "!service", "service/tests"], "service/tests/test_x.py", True),
        (["**/__pycache__"], "service/routes/__pycache__/x.pyc", True),
        (["*.py"], "service/app.py", False),  # `*` stops at `/`
        (["**/*.py"], "service/app.py", True),
        (["service/?pp.py"], "service/app.py", True),
        (["/service/../uv.lock"], "uv.lock", True),  # cleaned and anchored at the root
    ],
)
def test_ignore_patterns_follow_the_dockerignore_rules(patterns: list[str], path: str, ignored: bool) -> None:
    assert is_ignored(path, [IgnorePattern.parse(p) for p in patterns]) is ignored


def _stage_names_and_named_sources(dockerfile: Path) -> tuple[set[str], set[str]]:
    """The Dockerfile's stage names, and the `--from=` sources of its COPY lines that are none of them (named
    build contexts, or images)."""
    stages, sources = set(), set()
    for line in dockerfile.read_text().replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0].upper() == "FROM" and len(words) >= 4 and words[-2].upper() == "AS":
            stages.add(words[-1])
        if words and words[0].upper() == "COPY":
            sources |= {word.split("=", 1)[1] for word in words[1:] if word.startswith("--from=")}
    return stages, {source for source in sources if source not in stages and ":" not in source}


def _build_args_declared(dockerfile: Path) -> set[str]:
    return {
        line.split()[1].split("=")[0]
        for line in dockerfile.read_text().splitlines()
        if line.upper().startswith("ARG ")
    }


def test_the_api_image_gets_exactly_the_named_contexts_and_arguments_its_dockerfile_takes() -> None:
    dockerfile = REPOSITORY_ROOT / API_DOCKERFILE
    config = stack_config(
        "gcp",
        "dev",
        {"gcp:project": "my-project", "gcp:region": "europe-west1"},
        EXAMPLE_REPOSITORY,
        modelVersion="1",
        modelSource="gs://b/mlflow/1/models/m-1/artifacts",
    )
    settings = load_stack_settings(read=config.get, stack="gcp-dev")
    assert settings.model is not None
    inputs = api_build_inputs(settings, settings.model)
    _, named_sources = _stage_names_and_named_sources(dockerfile)
    assert named_sources == set(inputs.named_contexts) == {MODEL_CONTEXT}
    assert _build_args_declared(dockerfile) == set(inputs.build_args) == {"CLOUD"}
    assert inputs.named_contexts[MODEL_CONTEXT] == REPOSITORY_ROOT / "stacks/models/throughput/1"
    # The Dockerfile copies requirements.txt from that context.
    assert (inputs.named_contexts[MODEL_CONTEXT] / "requirements.txt").is_file()


def test_the_api_image_tag_follows_its_own_model_versions_requirements(tmp_path: Path) -> None:
    first, second = tmp_path / "throughput" / "1", tmp_path / "throughput" / "2"
    for folder in (first, second):
        folder.mkdir(parents=True)
        (folder / "requirements.txt").write_text("mlflow==3.17.2\nscikit-learn==1.9.1\n")

    def digest(folder: Path, cloud: str = "gcp") -> str:
        return BuildInputs(named_contexts={MODEL_CONTEXT: folder}, build_args={"CLOUD": cloud}).digest()

    before = digest(first)
    assert digest(second) == before  # the same requirements build the same image
    (second / "requirements.txt").write_text("mlflow==3.17.2\nxgboost==3.1.0\n")
    assert digest(first) == before  # another version's change leaves this one alone
    (first / "requirements.txt").write_text("mlflow==3.17.2\nscikit-learn==1.9.2\n")
    assert digest(first) != before
    assert digest(first, "aws") != digest(first, "gcp")


def test_the_providers_own_hash_would_miss_a_requirements_change_so_the_tag_carries_it() -> None:
    """pulumi-docker-build applies the main ignore file to named contexts too: the API's admits no
    requirements.txt, hence BuildInputs.digest in the tag."""
    patterns = read_ignore_file(ignore_file(REPOSITORY_ROOT / API_DOCKERFILE))
    assert is_ignored("requirements.txt", patterns)


def test_the_environment_builder_takes_every_cloud_the_program_passes_as_cloud() -> None:
    """The builder is standard library only (it runs before anything is installed), so it spells the clouds
    itself; the program passes `settings.cloud.value` as CLOUD."""
    assert set(CLOUDS) == {cloud.value for cloud in Cloud}
