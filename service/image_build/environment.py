"""Build the model API's Python environment for one pinned model.

The environment is our serving packages, pinned by uv.lock (the `service` dependency group, plus the
`api-<cloud>` group: the storage client of the one cloud the API reads its model from), and the model's own
requirements: the `requirements.txt` MLflow logged with it, which the stack keeps in
`stacks/models/<name>/<version>/` (`scripts/promote.py --save-requirements` writes it). Where both name a
package, the model's line wins: the model was trained and checked with that version. MLflow itself is the
exception: the API serves with `mlflow-skinny` at our pin, so the model's `mlflow==...` line is dropped (and
reported when its version differs). A model that names scikit-learn also gets the `fast-trees` group
(treelite, which service/tree_ensemble.py uses for small batches of a tree ensemble, after proving it exact).

The image's Dockerfile runs this in its build stage, and the tests run the same file to build and serve from
a real environment, so what they check is what the image installs. Standard library only: it runs before
anything is installed.

    python service/image_build/environment.py --cloud gcp --model-requirements requirements.txt --venv .venv
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CLOUDS = ("gcp", "aws", "azure")
# `uv run` names itself in UV (tests run under it); the image's build stage has uv on PATH.
UV = os.environ.get("UV") or shutil.which("uv") or "uv"
# What MLflow writes for itself in a model's requirements; the API serves with our mlflow-skinny instead.
MLFLOW_DISTRIBUTIONS = frozenset({"mlflow", "mlflow-skinny"})
# Our dependency groups that speed up serving a model that names one of these packages.
SPEEDUPS = {"scikit-learn": "fast-trees"}
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


class RequirementsError(ValueError):
    """A model's requirements.txt holds something this build cannot install; the message says what."""


@dataclass(frozen=True)
class Requirement:
    name: str  # normalized as PEP 503 says: lower case, runs of -_. as one -
    line: str


@dataclass(frozen=True)
class Environment:
    """What to install, and what a person reading the build log should know about it."""

    requirements: list[str]
    notes: list[str]


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse(text: str, origin: str) -> list[Requirement]:
    """The requirement lines of a requirements file; pip options (`-r`, `-c`, `--index-url`, ...) are refused:
    a model's environment is what it names, from the index the image builds with."""
    requirements = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            raise RequirementsError(
                f"{origin} line {number}: {line!r} is a pip option; only requirement lines are supported "
                "(write the packages it refers to as lines of their own)"
            )
        match = _NAME.match(line)
        if match is None:
            raise RequirementsError(f"{origin} line {number}: {line!r} does not start with a package name")
        requirements.append(Requirement(normalized(match[1]), line))
    return requirements


def compose(serving: list[Requirement], model: list[Requirement]) -> Environment:
    """Our pinned serving packages plus the model's requirements, the model's line winning where both name
    a package, MLflow excepted (see the module docstring)."""
    notes = []
    ours = {requirement.name: requirement for requirement in serving}
    kept_model = []
    for requirement in model:
        if requirement.name in MLFLOW_DISTRIBUTIONS:
            served_with = ours.get("mlflow-skinny")
            if (
                served_with is not None
                and requirement.line.split("==")[-1] != served_with.line.split("==")[-1]
            ):
                notes.append(f"the model names {requirement.line}; it is served with {served_with.line}")
            continue
        kept_model.append(requirement)
        if requirement.name in ours and ours[requirement.name].line != requirement.line:
            notes.append(f"the model's {requirement.line} replaces our {ours[requirement.name].line}")
    model_names = {requirement.name for requirement in kept_model}
    kept_ours = [requirement.line for requirement in serving if requirement.name not in model_names]
    return Environment(kept_ours + [requirement.line for requirement in kept_model], notes)


def speedup_groups(model: list[Requirement]) -> list[str]:
    """The SPEEDUPS groups for a model's requirements."""
    names = {requirement.name for requirement in model}
    return sorted({group for package, group in SPEEDUPS.items() if package in names})


def serving_requirements(
    cloud: str, project: Path, extra_groups: list[str] | None = None
) -> list[Requirement]:
    """The `service`, `api-<cloud>` (and `extra_groups`) groups of uv.lock, every package pinned (uv export
    reads only the lock)."""
    groups = ["service", f"api-{cloud}", *(extra_groups or [])]
    exported = subprocess.run(
        [
            UV,
            "export",
            "--frozen",
            "--no-hashes",
            "--no-emit-project",
            "--no-header",
            "--no-annotate",
            "--no-default-groups",
            *(option for group in groups for option in ("--group", group)),
        ],
        cwd=project,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return parse(exported, "uv export")


def build(cloud: str, model_requirements: Path, venv: Path, project: Path) -> Environment:
    """Create `venv` with the composed environment; uv's resolver reports a conflict between the model's
    pins and ours by naming both."""
    model = parse(model_requirements.read_text(), str(model_requirements))
    environment = compose(serving_requirements(cloud, project, speedup_groups(model)), model)
    composed = venv.with_name(f"{venv.name}-requirements.txt")
    composed.write_text("\n".join(environment.requirements) + "\n")
    subprocess.run([UV, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    subprocess.run(
        [
            UV,
            "pip",
            "install",
            "--quiet",
            "--compile-bytecode",
            "--python",
            str(venv / "bin" / "python"),
            "-r",
            str(composed),
        ],
        check=True,
    )
    composed.unlink()
    _remove_test_suites(venv)
    return environment


def _remove_test_suites(venv: Path) -> None:
    """Packages' own test suites (`<package>/**/tests/`) are never imported when serving: pandas' alone is
    46 MB of the example model's environment, the suites together 110 MB of 508 with their bytecode."""
    for site_packages in venv.glob("lib/python*/site-packages"):
        suites = [path for path in site_packages.glob("*/**/tests") if path.is_dir()]
        for suite in suites:
            shutil.rmtree(suite, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cloud", choices=CLOUDS, required=True, help="the cloud the API runs on")
    parser.add_argument("--model-requirements", type=Path, required=True, help="the model's requirements.txt")
    parser.add_argument("--venv", type=Path, required=True, help="where to create the environment")
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="the folder with uv.lock")
    args = parser.parse_args(argv)
    try:
        environment = build(args.cloud, args.model_requirements, args.venv, args.project)
    except RequirementsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for note in environment.notes:
        print(f"note: {note}")
    print("installed:", *environment.requirements, sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
