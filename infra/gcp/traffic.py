"""Cloud Run's own traffic split for a model API rollout (infra/rollout.py).

A Cloud Run service's `traffic` lists targets, each a revision by name
(`TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION`) or whatever revision is newest
(`TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST`), with percentages that sum to 100; revisions stay after a new one
is deployed, so the previous one can keep serving by name
(https://cloud.google.com/run/docs/rollouts-rollbacks-traffic-migration, REST v2 `TrafficTarget`:
https://cloud.google.com/run/docs/reference/rest/v2/TrafficTarget). The new revision is the latest one: it
keeps Cloud Run's generated name, which the stack records after the update for the next split. During a
canary it is also tagged `CANARY_TAG`, which gives it its own URL, `https://<tag>---<service host>` (a tag on
the latest-revision target, as Knative's traffic examples tag `latestRevision: true`:
https://cloud.google.com/run/docs/rollouts-rollbacks-traffic-migration#tags).
"""

import pulumi_gcp.cloudrunv2 as cloudrunv2

from infra.rollout import CANARY_TAG, TrafficSplit

LATEST = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
BY_REVISION = "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"


def traffic_targets(split: TrafficSplit) -> list[cloudrunv2.ServiceTrafficArgs]:
    """The latest revision's share and, during a canary, the previous revision's by name."""
    canary = split.previous_revision is not None
    targets = [
        cloudrunv2.ServiceTrafficArgs(
            type=LATEST, percent=split.latest_percent, tag=CANARY_TAG if canary else None
        )
    ]
    if split.previous_revision is not None:
        targets.append(
            cloudrunv2.ServiceTrafficArgs(
                type=BY_REVISION, revision=split.previous_revision, percent=split.previous_percent
            )
        )
    return targets
