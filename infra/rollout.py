"""Rollouts of the model API: which revision gets how much traffic, and what the stack keeps for a rollback.

A *revision* is what one `up` deploys for the API: an image (by digest; with the model baked in, the image is
the model) and the model pin it was built for (`modelVersion` + `modelSource`). Each platform names it:
a Cloud Run revision, a Container Apps revision, an ECS service revision.

**What the stack remembers, and where.** The stack output `apiRollout` (`ROLLOUT_OUTPUT`) holds the revision
this `up` deployed (`current`), the one that served before it (`previous`), and the rollout's `state`. Outputs
live in the state backend, so every checkout (a laptop, each workflow run) sees the same; config lives in
the checkout's stack file, and a workflow's checkout is thrown away, so it could not remember a revision
that only a workflow deployed. The program reads its own previous `apiRollout` through a `StackReference`
to its own stack (`recorded_rollout`) and works out the next one (`plan_rollout`): plain `pulumi up` and
`pulumi preview` keep it right, with no script around them. The platform's own revision name is recorded
from the service after the update, so the next canary can keep the previous revision in traffic by name;
new revisions take Cloud Run's and Container Apps' generated names (no name to keep stable ourselves).

**States** (`RolloutState`):

- `canary`: a new revision was deployed with `canaryPercent` > 0 (GCP, Azure): it gets that share, the
  previous revision keeps the rest, by the platform's own split (`TrafficSplit`).
- `baking`: a new revision has all the traffic (no split configured, or AWS, where Express Mode runs its own
  fixed canary first) and `canaryBakeMinutes` > 0: the deploy workflow is watching it.
- `promoted`: the current revision has all the traffic and was watched (or nothing was configured to watch).
- `rolledBack`: the pin went back to the previous revision (`scripts/rollout.py rollback`); it takes all
  the traffic at once: it served before, a canary would only keep the bad revision in traffic longer.

`scripts/rollout.py` drives the rest: `bake` watches a `canary`/`baking` revision for `canaryBakeMinutes`
(the smoke test and the stack's alerts), then `promote` (an `up` with `rolloutPromote=true`) or `rollback`
(re-pin `previous` in the stack file and `up`).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pulumi

from infra.config import CanarySettings, ModelPin, StackSettings

ROLLOUT_OUTPUT = "apiRollout"
FULL_TRAFFIC = 100
# During a canary the new revision also answers on a URL of its own (a Cloud Run traffic tag, a Container Apps
# traffic label), recorded as `canaryUrl`, so the bake can smoke-test the canary itself rather than a 10%
# chance of it. Short: Cloud Run's tagged host `<tag>---<service>-<project number>` must fit one DNS label.
CANARY_TAG = "canary"


class RolloutState(StrEnum):
    CANARY = "canary"
    BAKING = "baking"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolledBack"


@dataclass(frozen=True)
class RevisionRecord:
    """One deployed revision of the API, as the stack output records it."""

    model_version: str
    model_source: str
    image: str  # the image reference deployed, by digest
    revision: str  # the platform's name for it ("" until the platform reports one)

    def to_output(self) -> dict[str, str]:
        return {
            "modelVersion": self.model_version,
            "modelSource": self.model_source,
            "image": self.image,
            "revision": self.revision,
        }

    @staticmethod
    def from_output(value: Mapping[str, Any] | None) -> "RevisionRecord | None":
        if not value or not value.get("modelVersion"):
            return None
        return RevisionRecord(
            model_version=str(value["modelVersion"]),
            model_source=str(value.get("modelSource") or ""),
            image=str(value.get("image") or ""),
            revision=str(value.get("revision") or ""),
        )

    def is_release(self, pin: ModelPin, pinned_image: str | None) -> bool:
        """Whether this record is the release the config pins now: the same model version and source, and the
        same image when the stack pins a prebuilt one (`apiImage`). An image this program builds is not
        compared: rebuilding the same model and code need not give the same digest."""
        same_model = (self.model_version, self.model_source) == (str(pin.version), pin.source)
        return same_model and (pinned_image is None or self.image == pinned_image)


@dataclass(frozen=True)
class Rollout:
    """What this `up` does with traffic, and what it will record."""

    state: RolloutState
    previous: RevisionRecord | None  # the revision that served before the one this `up` deploys
    canary_percent: int  # the current revision's share while `state` is canary; else it has all traffic

    @property
    def split(self) -> "TrafficSplit":
        if self.state is RolloutState.CANARY and self.previous is not None and self.previous.revision:
            return TrafficSplit(self.canary_percent, self.previous.revision)
        return TrafficSplit(FULL_TRAFFIC, None)

    def to_output(self, current: RevisionRecord, bake_minutes: int, canary_url: str = "") -> dict[str, Any]:
        """`apiRollout`: the state, the revision deployed and its share, the one before, and how long the
        deploy workflow watches a `canary` or `baking` revision (`canaryBakeMinutes`)."""
        split = self.split
        return {
            "state": self.state.value,
            "current": current.to_output(),
            "currentPercent": split.latest_percent,
            "previous": self.previous.to_output() if self.previous else None,
            "bakeMinutes": bake_minutes,
            "canaryUrl": canary_url if split.previous_revision is not None else "",
        }


@dataclass(frozen=True)
class TrafficSplit:
    """The traffic the platform is told about: the latest revision's share, and the previous revision (by the
    platform's name) that keeps the rest, if any."""

    latest_percent: int
    previous_revision: str | None

    @property
    def previous_percent(self) -> int:
        return FULL_TRAFFIC - self.latest_percent


def plan_rollout(
    recorded: Mapping[str, Any] | None, pin: ModelPin, pinned_image: str | None, canary: CanarySettings
) -> Rollout:
    """The next rollout, from the recorded one (`apiRollout` of the last `up`; None on the first) and
    config."""
    recorded = recorded or {}
    current = RevisionRecord.from_output(recorded.get("current"))
    previous = RevisionRecord.from_output(recorded.get("previous"))
    if current is None:
        # The first revision: there is nothing to split with, nor to roll back to.
        return Rollout(RolloutState.PROMOTED, None, FULL_TRAFFIC)
    if current.is_release(pin, pinned_image):
        # The same release again (an unrelated change, a re-run): the rollout carries on where it was.
        state = RolloutState(recorded.get("state") or RolloutState.PROMOTED)
        if canary.promote and state in (RolloutState.CANARY, RolloutState.BAKING):
            state = RolloutState.PROMOTED
        if state is RolloutState.CANARY and not canary.percent:
            state = RolloutState.BAKING if canary.bake_minutes else RolloutState.PROMOTED
        return Rollout(state, previous, canary.percent)
    if previous is not None and previous.is_release(pin, pinned_image):
        # Back to the revision that served before: all traffic at once, and the one left is remembered.
        return Rollout(RolloutState.ROLLED_BACK, current, FULL_TRAFFIC)
    # A new release. What it is measured against, and rolled back to, is the last revision that proved itself:
    # the current one, unless it is itself still unproven (a canary or baking), then the one before it.
    unproven = RolloutState(recorded.get("state") or RolloutState.PROMOTED) in (
        RolloutState.CANARY,
        RolloutState.BAKING,
    )
    last_good = previous if unproven and previous is not None else current
    if canary.percent and last_good.revision:
        return Rollout(RolloutState.CANARY, last_good, canary.percent)
    state = RolloutState.BAKING if canary.bake_minutes else RolloutState.PROMOTED
    return Rollout(state, last_good, FULL_TRAFFIC)


def recorded_rollout(name: str, parent: pulumi.Resource) -> pulumi.Output[Mapping[str, Any] | None]:
    """This stack's own `apiRollout` output from its last update (None before the first), read through a
    `StackReference` to this very stack. `organization` is the DIY backends' fixed organization name
    (https://www.pulumi.com/docs/iac/concepts/stacks/: "For DIY backend, the orgName portion of the stack
    name must always be the constant value organization"), which `get_organization()` returns there."""
    own_stack = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    reference = pulumi.StackReference(name, stack_name=own_stack, opts=pulumi.ResourceOptions(parent=parent))
    recorded: pulumi.Output[Mapping[str, Any] | None] = reference.get_output(ROLLOUT_OUTPUT)
    return recorded


class ApiRollout:
    """The rollout of one `up`: its plan (an Output: it waits for the recorded rollout) and the split each
    platform turns into its own traffic settings."""

    def __init__(self, name: str, settings: StackSettings, pin: ModelPin, parent: pulumi.Resource) -> None:
        self.plan: pulumi.Output[Rollout] = recorded_rollout(f"{name}-recorded", parent).apply(
            lambda recorded: plan_rollout(recorded, pin, settings.api_image, settings.canary)
        )
        self.pin = pin
        self.bake_minutes = settings.canary.bake_minutes
        self.split: pulumi.Output[TrafficSplit] = self.plan.apply(lambda plan: plan.split)

    def output(
        self,
        image: pulumi.Input[str],
        revision: pulumi.Input[str | None],
        canary_url: pulumi.Input[str] = "",
    ) -> pulumi.Output[Any]:
        """`apiRollout`, with the image and the platform's revision name this `up` deployed, and the URL the
        latest revision answers on by its `CANARY_TAG` (recorded during a canary only)."""
        pin, bake_minutes = self.pin, self.bake_minutes
        return pulumi.Output.all(self.plan, image, revision, canary_url).apply(
            lambda values: values[0].to_output(
                RevisionRecord(str(pin.version), pin.source, str(values[1]), str(values[2] or "")),
                bake_minutes,
                str(values[3] or ""),
            )
        )
