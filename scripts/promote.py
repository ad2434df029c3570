"""Move the `champion` alias to the `challenger` version when it scores better, and say why either way.

A version's score is the metric its training run logged (default: `mae`, lower is better). The first
challenger of a model becomes champion unopposed. Only aliases move: the deprecated stages are never used.

    python -m scripts.promote --model-name throughput                      # decide and report
    python -m scripts.promote --metric r2 --higher-is-better               # judge on another metric
    python -m scripts.promote --print-pin --artifacts-destination gs://b   # what a deploy pins
    python -m scripts.promote --print-pin --save-requirements             # ... and the image it needs

Exit code 0 whether or not the alias moved; non-zero only when the decision cannot be made (no
challenger, a version without the metric, the tracking server refusing us).
`--print-pin` prints `modelVersion=` and `modelSource=` lines, the values the Pulumi stacks pin as
`mlops-stack:modelVersion` and `mlops-stack:modelSource` (and the format `$GITHUB_OUTPUT` takes).
`--save-requirements` also writes the champion's own requirements.txt (what MLflow logged with it) to
`stacks/models/<name>/<version>/`, where the program builds the API image from: commit it with the pin.
"""

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import mlflow.artifacts
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.tracking import MlflowClient

from infra.config import model_environment
from scripts.train import CHALLENGER_ALIAS, DEFAULT_MODEL_NAME, require_tracking_uri

CHAMPION_ALIAS = "champion"
DEFAULT_METRIC = "mae"
# Where a tracking server that proxies artifacts says they are; the server maps it to its destination.
PROXIED_ARTIFACTS_SCHEME = "mlflow-artifacts:"


class PromotionError(RuntimeError):
    """The promotion could not be decided; the message says what is missing."""


@dataclass(frozen=True)
class PromotionDecision:
    """What promotion did, and why."""

    promoted: bool
    reason: str
    champion_version: str
    """The version holding `champion` after the decision."""


@dataclass(frozen=True)
class ChampionPin:
    """What a deployment pins: the champion's version, and where its model files are."""

    version: str
    source: str


def version_by_alias(client: MlflowClient, model_name: str, alias: str) -> str | None:
    """The version behind `alias`, or None if the alias (or the model) does not exist.

    Read from the model's alias map: asking the server for a missing alias is a 400 (like a malformed
    request), which a caller could not tell from a real error.
    """
    try:
        aliases = client.get_registered_model(model_name).aliases
    except MlflowException as error:
        if error.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return None
        raise
    version = aliases.get(alias)
    return None if version is None else str(version)


def version_metric(client: MlflowClient, model_name: str, version: str, metric: str) -> float:
    """The `metric` that the training run of `model_name` version `version` logged."""
    run_id = client.get_model_version(model_name, version).run_id
    if not run_id:
        raise PromotionError(f"{model_name} version {version} has no training run to read {metric!r} from")
    metrics = client.get_run(run_id).data.metrics
    if metric not in metrics:
        logged = ", ".join(sorted(metrics)) or "none"
        raise PromotionError(
            f"{model_name} version {version} (run {run_id}) logged no {metric!r} metric "
            f"(logged: {logged}); choose one of those with --metric"
        )
    return float(metrics[metric])


def promote(
    client: MlflowClient,
    model_name: str = DEFAULT_MODEL_NAME,
    metric: str = DEFAULT_METRIC,
    higher_is_better: bool = False,
) -> PromotionDecision:
    """Give `champion` to the `challenger` version if it beats the current champion on `metric`.

    A tie keeps the current champion: a new version must earn the switch.
    """
    challenger = version_by_alias(client, model_name, CHALLENGER_ALIAS)
    if challenger is None:
        raise PromotionError(
            f"model {model_name!r} has no @{CHALLENGER_ALIAS} version: "
            "train one first (python -m scripts.train)"
        )
    challenger_score = version_metric(client, model_name, challenger, metric)
    champion = version_by_alias(client, model_name, CHAMPION_ALIAS)
    if champion is None:
        client.set_registered_model_alias(model_name, CHAMPION_ALIAS, challenger)
        return PromotionDecision(
            promoted=True,
            reason=f"no @{CHAMPION_ALIAS} yet: version {challenger} "
            f"({metric}={challenger_score:.4f}) takes it",
            champion_version=challenger,
        )
    if champion == challenger:
        return PromotionDecision(
            promoted=False,
            reason=f"version {challenger} is already @{CHAMPION_ALIAS}: nothing to do",
            champion_version=champion,
        )
    champion_score = version_metric(client, model_name, champion, metric)
    better = challenger_score > champion_score if higher_is_better else challenger_score < champion_score
    direction = "higher" if higher_is_better else "lower"
    scores = (
        f"{metric}: challenger v{challenger}={challenger_score:.4f}, "
        f"champion v{champion}={champion_score:.4f}, {direction} is better"
    )
    if not better:
        return PromotionDecision(
            promoted=False,
            reason=f"challenger does not beat the champion ({scores})",
            champion_version=champion,
        )
    client.set_registered_model_alias(model_name, CHAMPION_ALIAS, challenger)
    return PromotionDecision(
        promoted=True,
        reason=f"challenger beats the champion ({scores}): version {challenger} is @{CHAMPION_ALIAS} now",
        champion_version=challenger,
    )


def champion_pin(
    client: MlflowClient, model_name: str, artifacts_destination: str | None = None
) -> ChampionPin:
    """The champion's version and the artifact-store URI of its model files.

    A tracking server that proxies artifacts reports them as `mlflow-artifacts:/...`; given the server's
    `--artifacts-destination` (the stacks' `artifactRoot`), that prefix is mapped onto it, so a deploy can
    load the model straight from the bucket without the tracking server.
    """
    version = version_by_alias(client, model_name, CHAMPION_ALIAS)
    if version is None:
        raise PromotionError(
            f"model {model_name!r} has no @{CHAMPION_ALIAS}: run `python -m scripts.promote` first"
        )
    source = client.get_model_version_download_uri(model_name, version)
    if artifacts_destination and source.startswith(PROXIED_ARTIFACTS_SCHEME):
        relative = source.removeprefix(PROXIED_ARTIFACTS_SCHEME).lstrip("/")
        source = f"{artifacts_destination.rstrip('/')}/{relative}"
    return ChampionPin(version=version, source=source)


def save_requirements(model_name: str, version: str, destination: Path) -> Path:
    """Copy the version's logged requirements.txt into `destination` (for a deploy:
    `model_environment(name, version)`, where the program builds the API image from)."""
    destination.mkdir(parents=True, exist_ok=True)
    downloaded = mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{model_name}/{version}/requirements.txt", dst_path=str(destination)
    )
    return Path(downloaded)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.promote", description=__doc__.splitlines()[0])
    parser.add_argument("--model-name", default=DEFAULT_MODEL_NAME, help="registered model name")
    parser.add_argument("--metric", default=DEFAULT_METRIC, help="run metric that decides (default: mae)")
    parser.add_argument(
        "--higher-is-better",
        action="store_true",
        help="a higher metric wins (default: lower wins, as for mae)",
    )
    parser.add_argument(
        "--print-pin",
        action="store_true",
        help="do not promote: print the champion's modelVersion= and modelSource= for a deploy to pin",
    )
    parser.add_argument(
        "--artifacts-destination",
        metavar="URI",
        help="with --print-pin: the tracking server's artifact destination (stack output artifactRoot), "
        "to turn mlflow-artifacts:/ URIs into bucket URIs",
    )
    parser.add_argument(
        "--save-requirements",
        action="store_true",
        help="with --print-pin: also write the champion's requirements.txt to "
        "stacks/models/<name>/<version>/",
    )
    args = parser.parse_args(argv)
    if (args.save_requirements or args.artifacts_destination) and not args.print_pin:
        parser.error("--save-requirements and --artifacts-destination go with --print-pin")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    require_tracking_uri()
    client = MlflowClient()
    try:
        if args.print_pin:
            pin = champion_pin(client, args.model_name, args.artifacts_destination)
            print(f"modelVersion={pin.version}\nmodelSource={pin.source}")
            if args.save_requirements:
                saved = save_requirements(
                    args.model_name, pin.version, model_environment(args.model_name, pin.version)
                )
                print(f"modelRequirements={saved}")
            return
        decision = promote(client, args.model_name, args.metric, args.higher_is_better)
    except (PromotionError, MlflowException) as error:
        sys.exit(f"promotion failed: {error}")
    verdict = "promoted" if decision.promoted else "not promoted"
    print(f"{args.model_name}: {verdict}: {decision.reason}")


if __name__ == "__main__":
    main()
