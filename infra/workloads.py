"""The environment each container gets, the same on every cloud.

The tracking server's entrypoint (infra/mlflow_server/entrypoint.py) and the model API's settings
(service/settings.py) read exactly these variables; the contract tests start those programs with what
these functions return. Secrets are kept apart so each cloud can put them in its own secret store and
hand them to the container by reference, never as plain environment values in the service definition.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

from infra.config import ModelPin, StackSettings
from infra.generated_secrets import StackSecrets
from infra.platform import TRACKING_ADMIN_USERNAME

# One name for the same thing on every cloud: the tracking server's database and user, and the prefix under
# which MLflow keeps artifacts in the stack's bucket (artifactRoot = <bucket>/<prefix>).
DATABASE_NAME = "mlflow"
DATABASE_USER = "mlflow"
ARTIFACT_PREFIX = "mlflow"
TRACKING_PORT = 5000
API_PORT = 8000
# Paths the platforms probe. /health is MLflow's own and open to anonymous callers under basic-auth.
TRACKING_HEALTH_PATH = "/health"
API_LIVENESS_PATH = "/healthz"
API_READINESS_PATH = "/readyz"


# The tracking server's secret variable holding the MLflow admin password: the one secret a stack's retrain
# identity may read (infra/<cloud>/ci_identity.py), found by this name in what each cloud stores.
ADMIN_PASSWORD_VARIABLE = "MLFLOW_ADMIN_PASSWORD"  # noqa: S105 (a variable name)


@dataclass(frozen=True)
class ContainerEnvironment:
    """Plain variables, and secret variables (name -> secret value) that the cloud stores and references."""

    plain: dict[str, pulumi.Input[str]]
    secrets: dict[str, pulumi.Output[str]] = field(default_factory=dict)


def tracking_environment(
    settings: StackSettings,
    secrets: StackSecrets,
    *,
    database_host: pulumi.Input[str],
    database_name: pulumi.Input[str],
    database_user: pulumi.Input[str],
    artifacts_destination: pulumi.Input[str],
    allowed_hosts: pulumi.Input[str],
    database_sslmode: str = "require",
    extra: Mapping[str, pulumi.Input[str]] | None = None,
) -> ContainerEnvironment:
    """What the MLflow tracking server container needs. `extra` carries cloud-specific SDK settings
    (e.g. AZURE_CLIENT_ID for a user-assigned identity, MLFLOW_SQLALCHEMYSTORE_POOLCLASS on AWS)."""
    plain: dict[str, pulumi.Input[str]] = {
        "MLFLOW_CPU": f"{settings.tracking.cpu:g}",
        "MLFLOW_DB_HOST": database_host,
        "MLFLOW_DB_NAME": database_name,
        "MLFLOW_DB_USER": database_user,
        "MLFLOW_DB_SSLMODE": database_sslmode,
        "MLFLOW_ARTIFACTS_DESTINATION": artifacts_destination,
        "MLFLOW_ADMIN_USERNAME": TRACKING_ADMIN_USERNAME,
        "MLFLOW_ALLOWED_HOSTS": allowed_hosts,
        **(extra or {}),
    }
    return ContainerEnvironment(
        plain=plain,
        secrets={
            "MLFLOW_DB_PASSWORD": secrets.database_password,
            ADMIN_PASSWORD_VARIABLE: secrets.tracking_admin_password,
            "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.flask_secret_key,
        },
    )


def api_environment(
    settings: StackSettings,
    secrets: StackSecrets,
    model: ModelPin,
    *,
    image: pulumi.Input[str],
    extra: Mapping[str, pulumi.Input[str]] | None = None,
) -> ContainerEnvironment:
    """What the model API container needs: its pinned model, read straight from the artifact store, so it
    needs neither the tracking server nor its credentials at run time."""
    plain: dict[str, pulumi.Input[str]] = {
        "MODEL_URI": model.source,
        "MODEL_NAME": model.name,
        "MODEL_VERSION": str(model.version),
        "IMAGE": image,
        **(extra or {}),
    }
    api_secrets = {"API_KEY": secrets.api_key} if secrets.api_key is not None else {}
    return ContainerEnvironment(plain=plain, secrets=api_secrets)
