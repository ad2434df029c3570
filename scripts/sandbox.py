"""Short-lived sandbox stacks: create/update one, destroy one, sweep the expired ones.

    python -m scripts.sandbox up --cloud gcp --id pr42 --ttl 48h --config gcp:project=acme-dev ...
    python -m scripts.sandbox destroy --stack gcp-sandbox-pr42
    python -m scripts.sandbox sweep

A sandbox is a stack named `<cloud>-sandbox-<id>` that carries, in the backend, the stack tags
`mlops-stack:environment=sandbox` and `mlops-stack:expires-at=<RFC 3339, UTC>`. Tags live with the state
(DIY backends keep them next to it since pulumi v3.211.0), so any checkout, any runner, finds them: a
stack file exists only on the machine that wrote it. They are set before the first `up`, so a sandbox whose
first `up` failed halfway is still found, and destroyed, by the sweep.

Safety rule: nothing automatic may destroy a stack that is not a sandbox by BOTH its name and its tags.
`ensure_sandbox` is that rule, and `destroy_sandbox` (the only destroy path here: the `destroy` command and
the sweep both go through it) calls it right before destroying.

Each run writes the stack's config into this checkout's stack file again (cloud, environment, expiry, and
the extra config of `--config` / the SANDBOX_CONFIG variable, one KEY=VALUE a line): a destroy needs the
provider's config too. The backend and secrets provider come from the environment the CLI reads
(`PULUMI_BACKEND_URL`; `--secrets-provider` or `PULUMI_SECRETS_PROVIDER` for a new stack; for an existing
stack, its state's, with PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER=true): see scripts/bootstrap.py.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from infra.config import SANDBOX_STACK
from mlops_stack.pulumi_cli import PROJECT, AutomationPulumi, PulumiCli, PulumiError, StackLockedError

CLOUDS = ("gcp", "aws", "azure")
ENVIRONMENT_KEY = f"{PROJECT}:environment"
EXPIRES_KEY = f"{PROJECT}:sandboxExpiresAt"
CLOUD_KEY = f"{PROJECT}:cloud"
# Stack tags (backend): what marks a sandbox, its cloud and when it expires.
ENVIRONMENT_TAG = f"{PROJECT}:environment"
CLOUD_TAG = f"{PROJECT}:cloud"
EXPIRES_TAG = f"{PROJECT}:expires-at"
MAX_TTL = timedelta(days=14)
"""A sandbox that outlives two weeks is an environment nobody planned for: ask for a real stack."""
_TTL = re.compile(r"^(?P<amount>[1-9][0-9]*)(?P<unit>[mhd])$")
_TTL_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
PUBLIC_OUTPUTS = ("apiUrl", "trackingUri", "registry", "modelUri", "artifactRoot")


class SandboxError(ValueError):
    """Bad input or a refused operation, with what to do about it."""


class NotASandboxError(SandboxError):
    """The stack is not a sandbox by both name and config, so nothing automatic may destroy it."""


def short_name(stack: str) -> str:
    """`org/project/gcp-sandbox-pr1` -> `gcp-sandbox-pr1` (backends may list fully qualified names)."""
    return stack.rsplit("/", 1)[-1]


def sandbox_stack_name(cloud: str, sandbox_id: str) -> str:
    """The stack name for sandbox `sandbox_id` on `cloud`, validated."""
    name = f"{cloud}-sandbox-{sandbox_id}"
    if cloud not in CLOUDS:
        raise SandboxError(f"unknown cloud {cloud!r}: use one of {', '.join(CLOUDS)}")
    if not SANDBOX_STACK.match(name):
        raise SandboxError(
            f"invalid sandbox id {sandbox_id!r}: use 1-30 lowercase letters, digits or dashes, "
            "starting and ending with a letter or digit (e.g. pr42)"
        )
    return name


def parse_ttl(text: str) -> timedelta:
    """`90m`, `48h`, `3d` -> a timedelta no longer than `MAX_TTL`."""
    match = _TTL.match(text.strip())
    if not match:
        raise SandboxError(f"invalid TTL {text!r}: write a whole number and a unit m, h or d (e.g. 48h)")
    ttl = timedelta(**{_TTL_UNITS[match["unit"]]: int(match["amount"])})
    if ttl > MAX_TTL:
        raise SandboxError(f"TTL {text} is longer than the maximum of {MAX_TTL.days}d: use a real stack")
    return ttl


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, to the second: the form `sandboxExpiresAt` takes."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime:
    """An RFC 3339 timestamp with an explicit offset (`Z` or `+hh:mm`) -> an aware datetime."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise SandboxError(
            f"invalid timestamp {text!r}: expected RFC 3339, e.g. 2026-01-31T18:00:00Z"
        ) from error
    if moment.tzinfo is None:
        raise SandboxError(f"timestamp {text!r} has no UTC offset: end it with Z")
    return moment


def ensure_sandbox(pulumi: PulumiCli, stack: str) -> None:
    """THE guard: raise `NotASandboxError` unless `stack` is a sandbox by both its name and its tags.

    Every destroy path calls this immediately before destroying. The name alone is not enough (a stack
    can be misnamed) and neither are the tags (they are set only by this script, on sandbox-named stacks).
    """
    match = SANDBOX_STACK.match(short_name(stack))
    if not match:
        raise NotASandboxError(f"refusing to touch {stack!r}: its name is not <cloud>-sandbox-<id>")
    tags = pulumi.tags(stack)
    environment = tags.get(ENVIRONMENT_TAG)
    if environment != "sandbox":
        raise NotASandboxError(
            f"refusing to touch {stack!r}: its name says sandbox but its tag {ENVIRONMENT_TAG} is "
            f"{environment!r}; destroy it by hand if that is really intended"
        )
    cloud = tags.get(CLOUD_TAG)
    if cloud is not None and cloud != match["cloud"]:
        raise NotASandboxError(
            f"refusing to touch {stack!r}: its name says {match['cloud']} but its tag says {cloud}"
        )


def write_config(pulumi: PulumiCli, stack: str, expires_at: str, extra_config: dict[str, str]) -> None:
    """This checkout's stack file: everything the program (and, on destroy, the providers) reads."""
    cloud = stack.split("-", 1)[0]
    config = {CLOUD_KEY: cloud, ENVIRONMENT_KEY: "sandbox", EXPIRES_KEY: expires_at, **extra_config}
    for key, value in config.items():
        pulumi.set_config(stack, key, value)


def destroy_sandbox(pulumi: PulumiCli, stack: str, extra_config: dict[str, str] | None = None) -> bool:
    """Destroy a sandbox's resources and remove the stack. False if there was no such stack."""
    if stack not in pulumi.stack_names():
        return False
    ensure_sandbox(pulumi, stack)
    write_config(pulumi, stack, pulumi.tags(stack).get(EXPIRES_TAG, ""), extra_config or {})
    pulumi.destroy(stack)
    pulumi.remove_stack(stack)
    return True


def parse_config_pairs(pairs: Sequence[str]) -> dict[str, str]:
    """`key=value` arguments -> config; keys without a namespace go into the project namespace."""
    config: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise SandboxError(f"invalid --config {pair!r}: write KEY=VALUE, e.g. gcp:project=acme-dev")
        qualified = key if ":" in key else f"{PROJECT}:{key}"
        if qualified in (ENVIRONMENT_KEY, EXPIRES_KEY, CLOUD_KEY):
            raise SandboxError(f"--config {key} is set by this script (from --cloud and --ttl): drop it")
        config[qualified] = value
    return config


def up_sandbox(
    pulumi: PulumiCli,
    cloud: str,
    sandbox_id: str,
    ttl: timedelta,
    now: datetime,
    secrets_provider: str | None,
    extra_config: dict[str, str],
) -> tuple[str, dict[str, Any]]:
    """Create (or update) sandbox `sandbox_id`, push its expiry to now + ttl, deploy it, return outputs."""
    stack = sandbox_stack_name(cloud, sandbox_id)
    if stack in pulumi.stack_names():
        # An existing stack under a sandbox name must already be a sandbox: never turn a stack into one.
        ensure_sandbox(pulumi, stack)
    else:
        if not secrets_provider:
            raise SandboxError(
                "a new sandbox stack needs a secrets provider: pass --secrets-provider or set "
                "PULUMI_SECRETS_PROVIDER (the value scripts/bootstrap.py printed)"
            )
        pulumi.init_stack(stack, secrets_provider)
        pulumi.set_tag(stack, ENVIRONMENT_TAG, "sandbox")
        pulumi.set_tag(stack, CLOUD_TAG, cloud)
    expires_at = format_timestamp(now + ttl)
    # The tag first: if the update fails halfway, the sweep still knows when to remove what it left.
    pulumi.set_tag(stack, EXPIRES_TAG, expires_at)
    write_config(pulumi, stack, expires_at, extra_config)
    pulumi.up(stack)
    return stack, pulumi.outputs(stack)


@dataclass
class SweepReport:
    """What a sweep did with each stack it saw."""

    destroyed: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def sweep(pulumi: PulumiCli, now: datetime, extra_config: dict[str, str] | None = None) -> SweepReport:
    """Destroy every sandbox whose expiry tag is past; keep (and say why) everything else."""
    report = SweepReport()
    for stack in pulumi.stack_names():
        try:
            ensure_sandbox(pulumi, stack)
            expires_at = pulumi.tags(stack).get(EXPIRES_TAG)
            if expires_at is None:
                report.kept[stack] = f"sandbox without the tag {EXPIRES_TAG}: set it, or destroy it by hand"
                continue
            if parse_timestamp(expires_at) > now:
                report.kept[stack] = f"expires {expires_at}"
                continue
            destroy_sandbox(pulumi, stack, extra_config)
            report.destroyed.append(stack)
        except NotASandboxError as error:
            report.kept[stack] = str(error)
        except StackLockedError as error:
            # Another run is updating it (a push to its PR renews its expiry): next sweep.
            report.kept[stack] = f"in use, skipped: {error}"
        except (SandboxError, PulumiError) as error:
            # One broken sandbox must not stop the sweep of the others; the run still fails at the end.
            report.failed[stack] = str(error)
    return report


def comment_markdown(stack: str, outputs: dict[str, Any], expires_at: str) -> str:
    """The PR comment for a deployed sandbox: its public URLs and when it goes away."""
    rows = [f"| `{key}` | {outputs.get(key) or '_(not set yet)_'} |" for key in PUBLIC_OUTPUTS]
    return "\n".join(
        [
            f"### Sandbox `{stack}` is up",
            "",
            "| output | value |",
            "|---|---|",
            *rows,
            "",
            f"Destroyed automatically after **{expires_at}**, when this PR closes, or when the "
            "`sandbox` label is removed. Secrets (`trackingAdminPassword`, `apiKey`) stay in the stack: "
            f"`pulumi stack output --stack {stack} --show-secrets`.",
        ]
    )


CONFIG_HELP = "extra stack config (also read from SANDBOX_CONFIG, one KEY=VALUE a line)"


def config_from(arguments: Sequence[str], environ: Mapping[str, str]) -> dict[str, str]:
    """`--config` pairs after the SANDBOX_CONFIG variable's lines (blank lines ignored)."""
    lines = [line.strip() for line in environ.get("SANDBOX_CONFIG", "").splitlines() if line.strip()]
    return parse_config_pairs([*lines, *arguments])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scripts.sandbox", description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, default=Path.cwd(), help="directory holding Pulumi.yaml")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="create or update a sandbox stack and deploy it")
    up.add_argument("--cloud", required=True, choices=CLOUDS)
    up.add_argument("--id", required=True, dest="sandbox_id", help="e.g. pr42 (stack <cloud>-sandbox-<id>)")
    up.add_argument("--ttl", default="48h", help="lifetime from now: 90m, 48h, 3d (max 14d); default 48h")
    up.add_argument("--secrets-provider", default=os.environ.get("PULUMI_SECRETS_PROVIDER"))
    up.add_argument("--config", action="append", default=[], metavar="KEY=VALUE", help=CONFIG_HELP)
    up.add_argument("--comment-file", type=Path, help="write the PR comment (markdown) here")
    destroy = commands.add_parser("destroy", help="destroy a sandbox stack and remove it")
    destroy.add_argument("--stack", required=True)
    destroy.add_argument("--config", action="append", default=[], metavar="KEY=VALUE", help=CONFIG_HELP)
    sweep_parser = commands.add_parser("sweep", help="destroy every sandbox past its expiry")
    sweep_parser.add_argument("--config", action="append", default=[], metavar="KEY=VALUE", help=CONFIG_HELP)
    return parser


def main(
    argv: Sequence[str] | None = None, pulumi: PulumiCli | None = None, now: datetime | None = None
) -> int:
    """Command-line entry point; `pulumi` and `now` are injectable for tests."""
    args = _parser().parse_args(argv)
    pulumi = pulumi or AutomationPulumi(args.work_dir)
    now = now or datetime.now(UTC)
    try:
        extra_config = config_from(args.config, os.environ)
        if args.command == "up":
            stack, outputs = up_sandbox(
                pulumi,
                args.cloud,
                args.sandbox_id,
                parse_ttl(args.ttl),
                now,
                args.secrets_provider,
                extra_config,
            )
            comment = comment_markdown(stack, outputs, format_timestamp(now + parse_ttl(args.ttl)))
            if args.comment_file:
                args.comment_file.write_text(comment + "\n")
            print(comment)
        elif args.command == "destroy":
            found = destroy_sandbox(pulumi, args.stack, extra_config)
            print(
                f"destroyed and removed {args.stack}"
                if found
                else f"{args.stack} does not exist: nothing to do"
            )
        else:
            report = sweep(pulumi, now, extra_config)
            print(
                json.dumps(
                    {"destroyed": report.destroyed, "kept": report.kept, "failed": report.failed}, indent=2
                )
            )
            return 1 if report.failed else 0
    except (SandboxError, PulumiError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
