"""The rules-as-data checker: paths into inputs, each kind of rule, and messages that name the doc."""

import re

from infra.limits import CombinationRule, NameRule, RangeRule, applied_rules, values_at, violations

DOC = "https://example.test/limits"
BUCKET = NameRule(
    "test:index:Bucket",
    "name",
    63,
    re.compile(r"[a-z0-9][a-z0-9-]*"),
    "lowercase letters, digits, '-'",
    DOC,
    3,
)
MEMORY = RangeRule(
    "test:index:Service", "template.containers[].memoryMiB", 512, 8192, "512 MiB to 8 GiB", DOC
)


def _pair(inputs):
    return "more CPU than memory allows" if inputs.get("cpu", 0) * 4096 < inputs.get("memory", 0) else None


PAIR = CombinationRule("test:index:Service", "", _pair, "4 GiB per CPU at most", DOC)


def test_values_at_follows_dicts_and_every_list_element_and_skips_what_is_missing():
    inputs = {"template": {"containers": [{"memoryMiB": 512}, {"memoryMiB": 1024}, {}]}}
    assert values_at(inputs, "template.containers[].memoryMiB") == [512, 1024]
    assert values_at(inputs, "template.volumes[].name") == []
    assert values_at({"name": "x"}, "") == [{"name": "x"}]


def test_a_name_too_long_or_with_bad_characters_is_named_with_its_rule_and_doc():
    found = violations(
        [
            ("test:index:Bucket", "ok", {"name": "a-b-c"}),
            ("test:index:Bucket", "long", {"name": "a" * 64}),
            ("test:index:Bucket", "upper", {"name": "Abc"}),
            ("test:index:Bucket", "short", {"name": "ab"}),
            ("test:index:Other", "ignored", {"name": "A" * 100}),
        ],
        [BUCKET],
    )
    messages = [str(violation) for violation in found]
    assert [violation.resource for violation in found] == ["long", "upper", "short"]
    assert messages[0] == f"long (test:index:Bucket).name is 64 characters; allowed 3-63 - see {DOC}"
    assert "lowercase letters, digits, '-'" in messages[1]


def test_ranges_and_combinations_report_each_offending_value():
    service = {"cpu": 1, "memory": 8192, "template": {"containers": [{"memoryMiB": 256}]}}
    found = violations([("test:index:Service", "svc", service)], [MEMORY, PAIR])
    assert [violation.problem for violation in found] == [
        "is 256; allowed 512-8192 (512 MiB to 8 GiB)",
        "more CPU than memory allows",
    ]


def test_a_rule_that_never_finds_a_value_is_reported_as_unused():
    resources = [("test:index:Bucket", "b", {"name": "abc"})]
    assert applied_rules(resources, [BUCKET, MEMORY]) == {BUCKET}
