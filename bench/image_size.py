"""The size of the example model's API image environment, built as the image's build stage builds it.

service/image_build/environment.py composes our serving pins, one cloud's storage client and the model's own
requirements into a virtual environment (the Dockerfile copies that environment into the runtime image);
here it runs for GCP with the example model's logged requirements.txt and the result is measured on disk,
in total and per installed distribution (its files as its RECORD lists them).
"""

import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import distributions
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
MB = 1_000_000
LARGEST_SHOWN = 8


@dataclass(frozen=True)
class EnvironmentSize:
    """A built environment's size on disk; None when it could not be built here (the reason says why)."""

    total_mb: float | None
    largest: list[tuple[str, float]]
    reason: str = ""

    def describe(self) -> str:
        if self.total_mb is None:
            return f"not measured ({self.reason})"
        parts = ", ".join(f"{name} {size:.0f}" for name, size in self.largest)
        return f"{self.total_mb:.0f} MB on disk; largest (MB): {parts}"


def disk_mb(folder: Path) -> float:
    """Bytes of the regular files under `folder` (symlinks not followed), in MB."""
    return (
        sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())
        / MB
    )


def by_distribution(venv: Path) -> list[tuple[str, float]]:
    """Each installed distribution's files, largest first (MB)."""
    sizes = []
    for site_packages in venv.glob("lib/python*/site-packages"):
        for distribution in distributions(path=[str(site_packages)]):
            files = [site_packages / str(file) for file in distribution.files or []]
            size = sum(path.stat().st_size for path in files if path.is_file())
            sizes.append((distribution.metadata["Name"], size / MB))
    return sorted(sizes, key=lambda item: item[1], reverse=True)


def measure(model_requirements: Path, venv: Path) -> EnvironmentSize:
    """Build the environment for `model_requirements` at `venv` and measure it."""
    built = subprocess.run(
        [
            sys.executable,
            str(REPOSITORY_ROOT / "service" / "image_build" / "environment.py"),
            "--cloud", "gcp",
            "--model-requirements", str(model_requirements),
            "--venv", str(venv),
        ],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    if built.returncode != 0:
        return EnvironmentSize(
            None, [], built.stderr.strip().splitlines()[-1] if built.stderr else "build failed"
        )
    return EnvironmentSize(disk_mb(venv), by_distribution(venv)[:LARGEST_SHOWN])
