"""Roll out a model API revision: watch it, promote it, or roll it back in one step.

    python -m scripts.rollout status   --stack gcp-prod   # what serves, with what share, what served before
    python -m scripts.rollout bake     --stack gcp-prod   # watch a new revision, then promote or roll back
    python -m scripts.rollout promote  --stack gcp-prod   # give the new revision all traffic now
    python -m scripts.rollout rollback --stack gcp-prod   # re-pin the previous revision and deploy it

The stack records its rollout in the `apiRollout` output (infra/rollout.py): the revision deployed
(`current`: model version, model source, image, the platform's revision name), the one before it
(`previous`), and the `state` (canary, baking, promoted, rolledBack). Outputs live in the state backend, so
every checkout reads the same; the model pin lives in the checkout's stack file.

- `bake` does nothing unless the state is `canary` or `baking`. Then, for the rollout's `bakeMinutes`, it runs
  the smoke test and reads the stack's firing alerts every `--interval` seconds; the first failure rolls back,
  and a clean bake promotes. Exit status 0 when promoted or nothing to bake, 1 when rolled back or failed.
- `promote` runs `up` with `rolloutPromote=true` for that one update (the key is removed again afterwards).
- `rollback` writes the previous revision's `modelVersion` and `modelSource` (and `apiImage`, if this
  stack pins prebuilt images) into this checkout's stack file and runs `up`. It refuses when the stack
  records no previous revision, when it was just rolled back (again would redeploy the bad one), and when
  this checkout pins something other than what the stack serves. A rollback changes the stack file: commit
  it, or the next deploy from the repository pins the rolled-back version again. With `--only-while-baking`
  (the deploy workflow, after a failed smoke test) it rolls back only a revision still being rolled out.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from infra.rollout import ROLLOUT_OUTPUT, RevisionRecord, RolloutState
from mlops_stack.pulumi_cli import PROJECT, AutomationPulumi, PulumiCli, PulumiError
from scripts import smoke
from scripts.firing_alerts import AlertsUnreadableError, FiringAlerts, reader_for, rollback_alert_names

MODEL_VERSION = f"{PROJECT}:modelVersion"
MODEL_SOURCE = f"{PROJECT}:modelSource"
API_IMAGE = f"{PROJECT}:apiImage"
PROMOTE = f"{PROJECT}:rolloutPromote"
BAKING_STATES = (RolloutState.CANARY, RolloutState.BAKING)
DEFAULT_INTERVAL_SECONDS = 60.0


class RolloutError(RuntimeError):
    """The rollout step cannot be done; the message says why and what to do."""


class Watch(Protocol):
    """What `bake` checks each round: the problems it sees now (empty: healthy)."""

    def problems(self) -> list[str]: ...


@dataclass(frozen=True)
class Rollout:
    """The stack's `apiRollout` output, read back."""

    state: RolloutState
    current: RevisionRecord
    current_percent: int
    previous: RevisionRecord | None
    bake_minutes: int


def describe(revision: RevisionRecord) -> str:
    named = f", revision {revision.revision}" if revision.revision else ""
    return f"model v{revision.model_version} (image {revision.image}{named})"


def read_rollout(pulumi: PulumiCli, stack: str) -> Rollout:
    value: Any = pulumi.outputs(stack).get(ROLLOUT_OUTPUT)
    current = RevisionRecord.from_output(value.get("current")) if isinstance(value, dict) else None
    if not isinstance(value, dict) or current is None:
        raise RolloutError(
            f"stack {stack} has no {ROLLOUT_OUTPUT} output: no model API has been deployed there yet "
            "(pin a model version with modelVersion and modelSource, then run up)"
        )
    return Rollout(
        state=RolloutState(value.get("state") or RolloutState.PROMOTED),
        current=current,
        current_percent=int(value.get("currentPercent") or 100),
        previous=RevisionRecord.from_output(value.get("previous")),
        bake_minutes=int(value.get("bakeMinutes") or 0),
    )


def status(pulumi: PulumiCli, stack: str, say: Callable[[str], None] = print) -> Rollout:
    rollout = read_rollout(pulumi, stack)
    share = f"{rollout.current_percent}% of traffic"
    say(f"{stack}: {rollout.state.value}: {describe(rollout.current)} has {share}")
    if rollout.previous is not None:
        rest = 100 - rollout.current_percent
        say(f"  previous: {describe(rollout.previous)}" + (f", {rest}% of traffic" if rest else ""))
    else:
        say("  previous: none recorded (nothing to roll back to)")
    return rollout


def promote(pulumi: PulumiCli, stack: str, say: Callable[[str], None] = print) -> Rollout:
    """Give the revision being rolled out all traffic, and record it as promoted."""
    rollout = read_rollout(pulumi, stack)
    if rollout.state not in BAKING_STATES:
        raise RolloutError(
            f"stack {stack} is {rollout.state.value}: {describe(rollout.current)} already has all traffic"
        )
    # One update only: a key left in the stack file would promote the next canary at once.
    pulumi.set_config(stack, PROMOTE, "true")
    try:
        pulumi.up(stack)
    finally:
        pulumi.remove_config(stack, PROMOTE)
    after = read_rollout(pulumi, stack)
    say(f"{stack}: promoted {describe(after.current)}: it has {after.current_percent}% of traffic")
    return after


def rollback(
    pulumi: PulumiCli, stack: str, say: Callable[[str], None] = print, only_while_baking: bool = False
) -> Rollout:
    """Re-pin the previous revision in this checkout's stack file and deploy it. `only_while_baking`: only a
    revision still being rolled out (canary, baking); a promoted one is left alone (the deploy workflow's
    rollback after a failed smoke test: the failure may have nothing to do with the model)."""
    rollout = read_rollout(pulumi, stack)
    current, previous = rollout.current, rollout.previous
    if only_while_baking and rollout.state not in BAKING_STATES:
        say(f"{stack}: not rolling back: {rollout.state.value}, {describe(current)} is not being rolled out")
        return rollout
    if previous is None:
        raise RolloutError(
            f"stack {stack} records no revision before {describe(current)}: there is nothing to roll back "
            "to; pin another model version (modelVersion, modelSource) and run up"
        )
    if rollout.state is RolloutState.ROLLED_BACK:
        raise RolloutError(
            f"stack {stack} was already rolled back to {describe(current)}; rolling back again would "
            f"redeploy v{previous.model_version}, the version rolled back from. To do that on purpose, pin "
            "it (modelVersion, modelSource) and run up"
        )
    config = pulumi.config(stack)
    pinned = (config.get(MODEL_VERSION), config.get(MODEL_SOURCE))
    if pinned != (current.model_version, current.model_source):
        raise RolloutError(
            f"this checkout pins model v{pinned[0]} ({pinned[1]}) but stack {stack} serves "
            f"v{current.model_version} ({current.model_source}): deploy or discard that change first, so the "
            "rollback replaces what is really serving"
        )
    pulumi.set_config(stack, MODEL_VERSION, previous.model_version)
    pulumi.set_config(stack, MODEL_SOURCE, previous.model_source)
    pins_image = API_IMAGE in config
    if pins_image:
        pulumi.set_config(stack, API_IMAGE, previous.image)
    pulumi.up(stack)
    after = read_rollout(pulumi, stack)
    pinned_keys = "modelVersion, modelSource" + (", apiImage" if pins_image else "")
    say(
        f"{stack}: rolled back from {describe(current)} to {describe(after.current)}, which has "
        f"{after.current_percent}% of traffic.\n"
        f"This checkout's stack file now pins v{previous.model_version} ({pinned_keys}): commit "
        f"stacks/Pulumi.{stack}.yaml, or the next deploy from the repository pins "
        f"v{current.model_version} again."
    )
    return after


def bake(
    pulumi: PulumiCli,
    stack: str,
    watches: Sequence[Watch],
    interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
    say: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Watch a canary or baking revision for its bake time; promote it if every round was clean, roll it
    back at the first problem. True when promoted (or nothing to bake), False when rolled back."""
    rollout = read_rollout(pulumi, stack)
    if rollout.state not in BAKING_STATES:
        say(f"{stack}: nothing to bake: {rollout.state.value}, {describe(rollout.current)} has all traffic")
        return True
    say(
        f"{stack}: baking {describe(rollout.current)} at {rollout.current_percent}% of traffic for "
        f"{rollout.bake_minutes} min, checking every {interval_seconds:g} s"
    )
    deadline = clock() + rollout.bake_minutes * 60
    while True:
        problems = [problem for watch in watches for problem in watch.problems()]
        if problems:
            for problem in problems:
                say(f"  problem: {problem}")
            say(f"{stack}: rolling back {describe(rollout.current)}")
            rollback(pulumi, stack, say)
            return False
        remaining = deadline - clock()
        if remaining <= 0:
            break
        say(f"  healthy; {remaining / 60:.1f} min to go")
        sleep(min(interval_seconds, remaining))
    promote(pulumi, stack, say)
    return True


def smoke_targets(pulumi: PulumiCli, stack: str) -> dict[str, smoke.Target]:
    """What the bake smoke-tests: the API's URL and, during a canary, the canary's own URL (`canaryUrl`: a
    Cloud Run tag, a Container Apps label), so the new revision is checked every round, not 1 time in 10."""
    target = smoke.target_from_stack(pulumi, stack)
    value: Any = pulumi.outputs(stack).get(ROLLOUT_OUTPUT)
    canary_url = str(value.get("canaryUrl") or "") if isinstance(value, dict) else ""
    targets = {"API": target}
    if canary_url:
        targets["canary"] = dataclasses.replace(target, api_url=canary_url.rstrip("/"))
    return targets


class SmokeWatch:
    """The deploy's smoke test (scripts/smoke.py) on each of `smoke_targets`, one short attempt per round."""

    def __init__(self, pulumi: PulumiCli, stack: str, wait_seconds: float = 30.0) -> None:
        self._pulumi, self._stack, self._wait = pulumi, stack, wait_seconds

    def problems(self) -> list[str]:
        found = []
        for name, target in smoke_targets(self._pulumi, self._stack).items():
            try:
                smoke.run(target, self._wait)
            except smoke.SmokeError as error:
                found.append(f"smoke test of the {name} ({target.api_url}): {error}")
        return found


class AlertsWatch:
    """The stack's model API alerts that are firing (scripts/firing_alerts.py: server errors, latency,
    restarts). Alerts that cannot be read are reported and do not count as a problem: a rollback because
    monitoring was unreadable would punish the revision for the reader's fault."""

    def __init__(
        self, stack: str, reader: Callable[[], FiringAlerts], say: Callable[[str], None] = print
    ) -> None:
        self._stack, self._make_reader, self._say = stack, reader, say
        self._reader: FiringAlerts | None = None

    def problems(self) -> list[str]:
        try:
            if self._reader is None:
                self._reader = self._make_reader()
            firing = self._reader.firing(rollback_alert_names(self._stack))
        except AlertsUnreadableError as error:
            self._say(
                f"  note: cannot read {self._stack}'s alerts ({error}); this round checks the smoke test"
            )
            return []
        return [f"alert {name!r} is firing" for name in firing]


def main(argv: Sequence[str] | None = None, pulumi: PulumiCli | None = None) -> int:
    """Command-line entry point; `pulumi` is injectable for tests."""
    parser = argparse.ArgumentParser(prog="python -m scripts.rollout", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("status", "bake", "promote", "rollback"))
    parser.add_argument("--stack", required=True, help="e.g. gcp-prod")
    parser.add_argument(
        "--interval", type=float, default=DEFAULT_INTERVAL_SECONDS, help="bake: seconds between checks (60)"
    )
    parser.add_argument(
        "--only-while-baking",
        action="store_true",
        help="rollback: only a revision still being rolled out (state canary or baking)",
    )
    parser.add_argument("--work-dir", type=Path, default=Path.cwd(), help="the checkout (default: here)")
    args = parser.parse_args(argv)
    cli = pulumi or AutomationPulumi(args.work_dir)
    try:
        if args.command == "status":
            status(cli, args.stack)
        elif args.command == "promote":
            promote(cli, args.stack)
        elif args.command == "rollback":
            rollback(cli, args.stack, only_while_baking=args.only_while_baking)
        else:
            alerts = AlertsWatch(args.stack, lambda: reader_for(cli.config(args.stack), os.environ))
            watches: list[Watch] = [SmokeWatch(cli, args.stack), alerts]
            return 0 if bake(cli, args.stack, watches, args.interval) else 1
    except (RolloutError, PulumiError) as error:
        print(f"rollout {args.command} failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
