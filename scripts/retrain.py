"""Retrain the example model, run the promotion gate, and when the challenger wins pin it in the stack files.

What the retrain workflow (.github/workflows/retrain.yml) runs in a checkout, before it opens a pull request
with whatever this changed:

    MLFLOW_TRACKING_URI=... MLFLOW_TRACKING_USERNAME=admin MLFLOW_TRACKING_PASSWORD=... \\
      python -m scripts.retrain --stack gcp-dev --artifacts-destination gs://bucket/mlflow \\
        --pr-body /tmp/pr-body.md

1. `scripts.train` trains a challenger and registers it as @challenger;
2. `scripts.promote` moves @champion to it if it beats the champion on the gate's metric;
3. if it did: the stack files get `mlops-stack:modelVersion` / `mlops-stack:modelSource` (a line edit that
   keeps every comment), the version's requirements.txt is saved under `stacks/models/<name>/<version>/`
   (the API image is built from it), and the pull request's description (the metrics of challenger and
   champion side by side) is written to `--pr-body`. If it did not, nothing in the checkout changes.

Printed last, in `$GITHUB_OUTPUT` format: `promoted=true|false`, and when promoted `modelVersion=`.

@champion moves in the registry when the gate passes, before anyone merges: it is the gate's verdict, and the
next retraining competes against it. What serves is what the stack files pin, so a pull request closed
unmerged deploys nothing (README, "Retraining").
"""

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from scripts.promote import (
    CHAMPION_ALIAS,
    DEFAULT_METRIC,
    PromotionDecision,
    PromotionError,
    champion_pin,
    promote,
    save_requirements,
    version_by_alias,
)
from scripts.train import (
    CHALLENGER_ALIAS,
    DEFAULT_EXPERIMENT,
    DEFAULT_MODEL_NAME,
    positive_int,
    require_tracking_uri,
    train_and_register,
)

PIN_KEYS = ("mlops-stack:modelVersion", "mlops-stack:modelSource")


@dataclass(frozen=True)
class RetrainResult:
    """What one retraining did: the gate's decision, and the files it changed (none unless promoted)."""

    decision: PromotionDecision
    challenger_version: str
    changed_files: tuple[Path, ...]


def stack_file(work_dir: Path, stack: str) -> Path:
    return work_dir / "stacks" / f"Pulumi.{stack}.yaml"


def set_config_values(text: str, values: dict[str, str]) -> str:
    """`text` (a Pulumi stack file) with each key of `values` set, every comment and other line kept.

    A key already set is replaced in place; else its commented-out example (`# key: ...`, how the stack files
    document the pin) becomes the setting; else it is added at the end of `config:`. Values are written as
    double-quoted YAML strings (JSON's escaping is YAML's), so a version `"3"` stays a string.
    """
    lines = text.splitlines()
    for key, value in values.items():
        setting = f"{key}: {json.dumps(value)}"
        active = re.compile(rf"^(\s+){re.escape(key)}\s*:")
        example = re.compile(rf"^(\s+)#\s*{re.escape(key)}\s*:")
        found = next((i for i, line in enumerate(lines) if active.match(line)), None)
        if found is None:
            found = next((i for i, line in enumerate(lines) if example.match(line)), None)
        if found is not None:
            indent = re.match(r"^\s*", lines[found])
            lines[found] = f"{indent.group(0) if indent else '  '}{setting}"
        else:
            if not any(line.rstrip() == "config:" for line in lines):
                lines.append("config:")
            lines.append(f"  {setting}")
    edited = "\n".join(lines) + "\n"
    # The edit is textual: check that YAML reads back exactly what was meant.
    config = (yaml.safe_load(edited) or {}).get("config") or {}
    wrong = {key: config.get(key) for key, value in values.items() if config.get(key) != value}
    if wrong:
        raise ValueError(f"editing the stack file did not set {wrong} as meant; edit it by hand")
    return edited


def run_metrics(client: MlflowClient, model_name: str, version: str) -> dict[str, float]:
    """The metrics the training run of a version logged (empty if it has no run)."""
    run_id = client.get_model_version(model_name, version).run_id
    return dict(client.get_run(run_id).data.metrics) if run_id else {}


def comparison_markdown(
    model_name: str,
    challenger: tuple[str, dict[str, float]],
    champion: tuple[str, dict[str, float]] | None,
    metric: str,
    higher_is_better: bool,
) -> str:
    """A markdown table of every metric either run logged, the gate's metric first and marked."""
    challenger_version, challenger_metrics = challenger
    champion_version, champion_metrics = champion if champion else ("", {})
    names = sorted(set(challenger_metrics) | set(champion_metrics), key=lambda name: (name != metric, name))
    previous = f"v{champion_version} (previous champion)" if champion else "(no champion before)"
    rows = [
        f"| metric | {previous} | v{challenger_version} (challenger) | change |",
        "|---|---|---|---|",
    ]
    for name in names:
        old, new = champion_metrics.get(name), challenger_metrics.get(name)
        change = f"{new - old:+.4f}" if old is not None and new is not None else ""
        label = (
            f"**{name}** (gate, {'higher' if higher_is_better else 'lower'} is better)"
            if name == metric
            else name
        )
        old_text, new_text = ("" if value is None else f"{value:.4f}" for value in (old, new))
        rows.append(f"| {label} | {old_text} | {new_text} | {change} |")
    return "\n".join(rows)


def pr_body(
    model_name: str, decision: PromotionDecision, pin_source: str, stacks: list[str], table: str
) -> str:
    stack_list = ", ".join(f"`{stack}`" for stack in stacks)
    return (
        f"Retraining registered `{model_name}` version {decision.champion_version}, and the promotion gate "
        f"made it @{CHAMPION_ALIAS}: {decision.reason}.\n\n"
        f"{table}\n\n"
        f"This pull request pins it in {stack_list} (`modelVersion`, `modelSource` = `{pin_source}`) "
        f"and adds its requirements.txt, from which the API image is built. The preview shows the change; "
        f"merging deploys it through the canary.\n"
    )


def retrain(
    client: MlflowClient,
    work_dir: Path,
    stacks: list[str],
    pr_body_path: Path,
    model_name: str = DEFAULT_MODEL_NAME,
    metric: str = DEFAULT_METRIC,
    higher_is_better: bool = False,
    artifacts_destination: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    n_estimators: int = 50,
    n_rows: int = 2_000,
    seed: int = 7,
) -> RetrainResult:
    """Train a challenger, run the gate, and pin the winner in `stacks` under `work_dir` (see module doc)."""
    missing = [
        str(stack_file(work_dir, stack)) for stack in stacks if not stack_file(work_dir, stack).is_file()
    ]
    if missing:
        # Checked before training: a typo in --stack must not leave a promoted but unpinned champion.
        raise PromotionError(f"no such stack file: {', '.join(missing)}")
    champion_before = version_by_alias(client, model_name, CHAMPION_ALIAS)
    challenger = train_and_register(
        model_name=model_name, experiment=experiment, n_estimators=n_estimators, n_rows=n_rows, seed=seed
    )
    decision = promote(client, model_name, metric, higher_is_better)
    if not decision.promoted:
        return RetrainResult(decision=decision, challenger_version=challenger.version, changed_files=())
    pin = champion_pin(client, model_name, artifacts_destination)
    changed = [
        save_requirements(model_name, pin.version, work_dir / "stacks" / "models" / model_name / pin.version)
    ]
    for stack in stacks:
        path = stack_file(work_dir, stack)
        path.write_text(
            set_config_values(path.read_text(), dict(zip(PIN_KEYS, (pin.version, pin.source), strict=True)))
        )
        changed.append(path)
    champion = (
        (champion_before, run_metrics(client, model_name, champion_before)) if champion_before else None
    )
    table = comparison_markdown(
        model_name, (challenger.version, challenger.metrics), champion, metric, higher_is_better
    )
    pr_body_path.write_text(pr_body(model_name, decision, pin.source, stacks, table))
    return RetrainResult(
        decision=decision, challenger_version=challenger.version, changed_files=tuple(changed)
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.retrain", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stack",
        dest="stacks",
        action="append",
        required=True,
        help="stack whose stacks/Pulumi.<stack>.yaml pins the winner (repeatable)",
    )
    parser.add_argument(
        "--artifacts-destination",
        metavar="URI",
        required=True,
        help="the tracking server's artifact destination (stack output artifactRoot), for a bucket URI pin",
    )
    parser.add_argument("--pr-body", type=Path, required=True, help="where to write the pull request's text")
    parser.add_argument("--work-dir", type=Path, default=Path.cwd(), help="the checkout (default: here)")
    parser.add_argument("--model-name", default=DEFAULT_MODEL_NAME, help="registered model name")
    parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT, help="MLflow experiment of the run")
    parser.add_argument("--metric", default=DEFAULT_METRIC, help="run metric the gate judges (default: mae)")
    parser.add_argument("--higher-is-better", action="store_true", help="a higher metric wins")
    parser.add_argument("--n-estimators", type=positive_int, default=50, help="trees in the forest")
    parser.add_argument("--n-rows", type=positive_int, default=2_000, help="rows of generated data")
    parser.add_argument("--seed", type=int, default=7, help="seed for the data and the forest")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    require_tracking_uri()
    try:
        result = retrain(
            MlflowClient(),
            work_dir=args.work_dir,
            stacks=args.stacks,
            pr_body_path=args.pr_body,
            model_name=args.model_name,
            metric=args.metric,
            higher_is_better=args.higher_is_better,
            artifacts_destination=args.artifacts_destination,
            experiment=args.experiment,
            n_estimators=args.n_estimators,
            n_rows=args.n_rows,
            seed=args.seed,
        )
    except (PromotionError, MlflowException, ValueError) as error:
        sys.exit(f"retraining failed: {error}")
    decision = result.decision
    if decision.promoted:
        print(
            f"{args.model_name} v{result.challenger_version} @{CHALLENGER_ALIAS}: promoted: {decision.reason}"
        )
        for path in result.changed_files:
            print(f"changed {path}")
        print(f"promoted=true\nmodelVersion={decision.champion_version}")
    else:
        challenger = f"{args.model_name} v{result.challenger_version} @{CHALLENGER_ALIAS}"
        print(f"{challenger}: not promoted: {decision.reason}")
        print("promoted=false")


if __name__ == "__main__":
    main()
