"""The passwords and keys a stack generates. They live only in Pulumi state (encrypted) and the cloud's
secret store, and leave the program only as secret outputs."""

import pulumi
import pulumi_random as random

from infra.config import ApiAuth, StackSettings


class StackSecrets(pulumi.ComponentResource):
    """Database password, MLflow admin password, MLflow's Flask secret key and (optionally) the API key."""

    database_password: pulumi.Output[str]
    tracking_admin_password: pulumi.Output[str]
    flask_secret_key: pulumi.Output[str]
    api_key: pulumi.Output[str] | None

    def __init__(
        self, name: str, settings: StackSettings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops-stack:core:StackSecrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # No special characters in the database password: it travels in connection URLs and some
        # managed databases reject '/', '@', '"' and spaces. At least one uppercase letter, lowercase letter
        # and digit: Azure's PostgreSQL refuses a password without three character classes, and 32 random
        # letters and digits miss one about 0.4% of the time (infra/tests/azure/test_password.py).
        self.database_password = random.RandomPassword(
            f"{name}-database-password",
            length=32,
            special=False,
            min_upper=1,
            min_lower=1,
            min_numeric=1,
            opts=child,
        ).result
        self.tracking_admin_password = random.RandomPassword(
            f"{name}-tracking-admin-password", length=32, special=False, opts=child
        ).result
        self.flask_secret_key = random.RandomPassword(
            f"{name}-flask-secret-key", length=48, special=False, opts=child
        ).result
        self.api_key = (
            random.RandomPassword(f"{name}-api-key", length=40, special=False, opts=child).result
            if settings.api_auth is ApiAuth.API_KEY
            else None
        )
        self.register_outputs({})
