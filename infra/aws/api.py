"""The model API on ECS Express Mode, deployed only once a model version is pinned in config."""

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from infra.aws.account import Account
from infra.aws.express import (
    TARGET_KEEP_ALIVE_SECONDS,
    ExpressService,
    ExpressServiceArgs,
    reserve_service_name,
)
from infra.aws.storage import ArtifactStore
from infra.config import ModelPin, StackSettings
from infra.generated_secrets import StackSecrets
from infra.rollout import ApiRollout
from infra.workloads import API_PORT, API_READINESS_PATH, api_environment


@dataclass(frozen=True, kw_only=True)
class ModelApiArgs:
    settings: StackSettings
    account: Account
    secrets: StackSecrets
    model: ModelPin
    image: pulumi.Input[str]
    store: ArtifactStore
    cluster_name: pulumi.Input[str]
    infrastructure_role_arn: pulumi.Input[str]
    repository_arns: list[pulumi.Output[str]]
    subnet_ids: list[pulumi.Output[str]]
    security_group_id: pulumi.Input[str]
    depends_on: Sequence[pulumi.Resource]


class ModelApi(pulumi.ComponentResource):
    """Reads its model straight from the bucket (read-only), so it keeps serving when MLflow is down.

    Rollouts: Express Mode shifts traffic itself, a fixed canary on every update (config.EXPRESS_CANARY), and
    offers no split of ours; the stack still records each revision (`apiRollout`, infra/rollout.py) so the
    deploy workflow can watch a new one at full traffic (`canaryBakeMinutes`) and roll it back."""

    url: pulumi.Output[str]
    rollout: pulumi.Output[object]  # the `apiRollout` stack output (infra/rollout.py)
    service: ExpressService

    def __init__(self, name: str, args: ModelApiArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-stack:aws:ModelApi", name, None, opts)
        settings = args.settings
        rollout = ApiRollout(name, settings, args.model, self)
        environment = api_environment(
            settings,
            args.secrets,
            args.model,
            image=args.image,
            extra={
                "PORT": str(API_PORT),
                "AWS_DEFAULT_REGION": settings.region,
                "KEEP_ALIVE_TIMEOUT_SECONDS": str(TARGET_KEEP_ALIVE_SECONDS),
            },
        )
        service = ExpressService(
            f"{name}-service",
            ExpressServiceArgs(
                settings=settings,
                account=args.account,
                purpose="api",
                service_name=reserve_service_name(f"{name}-name", settings, "api", self),
                image=args.image,
                container=settings.api,
                port=API_PORT,
                # Ready means the model is loaded: the load balancer sends traffic only then.
                health_check_path=API_READINESS_PATH,
                environment=environment,
                task_statements=args.store.access_statements(write=False),
                cluster_name=args.cluster_name,
                infrastructure_role_arn=args.infrastructure_role_arn,
                repository_arns=args.repository_arns,
                subnet_ids=args.subnet_ids,
                security_group_id=args.security_group_id,
                depends_on=args.depends_on,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.url = service.url
        self.rollout = rollout.output(args.image, service.revision)
        self.service = service  # its names, for the stack's alarms (infra/aws/monitoring.py)
        self.register_outputs({"url": self.url, "rollout": self.rollout})
