"""The few Pulumi operations our scripts need, behind one small interface.

The Pulumi CLI cannot be installed everywhere (nor can the Automation API, which drives the CLI), so
`bootstrap`, `sandbox` and `smoke` talk to Pulumi only through `PulumiCli`. `SubprocessPulumiCli` is the
real implementation: it runs the `pulumi` executable with `--json` where the CLI offers it and
`--non-interactive` everywhere, so a missing answer fails instead of hanging a CI job. Tests use a fake.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

PROJECT = "mlops-stack"
"""The Pulumi project name (Pulumi.yaml); project config keys live in this namespace."""


class PulumiError(RuntimeError):
    """A pulumi command failed; the message carries the command and what the CLI said."""


class PulumiCli(Protocol):
    """What our scripts ask of Pulumi. Every method names its stack explicitly: no hidden selection."""

    def stack_names(self) -> list[str]:
        """The names of the project's stacks in the current backend."""
        ...

    def init_stack(self, stack: str, secrets_provider: str) -> None:
        """Create `stack`, encrypting its secrets with `secrets_provider` (a KMS URL)."""
        ...

    def select_stack(self, stack: str) -> None:
        """Make `stack` the current stack of the working directory."""
        ...

    def config(self, stack: str) -> dict[str, str]:
        """The stack's config as `namespace:key -> value` (secret values stay encrypted: `[secret]`)."""
        ...

    def set_config(self, stack: str, key: str, value: str) -> None:
        """Set one plain (non-secret) config value, e.g. `mlops-stack:environment`."""
        ...

    def up(self, stack: str) -> None:
        """Deploy the stack without prompting."""
        ...

    def destroy(self, stack: str) -> None:
        """Delete every resource of the stack without prompting (callers guard this)."""
        ...

    def remove_stack(self, stack: str) -> None:
        """Remove the (empty) stack and its config from the backend."""
        ...

    def outputs(self, stack: str, show_secrets: bool = False) -> dict[str, Any]:
        """The stack outputs; secret outputs are only decrypted when `show_secrets` is set."""
        ...


class SubprocessPulumiCli:
    """`PulumiCli` over the `pulumi` executable.

    `backend_url` (e.g. `gs://team-state`) is passed as `PULUMI_BACKEND_URL`, which the CLI reads instead
    of a prior `pulumi login`, so one process can drive a backend without touching the user's login.
    """

    def __init__(
        self,
        work_dir: Path,
        backend_url: str | None = None,
        executable: str = "pulumi",
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._work_dir = work_dir
        self._executable = executable
        self._env = dict(os.environ if environ is None else environ)
        if backend_url:
            self._env["PULUMI_BACKEND_URL"] = backend_url
        # CI logs are read by people: no colour codes, no update nag.
        self._env.setdefault("PULUMI_SKIP_UPDATE_CHECK", "true")

    def _run(self, *args: str) -> str:
        command = [self._executable, *args, "--non-interactive"]
        try:
            completed = subprocess.run(
                command, cwd=self._work_dir, env=self._env, capture_output=True, text=True, check=False
            )
        except FileNotFoundError as error:
            raise PulumiError(
                f"the Pulumi CLI ({self._executable!r}) is not installed or not on PATH: "
                "install it from pulumi.com/docs/install, or run this in a workflow that sets it up"
            ) from error
        if completed.returncode != 0:
            raise PulumiError(f"`{' '.join(command)}` failed: {completed.stderr.strip() or completed.stdout}")
        return completed.stdout

    def _json(self, *args: str) -> Any:
        return json.loads(self._run(*args, "--json") or "null")

    def stack_names(self) -> list[str]:
        return [str(entry["name"]) for entry in self._json("stack", "ls") or []]

    def init_stack(self, stack: str, secrets_provider: str) -> None:
        self._run("stack", "init", stack, "--secrets-provider", secrets_provider)

    def select_stack(self, stack: str) -> None:
        self._run("stack", "select", stack)

    def config(self, stack: str) -> dict[str, str]:
        entries: Mapping[str, Mapping[str, Any]] = self._json("config", "--stack", stack) or {}
        return {
            key: "[secret]" if entry.get("secret") else str(entry.get("value"))
            for key, entry in entries.items()
        }

    def set_config(self, stack: str, key: str, value: str) -> None:
        # `--` so a value that starts with a dash is not read as a flag.
        self._run("config", "set", "--stack", stack, "--", key, value)

    def up(self, stack: str) -> None:
        self._run("up", "--stack", stack, "--yes", "--skip-preview")

    def destroy(self, stack: str) -> None:
        self._run("destroy", "--stack", stack, "--yes", "--skip-preview")

    def remove_stack(self, stack: str) -> None:
        self._run("stack", "rm", stack, "--yes")

    def outputs(self, stack: str, show_secrets: bool = False) -> dict[str, Any]:
        extra: Sequence[str] = ("--show-secrets",) if show_secrets else ()
        return dict(self._json("stack", "output", "--stack", stack, *extra) or {})
