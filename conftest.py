"""Shared pytest fixtures. Each module in testing/ owns one kind of real stand-in."""

pytest_plugins: list[str] = [
    "testing.mlflow_server",
    "testing.postgres",
    "testing.storage_emulators",
    "testing.model_fixtures",
]
