"""The few Pulumi operations our scripts need, behind one small interface.

`bootstrap`, `sandbox`, `smoke` and `rollout` talk to Pulumi only through `PulumiCli`. `AutomationPulumi` is
the real implementation, on Pulumi's Automation API (`pulumi.automation`, part of the `pulumi` package): it
streams what `up` and `destroy` do into the log as they do it, and turns the CLI's failures into typed errors
(`StackLockedError` for a stack another run is updating). The Automation API drives the `pulumi` CLI, which
cannot be installed on every machine (our test machines among them), so tests use a fake that models the
real split of responsibilities (`testing/fake_pulumi.py`):

- a stack's **config** lives in the checkout's stack file (`stacks/Pulumi.<stack>.yaml`, `stackConfigDir`),
  next to the `secretsprovider:` line `stack init --secrets-provider` writes there; another checkout of
  the repository has its own files;
- its **state, outputs and tags** live in the backend (the state bucket), shared by every checkout.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from pulumi import automation

PROJECT = "mlops-stack"
"""The Pulumi project name (Pulumi.yaml); project config keys live in this namespace."""
SECRET = "[secret]"  # noqa: S105 (what a secret value is shown as)
T = TypeVar("T")


class PulumiError(RuntimeError):
    """A Pulumi operation failed; the message carries what and what the CLI said."""


class StackLockedError(PulumiError):
    """Another update holds the stack's lock (Pulumi's ConcurrentUpdateError)."""


class PulumiCli(Protocol):
    """What our scripts ask of Pulumi. Every method names its stack explicitly: no hidden selection."""

    def stack_names(self) -> list[str]:
        """The names of the project's stacks in the backend."""
        ...

    def init_stack(self, stack: str, secrets_provider: str) -> None:
        """Create `stack` in the backend, its secrets encrypted with `secrets_provider` (a KMS URL)."""
        ...

    def config(self, stack: str) -> dict[str, str]:
        """The stack's config in this checkout, `namespace:key -> value` (secret values: `[secret]`)."""
        ...

    def set_config(self, stack: str, key: str, value: str) -> None:
        """Set one plain config value in this checkout's stack file."""
        ...

    def remove_config(self, stack: str, key: str) -> None:
        """Remove one config value from this checkout's stack file (no error if it is not there)."""
        ...

    def tags(self, stack: str) -> dict[str, str]:
        """The stack's tags, kept in the backend (DIY backends since pulumi v3.211.0)."""
        ...

    def set_tag(self, stack: str, key: str, value: str) -> None: ...

    def up(self, stack: str) -> None:
        """Deploy the stack without prompting, printing Pulumi's progress as it comes."""
        ...

    def destroy(self, stack: str) -> None:
        """Delete every resource of the stack without prompting (callers guard this)."""
        ...

    def remove_stack(self, stack: str) -> None:
        """Remove the (empty) stack, its tags and its config from the backend."""
        ...

    def outputs(self, stack: str, show_secrets: bool = False) -> dict[str, Any]:
        """The stack outputs; secret outputs are `[secret]` unless `show_secrets`."""
        ...


class AutomationPulumi:
    """`PulumiCli` over Pulumi's Automation API, in the project directory `work_dir`.

    `backend_url` (e.g. `gs://team-state-dev`) is passed as `PULUMI_BACKEND_URL`, which the CLI reads
    instead of a prior `pulumi login`, so one process can drive a backend without touching the user's login.
    """

    def __init__(
        self,
        work_dir: Path,
        backend_url: str | None = None,
        environ: Mapping[str, str] | None = None,
        output: Callable[[str], None] = print,
        pulumi_root: str | None = None,
    ) -> None:
        self._work_dir = work_dir
        self._env = dict(os.environ if environ is None else environ)
        if backend_url:
            self._env["PULUMI_BACKEND_URL"] = backend_url
        # CI logs are read by people: no update nag.
        self._env.setdefault("PULUMI_SKIP_UPDATE_CHECK", "true")
        self._output = output
        self._root = pulumi_root  # a directory holding bin/pulumi; default: `pulumi` on PATH
        self._workspace: automation.LocalWorkspace | None = None

    def _ws(self) -> automation.LocalWorkspace:
        """The workspace, made on first use (making it runs `pulumi version`)."""
        if self._workspace is None:
            from pulumi import automation

            try:
                command = automation.PulumiCommand(root=self._root)
            except (OSError, subprocess.CalledProcessError) as error:
                raise PulumiError(
                    "the Pulumi CLI is not installed or not on PATH: install it from "
                    "pulumi.com/docs/install, or run this in a workflow that sets it up"
                ) from error
            self._workspace = automation.LocalWorkspace(
                work_dir=str(self._work_dir), env_vars=self._env, pulumi_command=command
            )
        return self._workspace

    def _run(self, what: str, operation: Callable[[], T]) -> T:
        from pulumi import automation

        try:
            return operation()
        except automation.ConcurrentUpdateError as error:
            raise StackLockedError(f"{what}: another update holds the stack's lock ({error})") from error
        except automation.CommandError as error:
            raise PulumiError(f"{what} failed: {error}") from error

    def _stack(self, stack: str) -> automation.Stack:
        from pulumi import automation

        return self._run(f"select {stack}", lambda: automation.Stack.select(stack, self._ws()))

    def stack_names(self) -> list[str]:
        return self._run("stack ls", lambda: [summary.name for summary in self._ws().list_stacks()])

    def init_stack(self, stack: str, secrets_provider: str) -> None:
        workspace = self._ws()
        workspace.secrets_provider = secrets_provider
        self._run(f"stack init {stack}", lambda: workspace.create_stack(stack))

    def config(self, stack: str) -> dict[str, str]:
        values = self._run(f"config of {stack}", lambda: self._ws().get_all_config(stack))
        return {key: SECRET if value.secret else value.value for key, value in values.items()}

    def set_config(self, stack: str, key: str, value: str) -> None:
        from pulumi import automation

        self._run(
            f"config set {key} on {stack}",
            lambda: self._ws().set_config(stack, key, automation.ConfigValue(value=value)),
        )

    def remove_config(self, stack: str, key: str) -> None:
        self._run(f"config rm {key} on {stack}", lambda: self._ws().remove_config(stack, key))

    def tags(self, stack: str) -> dict[str, str]:
        return dict(self._run(f"tags of {stack}", lambda: self._ws().list_tags(stack)))

    def set_tag(self, stack: str, key: str, value: str) -> None:
        self._run(f"tag {key} on {stack}", lambda: self._ws().set_tag(stack, key, value))

    def up(self, stack: str) -> None:
        selected = self._stack(stack)
        self._run(f"up {stack}", lambda: selected.up(on_output=self._output))

    def destroy(self, stack: str) -> None:
        selected = self._stack(stack)
        self._run(f"destroy {stack}", lambda: selected.destroy(on_output=self._output))

    def remove_stack(self, stack: str) -> None:
        self._run(f"stack rm {stack}", lambda: self._ws().remove_stack(stack))

    def outputs(self, stack: str, show_secrets: bool = False) -> dict[str, Any]:
        values = self._run(f"outputs of {stack}", lambda: self._ws().stack_outputs(stack))
        return {
            key: value.value if show_secrets or not value.secret else SECRET for key, value in values.items()
        }
