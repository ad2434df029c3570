"""An in-memory `PulumiCli` for tests: stacks with config and outputs, and a log of what was asked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scripts.pulumi_cli import PulumiError


@dataclass
class FakeStack:
    """One stack as the fake backend keeps it."""

    secrets_provider: str
    config: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    deployed: bool = False


@dataclass
class FakePulumi:
    """Behaves like a Pulumi backend for the operations in `PulumiCli`; `calls` records each one."""

    stacks: dict[str, FakeStack] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    failing_destroys: set[str] = field(default_factory=set)

    def add(self, name: str, config: dict[str, str], outputs: dict[str, Any] | None = None) -> None:
        """Put a deployed stack into the backend, as if someone had run `pulumi up` on it."""
        self.stacks[name] = FakeStack("awskms://alias/test", dict(config), dict(outputs or {}), True)

    def _stack(self, name: str) -> FakeStack:
        if name not in self.stacks:
            raise PulumiError(f"no stack named '{name}' found")
        return self.stacks[name]

    def stack_names(self) -> list[str]:
        self.calls.append(("stack ls", ""))
        return list(self.stacks)

    def init_stack(self, stack: str, secrets_provider: str) -> None:
        self.calls.append(("stack init", stack))
        if stack in self.stacks:
            raise PulumiError(f"stack '{stack}' already exists")
        self.stacks[stack] = FakeStack(secrets_provider)

    def select_stack(self, stack: str) -> None:
        self.calls.append(("stack select", stack))
        self._stack(stack)

    def config(self, stack: str) -> dict[str, str]:
        return dict(self._stack(stack).config)

    def set_config(self, stack: str, key: str, value: str) -> None:
        self.calls.append(("config set", f"{stack} {key}={value}"))
        self._stack(stack).config[key] = value

    def up(self, stack: str) -> None:
        self.calls.append(("up", stack))
        self._stack(stack).deployed = True

    def destroy(self, stack: str) -> None:
        self.calls.append(("destroy", stack))
        if stack in self.failing_destroys:
            raise PulumiError(f"destroy of {stack} failed: resource still in use")
        found = self._stack(stack)
        found.deployed = False
        found.outputs = {}

    def remove_stack(self, stack: str) -> None:
        self.calls.append(("stack rm", stack))
        if self._stack(stack).deployed:
            raise PulumiError(f"stack '{stack}' still has resources")
        del self.stacks[stack]

    def outputs(self, stack: str, show_secrets: bool = False) -> dict[str, Any]:
        values = self._stack(stack).outputs
        secrets = {"trackingAdminPassword", "apiKey"}
        return {k: v if show_secrets or k not in secrets else "[secret]" for k, v in values.items()}
