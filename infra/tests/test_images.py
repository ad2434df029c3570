"""Image tags follow the sources each Dockerfile copies."""

from pathlib import Path

import pytest

from infra.images import API_DOCKERFILE, REPOSITORY_ROOT, TRACKING_DOCKERFILE, copied_sources, source_digest


@pytest.mark.parametrize("dockerfile", [TRACKING_DOCKERFILE, API_DOCKERFILE])
def test_every_copied_source_exists_and_is_let_into_the_context(dockerfile: str):
    sources = copied_sources(REPOSITORY_ROOT / dockerfile)
    assert REPOSITORY_ROOT / "uv.lock" in sources
    for source in sources:
        assert source.exists(), f"{dockerfile} copies {source}, which does not exist"
    ignore = (REPOSITORY_ROOT / ".dockerignore").read_text().splitlines()
    allowed = [line[1:].rstrip("/") for line in ignore if line.startswith("!")]
    for source in sources:
        relative = str(source.relative_to(REPOSITORY_ROOT))
        assert any(relative == a or relative.startswith(f"{a}/") for a in allowed), (
            f".dockerignore drops {relative}"
        )


def test_the_digest_changes_with_copied_code_but_not_with_tests(tmp_path: Path):
    (tmp_path / "app" / "tests").mkdir(parents=True)
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "FROM python:3.11-slim\nCOPY --from=builder /x /x\nCOPY lock.txt \\\n  app/ /srv/\n"
    )
    (tmp_path / "lock.txt").write_text("a==1\n")
    (tmp_path / "app" / "main.py").write_text("print(1)\n")
    (tmp_path / "app" / "tests" / "test_main.py").write_text("assert True\n")
    assert copied_sources(dockerfile, tmp_path) == [tmp_path / "lock.txt", tmp_path / "app"]

    first = source_digest(dockerfile, tmp_path)
    (tmp_path / "app" / "tests" / "test_main.py").write_text("assert 1\n")
    assert source_digest(dockerfile, tmp_path) == first
    (tmp_path / "app" / "main.py").write_text("print(2)\n")
    assert source_digest(dockerfile, tmp_path) != first
