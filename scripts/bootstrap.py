"""Create a team's Pulumi state and secrets keys, one of each per environment (idempotently), then
initialise a stack on its environment's state.

    python -m scripts.bootstrap --cloud aws --bucket acme-mlops-state --region eu-west-1 --stack aws-dev
    python -m scripts.bootstrap --cloud gcp --project acme-ml --location europe-west1 \\
        --bucket acme-ml-pulumi-state --stack gcp-dev
    python -m scripts.bootstrap --cloud azure --subscription-id ... --tenant-id ... --location westeurope \\
        --resource-group mlops-state --storage-account acmemlopsstate --vault acme-mlops-kv --stack azure-dev

Per environment (`--environments`, default dev,prod,sandbox; add staging when you want it) it makes a bucket
(`<bucket>-<env>`; on Azure a container `<container>-<env>`) and a key (`<key>-<env>`), so each environment's
CI identities can be granted that environment's state and key and nothing else (the stacks grant them:
`mlops-stack:stateBackend` / `stateSecretsProvider`, which this script sets when it initialises a stack).
It prints each environment's `pulumi login` URL and secrets provider, the JSON value of the GitHub variable
PULUMI_STATE, and every change it made; a re-run changes nothing. Credentials are the cloud's usual ones
(AWS profile/env, Application Default Credentials, az login).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from mlops_stack.pulumi_cli import AutomationPulumi, PulumiCli, PulumiError
from mlops_stack.state_backends import BootstrapError, StateBackend

CLOUDS = ("gcp", "aws", "azure")
ENVIRONMENTS = ("dev", "staging", "prod", "sandbox")
DEFAULT_ENVIRONMENTS = "dev,prod,sandbox"
# The default resource group of the state account and vault; a stack assumes it unless told otherwise
# (mlops-stack:stateResourceGroup, which init_stack sets when --resource-group differs).
DEFAULT_AZURE_STATE_GROUP = "mlops-stack-state"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scripts.bootstrap", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cloud", required=True, choices=CLOUDS)
    parser.add_argument("--stack", help="stack to initialise on its environment's state, e.g. gcp-dev")
    parser.add_argument(
        "--environments",
        default=DEFAULT_ENVIRONMENTS,
        help=f"comma-separated, from {', '.join(ENVIRONMENTS)}; one state and key each "
        f"(default {DEFAULT_ENVIRONMENTS})",
    )
    parser.add_argument("--work-dir", type=Path, default=Path.cwd(), help="directory holding Pulumi.yaml")
    aws = parser.add_argument_group("aws")
    aws.add_argument("--region", help="AWS region of the bucket and key")
    aws.add_argument("--key-alias", default="alias/mlops-stack-pulumi-secrets")
    gcp = parser.add_argument_group("gcp")
    gcp.add_argument("--project", help="GCP project id")
    gcp.add_argument("--location", help="GCP location (bucket and KMS key) or Azure location")
    gcp.add_argument("--key-ring", default="mlops-stack")
    gcp.add_argument("--key", default="pulumi-secrets", help="GCP KMS key or Azure Key Vault key name")
    azure = parser.add_argument_group("azure")
    azure.add_argument("--subscription-id")
    azure.add_argument("--tenant-id")
    azure.add_argument("--resource-group", default=DEFAULT_AZURE_STATE_GROUP)
    azure.add_argument("--storage-account", help="3-24 lowercase letters/digits, globally unique")
    azure.add_argument("--container", default="pulumi-state")
    azure.add_argument("--vault", help="Key Vault name, 3-24 letters/digits/dashes, globally unique")
    parser.add_argument("--bucket", help="AWS/GCP state bucket name (globally unique)")
    return parser


REQUIRED = {
    "aws": ("bucket", "region"),
    "gcp": ("bucket", "project", "location"),
    "azure": ("subscription_id", "tenant_id", "location", "storage_account", "vault"),
}


def _check_required(args: argparse.Namespace) -> None:
    missing = [f"--{name.replace('_', '-')}" for name in REQUIRED[args.cloud] if not getattr(args, name)]
    if missing:
        raise BootstrapError(f"--cloud {args.cloud} needs {', '.join(missing)} (see --help for an example)")


def environments(args: argparse.Namespace) -> list[str]:
    chosen = [name.strip() for name in args.environments.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in ENVIRONMENTS]
    if unknown or not chosen:
        raise BootstrapError(
            f"--environments: use names from {', '.join(ENVIRONMENTS)}, not {unknown or 'nothing'}"
        )
    return chosen


def ensure_backend(args: argparse.Namespace, environment: str) -> StateBackend:
    """Build the real clients for `args.cloud` and make `environment`'s state and key. Imports per cloud."""
    _check_required(args)
    if args.cloud == "aws":
        import boto3

        from mlops_stack.state_backends.aws import ensure_aws_backend

        s3, kms = boto3.client("s3", region_name=args.region), boto3.client("kms", region_name=args.region)
        return ensure_aws_backend(
            s3, kms, f"{args.bucket}-{environment}", args.region, f"{args.key_alias}-{environment}"
        )
    if args.cloud == "gcp":
        from google.cloud import storage

        from mlops_stack.state_backends.gcp import CloudKmsKeys, ensure_gcp_backend

        client = storage.Client(project=args.project)
        return ensure_gcp_backend(
            client,
            CloudKmsKeys(),
            args.project,
            args.location,
            f"{args.bucket}-{environment}",
            args.key_ring,
            f"{args.key}-{environment}",
        )
    from azure.identity import DefaultAzureCredential
    from azure.storage.blob import BlobServiceClient

    from mlops_stack.state_backends.azure import ensure_azure_backend
    from mlops_stack.state_backends.azure_arm import ArmManagement

    blobs = BlobServiceClient(
        f"https://{args.storage_account}.blob.core.windows.net", DefaultAzureCredential()
    )
    return ensure_azure_backend(
        ArmManagement(args.subscription_id, args.tenant_id),
        blobs,
        args.resource_group,
        args.location,
        args.storage_account,
        f"{args.container}-{environment}",
        args.vault,
        f"{args.key}-{environment}",
    )


def stack_environment(stack: str, cloud: str) -> str:
    """`gcp-dev` -> `dev`; a stack this script initialises is named `<cloud>-<environment>`."""
    environment = stack.removeprefix(f"{cloud}-")
    if environment not in ("dev", "staging", "prod"):
        raise BootstrapError(
            f"--stack {stack!r}: name it {cloud}-dev, {cloud}-staging or {cloud}-prod (sandboxes are made by "
            "scripts/sandbox.py)"
        )
    return environment


def init_stack(
    pulumi: PulumiCli, stack: str, backends: dict[str, StateBackend], extra: dict[str, str] | None = None
) -> list[str]:
    """Create `stack` on its environment's state unless it exists, and point its config at that state (and
    a dev stack at the sandboxes' state), so the stack grants its CI identities exactly these. `extra` is
    more config the stack needs to find the state (Azure: a non-default state resource group)."""
    environment = stack_environment(stack, stack.split("-", 1)[0])
    if environment not in backends:
        raise BootstrapError(f"--stack {stack}: add {environment} to --environments (it has no state yet)")
    backend = backends[environment]
    done = []
    if stack in pulumi.stack_names():
        done.append(f"stack {stack} already exists on this backend: left as it is")
    else:
        pulumi.init_stack(stack, backend.secrets_provider)
        done.append(f"initialised stack {stack} (stacks/Pulumi.{stack}.yaml now names its secrets provider)")
    config = {
        "mlops-stack:stateBackend": backend.login_url,
        "mlops-stack:stateSecretsProvider": backend.secrets_provider,
    }
    config |= extra or {}
    if environment == "dev" and "sandbox" in backends:
        config |= {
            "mlops-stack:sandboxes": "true",
            "mlops-stack:sandboxStateBackend": backends["sandbox"].login_url,
            "mlops-stack:sandboxStateSecretsProvider": backends["sandbox"].secrets_provider,
        }
    current = pulumi.config(stack)
    for key, value in config.items():
        if current.get(key) != value:
            pulumi.set_config(stack, key, value)
            done.append(f"set {key} on {stack}")
    return done


def report(backends: dict[str, StateBackend]) -> str:
    """What a person (or a workflow log) needs to read after a run."""
    lines = []
    for environment, backend in backends.items():
        changes = [f"    - {change}" for change in backend.changes] or ["    (no change: already in place)"]
        lines += [
            f"{environment}:",
            *changes,
            f"  pulumi login '{backend.login_url}'",
            f"  secrets provider: {backend.secrets_provider}",
        ]
    state = {
        env: {"backendUrl": b.login_url, "secretsProvider": b.secrets_provider} for env, b in backends.items()
    }
    return "\n".join([*lines, "", "GitHub repository variable PULUMI_STATE:", json.dumps(state)])


def main(argv: Sequence[str] | None = None, pulumi: PulumiCli | None = None) -> int:
    """Command-line entry point; `pulumi` is injectable for tests."""
    args = _parser().parse_args(argv)
    try:
        backends = {environment: ensure_backend(args, environment) for environment in environments(args)}
        print(report(backends))
        if args.stack:
            environment = stack_environment(args.stack, args.cloud)
            login = backends[environment].login_url if environment in backends else None
            cli = pulumi or AutomationPulumi(args.work_dir, backend_url=login)
            extra = {}
            if args.cloud == "azure" and args.resource_group != DEFAULT_AZURE_STATE_GROUP:
                extra["mlops-stack:stateResourceGroup"] = args.resource_group
            for line in init_stack(cli, args.stack, backends, extra):
                print(line)
    except (BootstrapError, PulumiError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
