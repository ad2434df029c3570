"""The model API on Cloud Run: serves one pinned model version, read straight from the bucket."""

from dataclasses import dataclass
from urllib.parse import urlsplit

import pulumi

from infra.config import ApiAuth, ModelPin, StackSettings
from infra.gcp import cloud_run
from infra.gcp.apis import Api, RequiredApis
from infra.gcp.secrets import ContainerSecrets, ContainerSecretsArgs
from infra.gcp.service_accounts import runtime_identity
from infra.gcp.storage import ArtifactStore
from infra.gcp.traffic import traffic_targets
from infra.generated_secrets import StackSecrets
from infra.rollout import CANARY_TAG, ApiRollout
from infra.workloads import API_LIVENESS_PATH, API_PORT, API_READINESS_PATH, api_environment

BUCKET_READER = "roles/storage.objectViewer"
# Loading a model (download + unpickle) may take a while on a cold start from zero.
STARTUP_PROBE_PERIOD_SECONDS = 5
STARTUP_PROBE_FAILURES = 36


def model_object_prefix(model: ModelPin) -> str:
    """The pinned model's directory in its bucket: `gs://b/mlflow/1/models/m-1/artifacts` -> `mlflow/...`."""
    return urlsplit(model.source).path.strip("/")


@dataclass(frozen=True, kw_only=True)
class ModelApiArgs:
    settings: StackSettings
    model: ModelPin
    secrets: StackSecrets
    store: ArtifactStore
    image: pulumi.Input[str]  # by digest
    project_number: pulumi.Input[str]
    deployer: pulumi.Input[str]  # IAM member of the CI deploy account, which needs actAs on ours
    apis: RequiredApis


class ModelApi(pulumi.ComponentResource):
    """Built only once a model version is pinned (`modelVersion` + `modelSource` in config).

    A new stack's first `up` therefore succeeds before any model is registered: it stands up the tracking
    server, you register a model there, then `scripts/promote.py --print-pin` gives the two config values
    and the next `up` adds this service. The API's account can list the bucket and read the pinned model's
    objects, nothing else: it needs neither the tracking server nor its credentials to serve.
    """

    url: pulumi.Output[str]
    rollout: pulumi.Output[object]  # the `apiRollout` stack output (infra/rollout.py)

    def __init__(self, name: str, args: ModelApiArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-stack:gcp:ModelApi", name, None, opts)
        settings = args.settings
        rollout = ApiRollout(name, settings, args.model, self)
        identity = runtime_identity(
            name, settings, "api", args.deployer, self, args.apis.needed_by([Api.IAM])
        )
        # The pinned model's files only: not other runs' artifacts, not other models. MLflow's GCS loader
        # lists the model's directory (checked on the bucket) and reads each file (checked per object).
        bucket_access = args.store.grant(
            f"{name}-bucket-reader",
            BUCKET_READER,
            identity.member,
            self,
            object_prefix=model_object_prefix(args.model),
        )
        environment = api_environment(settings, args.secrets, args.model, image=args.image)
        secrets = ContainerSecrets(
            f"{name}-secrets",
            ContainerSecretsArgs(
                settings=settings,
                values=environment.secrets,
                reader=identity.member,
                depends_on=args.apis.needed_by([Api.SECRET_MANAGER]),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        service = cloud_run.CloudRunService(
            name,
            cloud_run.CloudRunServiceArgs(
                settings=settings,
                purpose="api",
                image=args.image,
                container=settings.api,
                port=API_PORT,
                port_name=None,
                # No traffic until the model is loaded; restarted if the process stops answering.
                probes=cloud_run.http_probes(
                    API_READINESS_PATH,
                    API_LIVENESS_PATH,
                    STARTUP_PROBE_PERIOD_SECONDS,
                    STARTUP_PROBE_FAILURES,
                ),
                plain_env=environment.plain,
                secret_env=secrets.env,
                service_account_email=identity.account.email,
                project_number=args.project_number,
                # API key: anyone may call and the service rejects requests without the stack's key.
                # IAM: no invoker binding at all; grant roles/run.invoker to the callers that need it.
                public=settings.api_auth is ApiAuth.API_KEY,
                traffic=rollout.split.apply(traffic_targets),
                depends_on=[
                    *args.apis.needed_by([Api.RUN]),
                    bucket_access,
                    identity.deployable,
                    *secrets.access,
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.url = service.url
        canary_url = pulumi.Output.concat("https://", CANARY_TAG, "---", service.host)
        self.rollout = rollout.output(args.image, service.latest_revision, canary_url)
        self.register_outputs({"url": self.url, "rollout": self.rollout})
