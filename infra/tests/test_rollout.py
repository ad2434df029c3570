"""Rollouts of the model API (infra/rollout.py): the plan from the recorded rollout and config, the config
rules, and what each cloud is told under mocks: canary off, canary on, promoted, and rolled back."""

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from pulumi.runtime import MockResourceArgs

from infra.config import CanarySettings, ConfigError, ModelPin
from infra.platform import load_stack_settings
from infra.rollout import ROLLOUT_OUTPUT, RevisionRecord, RolloutState, TrafficSplit, plan_rollout
from infra.tests.aws import conftest as aws
from infra.tests.azure import conftest as azure
from infra.tests.gcp import conftest as gcp
from testing.pulumi_program import ComputedOutputs, ProgramRun, run_program

STACK_REFERENCE = "pulumi:pulumi:StackReference"
OLD_IMAGE = "registry.example/model-api@sha256:" + "01" * 32
NEW_IMAGE = "registry.example/model-api@sha256:" + "02" * 32
PIN = ModelPin("throughput", 3, "gs://bucket/mlflow/1/models/m-3/artifacts")
V2 = RevisionRecord("2", "gs://bucket/mlflow/1/models/m-2/artifacts", OLD_IMAGE, "api-00001-old")
V3 = RevisionRecord("3", PIN.source, NEW_IMAGE, "api-00002-new")
CANARY = CanarySettings(percent=10, bake_minutes=15)
NO_CANARY = CanarySettings(percent=0, bake_minutes=0)


def recorded(state: RolloutState, current: RevisionRecord, previous: RevisionRecord | None) -> dict[str, Any]:
    return {
        "state": state.value,
        "current": current.to_output(),
        "previous": previous.to_output() if previous else None,
    }


# --- the plan ----------------------------------------------------------------------------------------------


def test_the_first_revision_takes_all_traffic_with_nothing_to_roll_back_to() -> None:
    plan = plan_rollout(None, PIN, None, CANARY)
    assert (plan.state, plan.previous, plan.split) == (RolloutState.PROMOTED, None, TrafficSplit(100, None))


def test_a_new_release_with_a_canary_splits_with_the_revision_that_served() -> None:
    plan = plan_rollout(recorded(RolloutState.PROMOTED, V2, None), PIN, None, CANARY)
    assert plan.state is RolloutState.CANARY
    assert plan.previous == V2
    assert plan.split == TrafficSplit(10, "api-00001-old")
    assert plan.split.previous_percent == 90


def test_a_new_release_without_a_canary_takes_all_traffic_and_bakes_only_if_configured() -> None:
    baking = plan_rollout(recorded(RolloutState.PROMOTED, V2, None), PIN, None, CanarySettings(0, 10))
    assert (baking.state, baking.previous, baking.split) == (RolloutState.BAKING, V2, TrafficSplit(100, None))
    at_once = plan_rollout(recorded(RolloutState.PROMOTED, V2, None), PIN, None, NO_CANARY)
    assert (at_once.state, at_once.previous) == (RolloutState.PROMOTED, V2)


def test_the_same_release_again_carries_the_canary_on_until_promoted() -> None:
    during = recorded(RolloutState.CANARY, V3, V2)
    again = plan_rollout(during, PIN, None, CANARY)
    assert (again.state, again.previous, again.split) == (
        RolloutState.CANARY,
        V2,
        TrafficSplit(10, V2.revision),
    )
    promoted = plan_rollout(during, PIN, None, CanarySettings(10, 15, promote=True))
    assert (promoted.state, promoted.previous, promoted.split) == (
        RolloutState.PROMOTED,
        V2,
        TrafficSplit(100, None),
    )
    # Promotion is remembered: the next `up` (another checkout, no rolloutPromote) keeps it.
    after = plan_rollout(promoted.to_output(V3, 15), PIN, None, CANARY)
    assert after.state is RolloutState.PROMOTED


def test_turning_the_canary_off_mid_canary_gives_the_new_revision_all_traffic() -> None:
    plan = plan_rollout(recorded(RolloutState.CANARY, V3, V2), PIN, None, CanarySettings(0, 10))
    assert (plan.state, plan.split) == (RolloutState.BAKING, TrafficSplit(100, None))


def test_a_new_release_during_a_canary_is_measured_against_the_last_proven_revision() -> None:
    v4 = ModelPin("throughput", 4, "gs://bucket/mlflow/1/models/m-4/artifacts")
    plan = plan_rollout(recorded(RolloutState.CANARY, V3, V2), v4, None, CANARY)
    assert (plan.state, plan.previous, plan.split) == (RolloutState.CANARY, V2, TrafficSplit(10, V2.revision))
    after_promotion = plan_rollout(recorded(RolloutState.PROMOTED, V3, V2), v4, None, CANARY)
    assert after_promotion.previous == V3


def test_going_back_to_the_previous_release_is_a_rollback_with_all_traffic_at_once() -> None:
    back_to_v2 = ModelPin("throughput", 2, V2.model_source)
    plan = plan_rollout(recorded(RolloutState.CANARY, V3, V2), back_to_v2, None, CANARY)
    assert (plan.state, plan.previous, plan.split) == (RolloutState.ROLLED_BACK, V3, TrafficSplit(100, None))


def test_a_pinned_image_is_part_of_the_release_a_built_one_is_not() -> None:
    during = recorded(RolloutState.PROMOTED, V3, V2)
    assert plan_rollout(during, PIN, None, CANARY).state is RolloutState.PROMOTED  # rebuilt: same release
    assert plan_rollout(during, PIN, NEW_IMAGE, CANARY).state is RolloutState.PROMOTED
    other_image = "registry.example/model-api@sha256:" + "03" * 32
    assert plan_rollout(during, PIN, other_image, CANARY).state is RolloutState.CANARY


def test_no_split_without_the_previous_revisions_name() -> None:
    """A revision recorded before rollouts existed (or AWS, which has no split) has no name to keep."""
    nameless = RevisionRecord("2", V2.model_source, OLD_IMAGE, "")
    plan = plan_rollout(recorded(RolloutState.PROMOTED, nameless, None), PIN, None, CANARY)
    assert (plan.state, plan.split) == (RolloutState.BAKING, TrafficSplit(100, None))


# --- config ------------------------------------------------------------------------------------------------


def problems(config: Mapping[str, str], stack: str) -> str:
    with pytest.raises(ConfigError) as raised:
        load_stack_settings(read=config.get, stack=stack)
    return str(raised.value)


def test_canary_settings_are_read_with_per_environment_defaults() -> None:
    prod = load_stack_settings(read=gcp.config_for("prod").get, stack="gcp-prod")
    assert prod.canary == CanarySettings(percent=0, bake_minutes=15)
    assert load_stack_settings(read=gcp.config_for("dev").get, stack="gcp-dev").canary == NO_CANARY
    config = gcp.config_for("dev", canaryPercent="20", canaryBakeMinutes="5", rolloutPromote="true")
    dev = load_stack_settings(read=config.get, stack="gcp-dev")
    assert dev.canary == CanarySettings(percent=20, bake_minutes=5, promote=True)


def test_a_canary_without_a_bake_would_never_be_promoted() -> None:
    message = problems(gcp.config_for("dev", canaryPercent="20"), "gcp-dev")
    assert "mlops-stack:canaryBakeMinutes: is 0 but canaryPercent is 20" in message


def test_canary_share_is_bounded() -> None:
    message = problems(gcp.config_for("prod", canaryPercent="60"), "gcp-prod")
    assert "mlops-stack:canaryPercent: 60 is out of range; give a number from 0 to 50" in message


def test_sandboxes_roll_out_at_once() -> None:
    message = problems(gcp.config_for("sandbox", canaryBakeMinutes="5"), "gcp-sandbox-alice")
    assert "mlops-stack:canaryBakeMinutes: is set on a sandbox" in message


def test_aws_refuses_a_canary_share_and_says_what_express_does_instead() -> None:
    message = problems(aws.config_for("prod", canaryPercent="10"), "aws-prod")
    assert "mlops-stack:canaryPercent: is 10 but Express Mode runs its own canary" in message
    assert "canaryBakeMinutes still watches" in message


# --- each cloud under mocks --------------------------------------------------------------------------------


def with_recorded(
    base: ComputedOutputs, rollout: Mapping[str, Any] | None, revision: dict[str, dict[str, str]]
) -> ComputedOutputs:
    """The cloud's computed outputs, plus the stack's own recorded `apiRollout` (what the StackReference
    reads) and the platform's name for the revision this update deploys."""

    def outputs(args: MockResourceArgs) -> Mapping[str, Any]:
        if args.typ == STACK_REFERENCE:
            return {"outputs": {ROLLOUT_OUTPUT: rollout} if rollout else {}, "secretOutputNames": []}
        return {**base(args), **revision.get(args.typ, {})}

    return outputs


def served_before(pinned: Mapping[str, str | None]) -> RevisionRecord:
    """Another version than the config pins (in another model directory), as a revision that served."""
    version, source = pinned_value(pinned, "modelVersion"), pinned_value(pinned, "modelSource")
    return RevisionRecord(
        str(int(version) + 1), source.replace("/1/", "/0/"), OLD_IMAGE, "model-api--old0001"
    )


def deployed_now(pinned: Mapping[str, str | None], revision: str) -> RevisionRecord:
    """The revision of the config's own pin, as an earlier `up` recorded it."""
    version, source = pinned_value(pinned, "modelVersion"), pinned_value(pinned, "modelSource")
    return RevisionRecord(version, source, NEW_IMAGE, revision)


def pinned_value(config: Mapping[str, str | None], key: str) -> str:
    """A project key of a test config, given bare (GCP's helpers) or with its namespace (AWS's, Azure's)."""
    return str(config.get(key) or config[f"mlops-stack:{key}"])


GCP_SERVICE = "gcp:cloudrunv2/service:Service"
GCP_NEW_REVISION = {GCP_SERVICE: {"latestReadyRevision": "gcp-dev-api-00002-new"}}


def run_gcp(rollout: Mapping[str, Any] | None, **overrides: str) -> ProgramRun:
    config = gcp.config_for("dev", **gcp.with_model("dev"), **overrides)
    outputs = with_recorded(gcp.gcp_outputs, rollout, GCP_NEW_REVISION)
    return run_program(config, "gcp-dev", outputs, gcp.gcp_calls)


def gcp_api_service(run: ProgramRun) -> dict[str, Any]:
    (service,) = [s for s in run.of_type(GCP_SERVICE) if "-api" in s.name]
    return service.inputs


def gcp_previous() -> RevisionRecord:
    return served_before(gcp.with_model("dev"))


def test_gcp_reads_its_own_stacks_recorded_rollout() -> None:
    run = run_gcp(None)
    (reference,) = run.of_type(STACK_REFERENCE)
    assert reference.inputs["name"].endswith("/mlops-stack/gcp-dev")
    assert run.outputs[ROLLOUT_OUTPUT]["state"] == "promoted"
    assert run.outputs[ROLLOUT_OUTPUT]["current"]["revision"] == "gcp-dev-api-00002-new"


def test_gcp_canary_off_sends_all_traffic_to_the_latest_revision() -> None:
    run = run_gcp(recorded(RolloutState.PROMOTED, gcp_previous(), None))
    assert gcp_api_service(run)["traffics"] == [
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}
    ]
    rollout = run.outputs[ROLLOUT_OUTPUT]
    assert (rollout["state"], rollout["currentPercent"]) == ("promoted", 100)
    assert rollout["previous"] == gcp_previous().to_output()  # kept for a rollback


def test_gcp_canary_on_gives_the_new_revision_its_share_and_the_previous_the_rest() -> None:
    run = run_gcp(
        recorded(RolloutState.PROMOTED, gcp_previous(), None), canaryPercent="10", canaryBakeMinutes="15"
    )
    assert gcp_api_service(run)["traffics"] == [
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 10, "tag": "canary"},
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "model-api--old0001", "percent": 90},
    ]
    rollout = run.outputs[ROLLOUT_OUTPUT]
    assert (rollout["state"], rollout["currentPercent"]) == ("canary", 10)
    assert rollout["current"]["modelVersion"] == pinned_value(gcp.with_model("dev"), "modelVersion")
    assert rollout["current"]["revision"] == "gcp-dev-api-00002-new"
    assert rollout["current"]["image"].endswith(gcp.DIGEST)
    # The canary's own URL: Cloud Run's tagged deterministic host.
    host = f"{gcp.REGION}.run.app"
    assert rollout["canaryUrl"] == f"https://canary---gcp-dev-api-{gcp.PROJECT_NUMBER}.{host}"


def test_gcp_promoted_gives_the_new_revision_all_traffic() -> None:
    current = deployed_now(gcp.with_model("dev"), "gcp-dev-api-00002-new")
    canary = recorded(RolloutState.CANARY, current, gcp_previous())
    run = run_gcp(canary, canaryPercent="10", canaryBakeMinutes="15", rolloutPromote="true")
    assert gcp_api_service(run)["traffics"] == [
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}
    ]
    assert run.outputs[ROLLOUT_OUTPUT]["state"] == "promoted"
    assert run.outputs[ROLLOUT_OUTPUT]["previous"] == gcp_previous().to_output()
    assert run.outputs[ROLLOUT_OUTPUT]["canaryUrl"] == ""


AZURE_APP = "azure-native:app:ContainerApp"
AZURE_NEW_REVISION = {AZURE_APP: {"latestReadyRevisionName": "model-api--new0002"}}


def run_azure(rollout: Mapping[str, Any] | None, **overrides: str) -> ProgramRun:
    config = azure.with_model("dev", **overrides)
    return azure.run_azure(config, "azure-dev", with_recorded(lambda _: {}, rollout, AZURE_NEW_REVISION)).run


def azure_api_configuration(run: ProgramRun) -> dict[str, Any]:
    (app,) = [a for a in run.of_type(AZURE_APP) if "-api" in a.name]
    return dict(app.inputs["configuration"])


def azure_previous() -> RevisionRecord:
    return served_before(azure.with_model("dev"))


def test_azure_canary_off_keeps_single_revision_mode() -> None:
    run = run_azure(recorded(RolloutState.PROMOTED, azure_previous(), None))
    configuration = azure_api_configuration(run)
    assert configuration["activeRevisionsMode"] == "Single"
    assert "traffic" not in configuration["ingress"]
    assert run.outputs[ROLLOUT_OUTPUT]["state"] == "promoted"


def test_azure_canary_on_weighs_the_new_revision_against_the_previous_one() -> None:
    run = run_azure(
        recorded(RolloutState.PROMOTED, azure_previous(), None), canaryPercent="25", canaryBakeMinutes="10"
    )
    configuration = azure_api_configuration(run)
    assert configuration["activeRevisionsMode"] == "Multiple"
    assert configuration["ingress"]["traffic"] == [
        {"latestRevision": True, "weight": 25, "label": "canary"},
        {"revisionName": "model-api--old0001", "weight": 75, "latestRevision": False},
    ]
    rollout = run.outputs[ROLLOUT_OUTPUT]
    assert (rollout["state"], rollout["currentPercent"]) == ("canary", 25)
    assert rollout["current"]["revision"] == "model-api--new0002"
    assert rollout["canaryUrl"] == f"https://azure-dev-model-api---canary.{azure.DEFAULT_DOMAIN}"


def test_azure_promoted_gives_the_latest_revision_all_traffic_in_multiple_mode() -> None:
    current = deployed_now(azure.with_model("dev"), "model-api--new0002")
    canary = recorded(RolloutState.CANARY, current, azure_previous())
    run = run_azure(canary, canaryPercent="25", canaryBakeMinutes="10", rolloutPromote="true")
    configuration = azure_api_configuration(run)
    assert configuration["activeRevisionsMode"] == "Multiple"
    assert configuration["ingress"]["traffic"] == [{"latestRevision": True, "weight": 100}]
    assert run.outputs[ROLLOUT_OUTPUT]["state"] == "promoted"


AWS_SERVICE = "aws:ecs/expressGatewayService:ExpressGatewayService"
AWS_REVISION_ARN = f"arn:aws:ecs:{aws.REGION}:{aws.ACCOUNT_ID}:service-revision/c/s/2"


def run_aws(rollout: Mapping[str, Any] | None, **overrides: str) -> ProgramRun:
    config = aws.with_model("prod", **overrides)
    outputs: Callable[[MockResourceArgs], Mapping[str, Any]] = with_recorded(
        aws.outputs_for, rollout, {AWS_SERVICE: {"serviceRevisionArn": AWS_REVISION_ARN}}
    )
    return run_program(config, "aws-prod", outputs, aws.calls)


def test_aws_watches_a_new_revision_at_full_traffic_and_records_it() -> None:
    """Express Mode splits by itself (5% for 3 minutes); the stack records the revision for a rollback and
    the deploy workflow bakes it at full traffic (prod's default canaryBakeMinutes)."""
    previous = served_before(aws.with_model("prod"))
    run = run_aws(recorded(RolloutState.PROMOTED, previous, None))
    rollout = run.outputs[ROLLOUT_OUTPUT]
    assert (rollout["state"], rollout["currentPercent"]) == ("baking", 100)
    assert rollout["current"]["revision"] == AWS_REVISION_ARN
    assert rollout["previous"] == previous.to_output()


def test_the_canary_tag_fits_cloud_runs_tagged_host_for_the_longest_service_name() -> None:
    """`<tag>---<service>-<project number>` must be one DNS label (63) for the tagged URL to exist, with room
    for a 13-digit project number (https://cloud.google.com/run/docs/triggering/https-request)."""
    from infra.gcp.cloud_run import MAX_SERVICE_NAME
    from infra.rollout import CANARY_TAG

    assert len(f"{CANARY_TAG}---") + MAX_SERVICE_NAME + len("-") + 13 <= 63
