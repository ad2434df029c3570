"""Container Apps' own traffic split for a model API rollout (infra/rollout.py).

In single revision mode a new revision takes all traffic and the old one is deactivated; a split needs
multiple revision mode, where revisions stay active until deactivated and the ingress's `traffic` gives each
a weight, by `revisionName` or `latestRevision: true`, the weights summing to 100
(https://learn.microsoft.com/azure/container-apps/revisions#revision-modes,
https://learn.microsoft.com/azure/container-apps/traffic-splitting). The new revision is the latest one and
keeps the generated name `<app>--<suffix>`; the stack records it after the update for the next split.

A stack with `canaryPercent` 0 keeps single mode, as before rollouts existed. With a canary configured the app
stays in multiple mode even when one revision has all traffic: switching modes back and forth on every
rollout would deactivate and reactivate revisions for nothing. During a canary the latest revision carries the
traffic label `CANARY_TAG`, which gives it its own URL `https://<app>---<label>.<environment default domain>`
(https://learn.microsoft.com/azure/container-apps/traffic-splitting#use-cases, "labels").
"""

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.app as app

from infra.config import CanarySettings
from infra.rollout import CANARY_TAG, TrafficSplit


@dataclass(frozen=True)
class RevisionTraffic:
    mode: app.ActiveRevisionsMode
    weights: pulumi.Input[list[app.TrafficWeightArgs]] | None  # None: the platform's default (all to latest)


def weights(split: TrafficSplit) -> list[app.TrafficWeightArgs]:
    """The latest revision's weight and, during a canary, the previous revision's by name."""
    canary = split.previous_revision is not None
    result = [
        app.TrafficWeightArgs(
            latest_revision=True, weight=split.latest_percent, label=CANARY_TAG if canary else None
        )
    ]
    if split.previous_revision is not None:
        result.append(
            app.TrafficWeightArgs(revision_name=split.previous_revision, weight=split.previous_percent)
        )
    return result


def revision_traffic(canary: CanarySettings, split: pulumi.Output[TrafficSplit]) -> RevisionTraffic:
    if not canary.percent:
        return RevisionTraffic(app.ActiveRevisionsMode.SINGLE, None)
    return RevisionTraffic(app.ActiveRevisionsMode.MULTIPLE, split.apply(weights))
