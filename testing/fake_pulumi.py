"""A fake `PulumiCli` that keeps things where the real Pulumi keeps them, for tests that cannot run the CLI.

How the real CLI behaves, with a DIY (bucket) backend, and what this fake does the same way:

- **Backend** (`FakeBackend`, shared by every checkout, as the state bucket is): per stack its checkpoint
  (whether it holds resources, its outputs, and the secrets manager it was encrypted with), its tags
  (`.pulumi/stacks/<project>/<stack>.pulumi-tags`, DIY backends since v3.211.0, pulumi/pulumi#19882; removed
  with the stack), and the update lock (`.pulumi/locks/...`, taken by update/refresh/destroy/import only:
  pkg/backend/diy/backend.go). A second update while the lock is held fails: ConcurrentUpdateError.
- **Checkout** (`FakePulumi`, one per working directory): stack files `stacks/Pulumi.<stack>.yaml`
  (`stackConfigDir`), written for real as YAML. `stack init --secrets-provider X` writes `secretsprovider: X`
  and `encryptedkey:` there (pkg/cmd/pulumi/stack/stack_init.go); `config set` writes `config:`. Another
  checkout does not have these files.
- **Secrets**: `up`, `destroy` and `stack output --show-secrets` need the stack's secrets manager. It
  comes from the stack file's `secretsprovider`; with none there, the checkpoint's manager is used (and
  written back into the stack file) only if PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER is true
  (pkg/cmd/pulumi/stack/secrets.go, GetSecretsManager); otherwise the DIY default, a passphrase manager,
  fails without PULUMI_CONFIG_PASSPHRASE.
- **The program** runs on `up` with the checkout's config, as the real one does: here `program(config)`
  returns the outputs, or raises for bad config (the real program refuses it before any resource). It also
  gets the stack's outputs from its last update (`__previous_outputs__`, JSON), which the real program reads
  through a `StackReference` to its own stack (infra/rollout.py).
- `stack rm` refuses a stack that still has resources, and removes its tags and this checkout's stack file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlops_stack.pulumi_cli import PROJECT, SECRET, PulumiError, StackLockedError

Program = Callable[[Mapping[str, str]], dict[str, Any]]
SECRET_OUTPUTS = frozenset({"trackingAdminPassword", "apiKey"})
FALLBACK = "PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER"


def platform_program(config: Mapping[str, str]) -> dict[str, Any]:
    """What infra/__main__.py exports that the scripts read, from the same config keys (a stand-in for the
    program: config is validated by infra.config, as the real program does before any resource)."""
    from infra.config import ConfigError
    from infra.platform import load_stack_settings

    stack = config["__stack__"]
    try:
        settings = load_stack_settings(read=config.get, stack=stack)
    except ConfigError as error:
        raise PulumiError(f"up {stack} failed: {error}") from error
    outputs: dict[str, Any] = {
        "cloud": settings.cloud.value,
        "environment": settings.environment.value,
        "trackingUri": f"https://{stack}-tracking.example",
        "apiUrl": "",
        "trackingAdminPassword": "s3cret-admin",
    }
    if settings.sandbox_expires_at is not None:
        outputs["sandboxExpiresAt"] = config["mlops-stack:sandboxExpiresAt"]
    if settings.model is not None:
        from infra.rollout import ROLLOUT_OUTPUT, RevisionRecord, plan_rollout

        previous = json.loads(config.get("__previous_outputs__") or "{}")
        rollout = plan_rollout(
            previous.get(ROLLOUT_OUTPUT), settings.model, settings.api_image, settings.canary
        )
        version = settings.model.version
        image = settings.api_image or f"registry.example/{stack}/model-api@sha256:{version:064x}"
        # The platform's generated revision name: a new one for each new release.
        revision = f"{stack}-api-v{version}"
        outputs["apiUrl"] = f"https://{stack}-api.example"
        outputs["modelUri"] = settings.model.source
        outputs[ROLLOUT_OUTPUT] = rollout.to_output(
            RevisionRecord(str(version), settings.model.source, image, revision),
            settings.canary.bake_minutes,
            f"https://canary---{stack}-api.example",
        )
    return outputs


@dataclass
class BackendStack:
    secrets_manager: str | None = None  # what the checkpoint was encrypted with (after the first update)
    has_resources: bool = False
    outputs: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    locked_by: str | None = None


@dataclass
class FakeBackend:
    """The state bucket: every checkout that logs in to it sees the same stacks."""

    stacks: dict[str, BackendStack] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    failing_destroys: set[str] = field(default_factory=set)

    def add(
        self, name: str, outputs: Mapping[str, Any] | None = None, tags: Mapping[str, str] | None = None
    ) -> None:
        """A stack someone deployed earlier from another machine."""
        self.stacks[name] = BackendStack(
            secrets_manager="awskms://alias/test",
            has_resources=True,
            outputs=dict(outputs or {}),
            tags={"pulumi:project": PROJECT, **(tags or {})},
        )


class FakePulumi:
    """One checkout (working directory) using `backend`; `environ` is what the CLI would see."""

    def __init__(
        self,
        backend: FakeBackend | None = None,
        work_dir: Path | None = None,
        environ: Mapping[str, str] | None = None,
        program: Program = platform_program,
    ) -> None:
        import tempfile

        self.backend = backend or FakeBackend()
        self.work_dir = work_dir or Path(tempfile.mkdtemp(prefix="checkout-"))
        self.environ = dict(os.environ if environ is None else environ)
        self.program = program

    # --- the checkout's stack files ---------------------------------------------------------------------

    def stack_file(self, stack: str) -> Path:
        return self.work_dir / "stacks" / f"Pulumi.{stack}.yaml"

    def _read_file(self, stack: str) -> dict[str, Any]:
        path = self.stack_file(stack)
        return dict(yaml.safe_load(path.read_text()) or {}) if path.exists() else {}

    def _write_file(self, stack: str, document: Mapping[str, Any]) -> None:
        path = self.stack_file(stack)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(dict(document), sort_keys=True))

    def _stack(self, name: str) -> BackendStack:
        if name not in self.backend.stacks:
            raise PulumiError(f"no stack named '{name}' found")
        return self.backend.stacks[name]

    def _secrets_manager(self, stack: str) -> str:
        """Where the real CLI finds the secrets manager for an operation that needs one."""
        document = self._read_file(stack)
        if document.get("secretsprovider"):
            return str(document["secretsprovider"])
        state = self._stack(stack).secrets_manager
        if self.environ.get(FALLBACK, "").lower() in ("1", "true") and state:
            self._write_file(stack, {**document, "secretsprovider": state, "encryptedkey": "ZmFrZQ=="})
            return state
        raise PulumiError(
            "passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE "
            "environment variables"
        )

    def _locked(self, stack: str, what: str) -> BackendStack:
        found = self._stack(stack)
        if found.locked_by is not None:
            raise StackLockedError(f"{what}: the stack is currently locked by {found.locked_by}")
        return found

    # --- PulumiCli ----------------------------------------------------------------------------------------

    def stack_names(self) -> list[str]:
        self.backend.calls.append(("stack ls", ""))
        return list(self.backend.stacks)

    def init_stack(self, stack: str, secrets_provider: str) -> None:
        self.backend.calls.append(("stack init", stack))
        if stack in self.backend.stacks:
            raise PulumiError(f"stack '{stack}' already exists")
        self.backend.stacks[stack] = BackendStack(tags={"pulumi:project": PROJECT})
        self._write_file(
            stack, {**self._read_file(stack), "secretsprovider": secrets_provider, "encryptedkey": "ZmFrZQ=="}
        )

    def config(self, stack: str) -> dict[str, str]:
        self._stack(stack)
        return {key: str(value) for key, value in (self._read_file(stack).get("config") or {}).items()}

    def set_config(self, stack: str, key: str, value: str) -> None:
        self.backend.calls.append(("config set", f"{stack} {key}={value}"))
        self._stack(stack)
        document = self._read_file(stack)
        document["config"] = {**(document.get("config") or {}), key: value}
        self._write_file(stack, document)

    def remove_config(self, stack: str, key: str) -> None:
        self.backend.calls.append(("config rm", f"{stack} {key}"))
        self._stack(stack)
        document = self._read_file(stack)
        document["config"] = {k: v for k, v in (document.get("config") or {}).items() if k != key}
        self._write_file(stack, document)

    def tags(self, stack: str) -> dict[str, str]:
        return dict(self._stack(stack).tags)

    def set_tag(self, stack: str, key: str, value: str) -> None:
        self.backend.calls.append(("tag set", f"{stack} {key}={value}"))
        self._stack(stack).tags[key] = value

    def up(self, stack: str) -> None:
        self.backend.calls.append(("up", stack))
        found = self._locked(stack, f"up {stack}")
        manager = self._secrets_manager(stack)
        previous = json.dumps(found.outputs)
        outputs = self.program({**self.config(stack), "__stack__": stack, "__previous_outputs__": previous})
        found.secrets_manager, found.has_resources, found.outputs = manager, True, outputs

    def destroy(self, stack: str) -> None:
        self.backend.calls.append(("destroy", stack))
        found = self._locked(stack, f"destroy {stack}")
        self._secrets_manager(stack)
        if stack in self.backend.failing_destroys:
            raise PulumiError(f"destroy of {stack} failed: resource still in use")
        found.has_resources, found.outputs = False, {}

    def remove_stack(self, stack: str) -> None:
        self.backend.calls.append(("stack rm", stack))
        if self._stack(stack).has_resources:
            raise PulumiError(f"'{stack}' still has resources; removal rejected")
        del self.backend.stacks[stack]
        self.stack_file(stack).unlink(missing_ok=True)

    def outputs(self, stack: str, show_secrets: bool = False) -> dict[str, Any]:
        values = self._stack(stack).outputs
        if show_secrets:
            self._secrets_manager(stack)
        return {k: v if show_secrets or k not in SECRET_OUTPUTS else SECRET for k, v in values.items()}
