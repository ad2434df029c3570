"""The database password meets Azure PostgreSQL's rule (three of four character classes) by construction.

What we send pulumi-random is asserted; what it makes from that is modelled on its source
(terraform-provider-random `CreateString`, see conftest.random_string) and sampled, with and without the
class minimums, so the test shows both that the fix holds and the failure rate it removes.
"""

from infra.azure.limits import RULES
from infra.limits import violations
from infra.tests.azure.conftest import random_string, standard_run

SAMPLES = 20_000


def three_classes(password: str) -> bool:
    tests = (str.isupper, str.islower, str.isdigit, lambda c: not c.isalnum())
    return sum(any(test(c) for c in password) for test in tests) >= 3


def database_password_inputs() -> dict:
    run = standard_run("dev", model=False).run
    return run.named("azure-dev-secrets-database-password").inputs


def test_the_database_password_asks_for_every_class_it_uses() -> None:
    assert database_password_inputs() == {
        "length": 32,
        "special": False,
        "minUpper": 1,
        "minLower": 1,
        "minNumeric": 1,
    }


def test_every_password_made_from_those_inputs_has_three_classes_and_without_the_minimums_some_do_not() -> (
    None
):
    inputs = database_password_inputs()
    assert all(three_classes(random_string(inputs)) for _ in range(SAMPLES))
    loose = {key: value for key, value in inputs.items() if not key.startswith("min")}
    failures = sum(not three_classes(random_string(loose)) for _ in range(SAMPLES))
    # Expected 2 x (36/62)^32 + (52/62)^32 = 0.36%: about 72 of 20,000; well away from 0 either way.
    print(f"\nwithout class minimums: {failures} of {SAMPLES} passwords have fewer than three classes")
    assert 20 <= failures <= 160


def test_the_server_gets_a_password_the_limits_table_accepts_and_would_refuse_a_two_class_one() -> None:
    result = standard_run("dev", model=False)
    server = result.run.one("azure-native:dbforpostgresql:Server")
    password = result.generated["azure-dev-secrets-database-password"]
    assert three_classes(password)
    assert len(password) == 32
    checked = {**server.inputs, "administratorLoginPassword": password}
    assert violations([(server.type, server.name, checked)], RULES) == []
    weak = {**checked, "administratorLoginPassword": "abcdefgh12345678"}
    [violation] = violations([(server.type, server.name, weak)], RULES)
    assert "three character classes" in violation.problem
