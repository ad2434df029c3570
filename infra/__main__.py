"""The Pulumi program: read config -> pick the cloud -> build the platform -> export outputs."""

import pulumi

from infra.config import ConfigError
from infra.platform import builder_for, export_outputs, load_stack_settings

try:
    settings = load_stack_settings()
except ConfigError as error:
    # RunError prints the message alone (no traceback): the list of problems and how to fix each.
    raise pulumi.RunError(str(error)) from None

export_outputs(settings, builder_for(settings)(settings))
