"""Azure Container Registry with the admin user off, and a keyless, short-lived login for pushing.

With no admin user there is no registry password at all. The program pushes with the deploying identity
(a person's `az login`, or CI's federated identity): it asks the provider for that identity's Entra ID
access token (`authorization.get_client_token`) and exchanges it at the registry's `/oauth2/exchange`
endpoint for an ACR refresh token, which is what `docker login` takes as the password of the all-zero
user (the same exchange `az acr login` makes). The token lives about three hours and stays a secret
output; the deploying identity needs push rights on the registry (Contributor on the resource group
includes them).

Retention: only the Premium SKU has a retention policy (for untagged manifests), and it does not count
images. So, as on the other clouds, `registryKeepImages` is kept by the registry itself: a daily ACR Task
runs `acr purge`, which keeps the newest N tags of every repository and deletes the rest and the untagged
manifests (https://learn.microsoft.com/azure/container-registry/container-registry-auto-purge). A task run
authenticates to its own registry, so it needs no identity; it bills per second of run (cents a month).
"""

import base64
import json
import urllib.parse
import urllib.request
from dataclasses import dataclass

import pulumi
import pulumi_azure_native.authorization as authorization
import pulumi_azure_native.containerregistry as containerregistry

from infra.config import StackSettings
from infra.images import RegistryLogin
from infra.naming import unique_name

# The user name ACR expects with a refresh token as the password.
TOKEN_USERNAME = "00000000-0000-0000-0000-000000000000"  # noqa: S105 - a fixed user name, not a secret
# Registry names are global, 5-50 letters and digits: 24 readable + 6 random.
NAME_LENGTH = 30
EXCHANGE_TIMEOUT_SECONDS = 30
PURGE_SCHEDULE = "0 3 * * *"  # daily, 03:00 UTC (ACR timer triggers take a five-field cron in UTC)
PURGE_TIMEOUT_SECONDS = 3600  # the longest one purge may run before ACR stops it


@dataclass(frozen=True, kw_only=True)
class ContainerRegistryArgs:
    resource_group_name: pulumi.Input[str]
    settings: StackSettings


class ContainerRegistry(pulumi.ComponentResource):
    """The registry both images are pushed to and pulled from (by the apps' identities, with AcrPull)."""

    id: pulumi.Output[str]
    login_server: pulumi.Output[str]

    def __init__(
        self, name: str, args: ContainerRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops-stack:azure:ContainerRegistry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        registry = containerregistry.Registry(
            f"{name}-registry",
            registry_name=unique_name(
                f"{name}-suffix",
                args.settings.stack,
                "images",
                max_length=NAME_LENGTH,
                parent=self,
                alphanumeric=True,
            ),
            resource_group_name=args.resource_group_name,
            sku=containerregistry.SkuArgs(name=containerregistry.SkuName.BASIC),
            admin_user_enabled=False,
            anonymous_pull_enabled=False,
            opts=child,
        )
        containerregistry.Task(
            f"{name}-purge",
            task_name="purge-old-images",
            registry_name=registry.name,
            resource_group_name=args.resource_group_name,
            location=registry.location,
            platform=containerregistry.PlatformPropertiesArgs(os=containerregistry.OS.LINUX),
            step=containerregistry.EncodedTaskStepArgs(
                type="EncodedTask",
                encoded_task_content=purge_task_content(args.settings.registry_keep_images),
            ),
            trigger=containerregistry.TriggerPropertiesArgs(
                timer_triggers=[containerregistry.TimerTriggerArgs(name="daily", schedule=PURGE_SCHEDULE)]
            ),
            status=containerregistry.TaskStatus.ENABLED,
            timeout=PURGE_TIMEOUT_SECONDS,
            opts=child,
        )
        self.id = registry.id
        self.login_server = registry.login_server
        self.register_outputs({"id": registry.id, "login_server": registry.login_server})

    def login(self) -> RegistryLogin:
        """A short-lived login for `infra.images.build_images`, from the deploying identity's token."""
        tenant_id = authorization.get_client_config_output().tenant_id
        aad_token = authorization.get_client_token_output().token
        refresh_token = pulumi.Output.all(self.login_server, tenant_id, aad_token).apply(
            lambda values: exchange_for_acr_refresh_token(values[0], values[1], values[2])
        )
        return RegistryLogin(
            address=self.login_server,
            repository_prefix=self.login_server,
            username=TOKEN_USERNAME,
            password=pulumi.Output.secret(refresh_token),
        )


def purge_task_content(keep: int) -> str:
    """The ACR Task file (base64, as the API takes it) that `az acr task create --cmd` would write.

    `acr` is the Tasks alias of mcr.microsoft.com/acr/acr-cli; `--filter '.*:.*'` is every tag of every
    repository, `--ago 0d` makes age no reason to keep a tag, `--keep` spares the newest N per repository, and
    `--untagged` also deletes the manifests no tag points to any more (what frees the storage).
    """
    command = f"acr purge --filter '.*:.*' --ago 0d --keep {keep} --untagged"
    task = {
        "version": "v1.1.0",
        "steps": [
            {"cmd": command, "disableWorkingDirectoryOverride": True, "timeout": PURGE_TIMEOUT_SECONDS}
        ],
    }
    # JSON is YAML, and needs no quoting rules of its own for the command's quotes.
    return base64.b64encode(json.dumps(task).encode()).decode()


def exchange_for_acr_refresh_token(login_server: str, tenant_id: str, aad_access_token: str) -> str:
    """Trade an Entra ID access token for an ACR refresh token (ACR's documented OAuth2 exchange)."""
    body = urllib.parse.urlencode(
        {
            "grant_type": "access_token",
            "service": login_server,
            "tenant": tenant_id,
            "access_token": aad_access_token,
        }
    ).encode()
    # Always https, to the registry this stack created.
    request = urllib.request.Request(
        f"https://{login_server}/oauth2/exchange",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=EXCHANGE_TIMEOUT_SECONDS) as response:  # noqa: S310
        token: str = json.load(response)["refresh_token"]
    return token
