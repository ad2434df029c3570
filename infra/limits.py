"""Documented cloud limits, kept as data next to their doc links, and the one checker that applies them.

Each cloud package keeps a table, `infra.<cloud>.limits.RULES`, of the limits our program depends on: name
length and charset per resource type, numeric ranges, allowed combinations. Tests run every example stack
(and a sandbox with the longest id config accepts) under mocks and check every registered resource against
its cloud's table, so a name or value the cloud would refuse fails in `make test`, naming the resource,
the rule and the doc. Config validation (`infra.config`) reads the same tables where a limit applies to a
config value, so a stack is refused before any resource is registered.

A rule's `field` is a dotted path into the resource's inputs as the Pulumi engine sees them (camelCase);
`[]` steps into every element of a list: `template.containers[].resources.limits.memory`. A rule only
applies where the path holds a value: computed values (unknown in a preview) are not checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class NameRule:
    """A physical name's length and characters."""

    resource_type: str  # Pulumi type token, e.g. "gcp:storage/bucket:Bucket"
    field: str
    max_length: int
    pattern: re.Pattern[str]  # the whole value must match
    explain: str  # the rule in words, for the message: "lowercase letters, digits and dashes"
    doc: str
    min_length: int = 1

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, str):
            return None
        if not self.min_length <= len(value) <= self.max_length:
            return f"is {len(value)} characters; allowed {self.min_length}-{self.max_length}"
        if not self.pattern.fullmatch(value):
            return f"breaks the character rule: {self.explain}"
        return None


@dataclass(frozen=True)
class RangeRule:
    """A number that must lie in [low, high]; `parse` turns the sent value into that number."""

    resource_type: str
    field: str
    low: float
    high: float
    explain: str
    doc: str
    parse: Callable[[Any], float] = float

    def problem(self, value: Any) -> str | None:
        try:
            number = self.parse(value)
        except (TypeError, ValueError):
            return None
        if not self.low <= number <= self.high:
            return f"is {number:g}; allowed {self.low:g}-{self.high:g} ({self.explain})"
        return None


@dataclass(frozen=True)
class CombinationRule:
    """A rule over several inputs of one resource: `check(inputs)` returns the problem, or None."""

    resource_type: str
    field: str  # where the combination lives (reported in the message); "" for the whole resource
    check: Callable[[Mapping[str, Any]], str | None]
    explain: str
    doc: str

    def problem(self, value: Any) -> str | None:
        return self.check(value) if isinstance(value, Mapping) else None


Rule = NameRule | RangeRule | CombinationRule


@dataclass(frozen=True)
class Violation:
    resource: str
    resource_type: str
    field: str
    problem: str
    doc: str

    def __str__(self) -> str:
        where = f".{self.field}" if self.field else ""
        return f"{self.resource} ({self.resource_type}){where} {self.problem} - see {self.doc}"


def values_at(inputs: Any, path: str) -> list[Any]:
    """Every value at `path` in `inputs` ("" is the inputs themselves); missing steps give no value."""
    found = [inputs]
    for step in [part for part in path.split(".") if part]:
        each = step.endswith("[]")
        key = step.removesuffix("[]")
        nxt: list[Any] = []
        for value in found:
            if not isinstance(value, Mapping) or value.get(key) is None:
                continue
            item = value[key]
            if each:
                nxt.extend(item if isinstance(item, list | tuple) else [])
            else:
                nxt.append(item)
        found = nxt
    return found


def violations(
    resources: Iterable[tuple[str, str, Mapping[str, Any]]], rules: Iterable[Rule]
) -> list[Violation]:
    """Check `(type, name, inputs)` of each registered resource against every rule for its type."""
    by_type: dict[str, list[Rule]] = {}
    for rule in rules:
        by_type.setdefault(rule.resource_type, []).append(rule)
    found: list[Violation] = []
    for resource_type, name, inputs in resources:
        for rule in by_type.get(resource_type, []):
            target = inputs if isinstance(rule, CombinationRule) else None
            values = [target] if target is not None else values_at(inputs, rule.field)
            for value in values:
                problem = rule.problem(value)
                if problem is not None:
                    found.append(Violation(name, resource_type, rule.field, problem, rule.doc))
    return found


def applied_rules(
    resources: Iterable[tuple[str, str, Mapping[str, Any]]], rules: Iterable[Rule]
) -> set[Rule]:
    """The rules that found a value to check in these resources (a rule that never does is dead data)."""
    resources = list(resources)
    used: set[Rule] = set()
    for rule in rules:
        for resource_type, _, inputs in resources:
            if resource_type != rule.resource_type:
                continue
            if isinstance(rule, CombinationRule) or values_at(inputs, rule.field):
                used.add(rule)
                break
    return used
