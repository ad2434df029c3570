"""The generated database password always meets the strictest cloud's rule (Azure: three of four classes)."""

from infra.tests.azure.conftest import standard_run


def test_the_database_password_asks_for_upper_lower_and_digit() -> None:
    run = standard_run("dev", model=False).run
    password = run.one("random:index/randomPassword:RandomPassword", "-database-password").inputs
    assert (password["length"], password["special"]) == (32, False)
    assert (password["minUpper"], password["minLower"], password["minNumeric"]) == (1, 1, 1)
