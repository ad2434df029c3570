"""Create a team's Pulumi state backend and secrets key (idempotently), then initialise a stack on them.

    python -m scripts.bootstrap --cloud aws --bucket acme-mlops-state --region eu-west-1 --stack aws-dev
    python -m scripts.bootstrap --cloud gcp --project acme-ml --location europe-west1 \\
        --bucket acme-ml-pulumi-state --stack gcp-dev
    python -m scripts.bootstrap --cloud azure --subscription-id ... --tenant-id ... --location westeurope \\
        --resource-group mlops-state --storage-account acmemlopsstate --vault acme-mlops-kv --stack azure-dev

It prints the `pulumi login` URL and `--secrets-provider` to use (also the values of the GitHub variables
PULUMI_BACKEND_URL and PULUMI_SECRETS_PROVIDER), and every change it made; a re-run changes nothing.
Credentials are the cloud's usual ones (AWS profile/env, Application Default Credentials, az login).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from scripts.pulumi_cli import PulumiCli, PulumiError, SubprocessPulumiCli
from scripts.state_backends import BootstrapError, StateBackend

CLOUDS = ("gcp", "aws", "azure")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scripts.bootstrap", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cloud", required=True, choices=CLOUDS)
    parser.add_argument("--stack", help="stack to initialise on the backend, e.g. gcp-dev (omit to skip)")
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
    azure.add_argument("--resource-group", default="mlops-stack-state")
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


def ensure_backend(args: argparse.Namespace) -> StateBackend:
    """Build the real clients for `args.cloud` and make the backend. Imports stay per cloud."""
    _check_required(args)
    if args.cloud == "aws":
        import boto3

        from scripts.state_backends.aws import ensure_aws_backend

        s3, kms = boto3.client("s3", region_name=args.region), boto3.client("kms", region_name=args.region)
        return ensure_aws_backend(s3, kms, args.bucket, args.region, args.key_alias)
    if args.cloud == "gcp":
        from google.cloud import storage

        from scripts.state_backends.gcp import CloudKmsKeys, ensure_gcp_backend

        client = storage.Client(project=args.project)
        return ensure_gcp_backend(
            client, CloudKmsKeys(), args.project, args.location, args.bucket, args.key_ring, args.key
        )
    from azure.identity import DefaultAzureCredential
    from azure.storage.blob import BlobServiceClient

    from scripts.state_backends.azure import ensure_azure_backend
    from scripts.state_backends.azure_arm import ArmManagement

    blobs = BlobServiceClient(
        f"https://{args.storage_account}.blob.core.windows.net", DefaultAzureCredential()
    )
    return ensure_azure_backend(
        ArmManagement(args.subscription_id, args.tenant_id),
        blobs,
        args.resource_group,
        args.location,
        args.storage_account,
        args.container,
        args.vault,
        args.key,
    )


def init_stack(pulumi: PulumiCli, stack: str, backend: StateBackend) -> str:
    """Create `stack` on the backend unless it exists; say which."""
    if stack in pulumi.stack_names():
        return f"stack {stack} already exists on this backend: left as it is"
    pulumi.init_stack(stack, backend.secrets_provider)
    return f"initialised stack {stack}"


def report(backend: StateBackend) -> str:
    """What a person (or a workflow log) needs to read after a run."""
    changes = [f"  - {change}" for change in backend.changes] or ["  (none: everything was already in place)"]
    return "\n".join(
        [
            "changes:",
            *changes,
            "",
            f"pulumi login '{backend.login_url}'",
            f"secrets provider: {backend.secrets_provider}",
            "",
            "GitHub repository variables:",
            f"  PULUMI_BACKEND_URL={backend.login_url}",
            f"  PULUMI_SECRETS_PROVIDER={backend.secrets_provider}",
        ]
    )


def main(argv: Sequence[str] | None = None, pulumi: PulumiCli | None = None) -> int:
    """Command-line entry point; `pulumi` is injectable for tests."""
    args = _parser().parse_args(argv)
    try:
        backend = ensure_backend(args)
        print(report(backend))
        if args.stack:
            cli = pulumi or SubprocessPulumiCli(args.work_dir, backend_url=backend.login_url)
            print(init_stack(cli, args.stack, backend))
    except (BootstrapError, PulumiError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
