"""The Pulumi program: read config -> pick the cloud -> build the platform -> export outputs."""

import pulumi

from infra.config import ConfigError, load_settings
from infra.platform import builder_for, export_outputs

try:
    settings = load_settings()
except ConfigError as error:
    # RunError prints the message alone (no traceback): the list of problems and how to fix each.
    raise pulumi.RunError(str(error)) from None

export_outputs(settings, builder_for(settings)(settings))
