"""Run the whole Pulumi program under mocks and record every resource it registers.

Mocks echo inputs back as outputs, so the record says what we would send to the cloud. Cloud-specific
computed outputs (URLs, ARNs, ids) and data-source calls come from the `outputs_for`/`calls` hooks the caller
passes in. The tests use it (through testing/pulumi_program.py) and so does the cost estimator
(scripts/cost.py), which needs the inventory of a stack without any cloud or the Pulumi CLI.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import MockCallArgs, MockResourceArgs, Mocks
from pulumi.runtime.mocks import MockMonitor

ComputedOutputs = Callable[[MockResourceArgs], Mapping[str, Any]]
CallResults = Callable[[MockCallArgs], Mapping[str, Any]]


@dataclass
class Registered:
    """One resource the program registered: its type token, logical name, inputs and options, the outputs the
    mocks gave it, its URN, and the URNs it depends on (explicit `depends_on` and those whose outputs its
    inputs use: the order in which Pulumi creates, and in reverse destroys, them)."""

    type: str
    name: str
    inputs: dict[str, Any]
    provider: str | None = None
    custom: bool = True
    outputs: dict[str, Any] = field(default_factory=dict)
    urn: str = ""
    dependencies: list[str] = field(default_factory=list)
    # The parents this resource was once registered under (`Alias(parent=...)`), by URN: Pulumi moves the
    # resource found at such a URN here instead of replacing it.
    alias_parents: list[str] = field(default_factory=list)


@dataclass
class ProgramRun:
    resources: list[Registered] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    seconds: float = 0.0

    def of_type(self, type_token: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name_suffix: str = "") -> Registered:
        """The single resource of this type whose name ends with name_suffix."""
        found = [r for r in self.of_type(type_token) if r.name.endswith(name_suffix)]
        if len(found) != 1:
            names = [r.name for r in self.of_type(type_token)]
            raise AssertionError(f"expected one {type_token} ending {name_suffix!r}, found {names}")
        return found[0]

    def by_urn(self, urn: str) -> Registered:
        (found,) = [r for r in self.resources if r.urn == urn]
        return found

    def named(self, name: str) -> Registered:
        found = [r for r in self.resources if r.name == name]
        if len(found) != 1:
            raise AssertionError(f"expected one resource named {name!r}, found {len(found)}")
        return found[0]


class RecordingMocks(Mocks):
    def __init__(self, run: ProgramRun, outputs_for: ComputedOutputs, calls: CallResults) -> None:
        self.run = run
        self.outputs_for = outputs_for
        self.call_results = calls

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        outputs = {**args.inputs, **_random_outputs(args), **self.outputs_for(args)}
        self.run.resources.append(
            Registered(args.typ, args.name, dict(args.inputs), args.provider, bool(args.custom), outputs)
        )
        return f"{args.name}-id", outputs

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        self.run.calls.append((args.token, dict(args.args)))
        # The second element is the list of check failures: empty, never None (the mock monitor iterates it).
        return dict(self.call_results(args)), []


class RecordingMonitor(MockMonitor):
    """The mock monitor, also recording each resource's URN, dependencies and aliases (which `Mocks` never
    sees)."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.run = mocks.run

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (the gRPC method name)
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            # Found by type and name, not position: registrations may run on several threads.
            (registered,) = [
                r for r in self.run.resources if (r.type, r.name, r.urn) == (request.type, request.name, "")
            ]
            registered.urn = response.urn
            registered.dependencies = list(request.dependencies)
            registered.alias_parents = [
                alias.spec.parentUrn for alias in request.aliases if alias.HasField("spec")
            ]
        return response


def _random_outputs(args: MockResourceArgs) -> dict[str, Any]:
    """pulumi-random computes `result`; give it a recognisable stand-in (not a real secret). A stack reference
    reads a stack with no outputs yet (a stack's first update), unless `outputs_for` says otherwise."""
    if args.typ.startswith("random:"):
        return {"result": f"mock-{args.name}"}
    if args.typ == "pulumi:pulumi:StackReference":
        return {"outputs": {}, "secretOutputNames": []}
    return {}


def set_mock_runtime(mocks: Mocks, project: str, stack: str, **options: Any) -> None:
    """Point Pulumi's runtime at `mocks`, on an event loop it can use.

    The mock runtime creates futures on the main thread's current event loop, and `asyncio.run()` (in any
    earlier test of the session) ends by leaving the thread with none: give it a new one then.
    """
    policy = asyncio.get_event_loop_policy()
    try:
        policy.get_event_loop()
    except RuntimeError:
        policy.set_event_loop(policy.new_event_loop())
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, **options)


def run_program(
    config: Mapping[str, str],
    stack: str,
    outputs_for: ComputedOutputs = lambda _: {},
    calls: CallResults = lambda _: {},
    project: str = "mlops-stack",
    preview: bool = False,
) -> ProgramRun:
    """Run infra/__main__.py's steps for `stack` with `config` (full `ns:key` names) under mocks.

    `preview=True` runs it as `pulumi preview` does: outputs the hooks do not give are unknown, and the
    program's `apply` callbacks on them do not run (so no hook is needed to get the inventory)."""
    from infra.platform import builder_for, export_outputs, load_stack_settings

    run = ProgramRun()
    mocks = RecordingMocks(run, outputs_for, calls)
    set_mock_runtime(mocks, project, stack, preview=preview, monitor=RecordingMonitor(mocks))
    pulumi.runtime.set_all_config(dict(config))
    exported: dict[str, Any] = {}
    original_export = pulumi.export

    def capture(name: str, value: Any) -> None:
        exported[name] = value

    started = time.perf_counter()
    pulumi.export = capture  # the mock runtime has no root stack to hold exports
    try:

        @pulumi.runtime.test
        def program() -> pulumi.Output[Any]:
            settings = load_stack_settings(stack=stack)
            export_outputs(settings, builder_for(settings)(settings))
            names = list(exported)
            return pulumi.Output.all(*[_unwrap(exported[n], n, run) for n in names]).apply(
                lambda values: run.outputs.update(dict(zip(names, values, strict=True)))
            )

        program()
    finally:
        pulumi.export = original_export
        pulumi.runtime.set_all_config({})
    run.seconds = time.perf_counter() - started
    return run


def _unwrap(value: Any, name: str, run: ProgramRun) -> pulumi.Output[Any]:
    """Resolve an export and remember whether it is marked secret."""
    output = pulumi.Output.from_input(value)

    async def resolve() -> Any:
        if await output.is_secret():
            run.secret_outputs.add(name)
        return await output.future()

    resolved: Awaitable[Any] = asyncio.ensure_future(resolve())
    return pulumi.Output.from_input(resolved)
