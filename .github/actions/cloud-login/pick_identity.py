"""Pick the CI identity a job logs in with, or fail saying exactly what is missing.

Reads CLOUD, IDENTITIES (the repository variable CI_IDENTITIES: JSON, environment -> that environment's
`ciIdentity`, and `sandbox` -> the dev stack's `sandboxCiIdentity`), ENVIRONMENT and ROLE (deploy, preview or
retrain) from the environment, and writes the login action's inputs to $GITHUB_OUTPUT. A job whose identity
has no field for its role fails here: it never falls back to another identity. Standard library only: it runs
on the runner's own Python before anything is installed.
"""

import json
import os
import sys

# Per cloud: the field naming the principal for each role, and the fields every login needs.
PRINCIPAL = {
    "gcp": {
        "deploy": "deployServiceAccount",
        "preview": "previewServiceAccount",
        "retrain": "retrainServiceAccount",
    },
    "aws": {"deploy": "deployRoleArn", "preview": "previewRoleArn", "retrain": "retrainRoleArn"},
    "azure": {"deploy": "deployClientId", "preview": "previewClientId", "retrain": "retrainClientId"},
}
COMMON = {"gcp": ("workloadIdentityProvider",), "aws": ("region",), "azure": ("tenantId", "subscriptionId")}


def pick(cloud: str, identities_json: str, environment: str, role: str) -> dict[str, str]:
    """The login inputs: `principal` plus the cloud's common fields. Raises ValueError with the fix."""
    if cloud not in PRINCIPAL:
        raise ValueError(f"vars.CLOUD must be gcp, aws or azure, not {cloud!r}")
    if role not in PRINCIPAL[cloud]:
        raise ValueError(f"role must be one of {', '.join(PRINCIPAL[cloud])}, not {role!r}")
    try:
        identities = json.loads(identities_json or "null")
    except json.JSONDecodeError as error:
        raise ValueError(f"vars.CI_IDENTITIES is not JSON ({error})") from None
    if not isinstance(identities, dict) or not isinstance(identities.get(environment), dict):
        raise ValueError(
            f"vars.CI_IDENTITIES has no entry for environment {environment!r}: add the `ciIdentity` output "
            f"of the {cloud}-{environment} stack (for sandbox: the dev stack's `sandboxCiIdentity`)"
        )
    identity = identities[environment]
    field = PRINCIPAL[cloud][role]
    picked = {"principal": identity.get(field)}
    picked |= {key: identity.get(key) for key in COMMON[cloud]}
    missing = [field if key == "principal" else key for key, value in picked.items() if not value]
    if missing:
        raise ValueError(
            f"vars.CI_IDENTITIES[{environment!r}] has no {', '.join(missing)}: a {role} job needs it "
            f"(copy the stack's output again: pulumi stack output ciIdentity --json)"
        )
    return {key: str(value) for key, value in picked.items()}


def main() -> int:
    try:
        picked = pick(
            os.environ.get("CLOUD", ""),
            os.environ.get("IDENTITIES", ""),
            os.environ.get("ENVIRONMENT", ""),
            os.environ.get("ROLE", ""),
        )
    except ValueError as error:
        print(f"::error::{error}")
        return 1
    with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as output:
        for key, value in picked.items():
            output.write(f"{key}={value}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
