"""Azure's own deletion protection for data resources in protected (prod) stacks."""

import pulumi
import pulumi_azure_native.authorization as authorization


def delete_lock(name: str, resource: pulumi.CustomResource, parent: pulumi.Resource) -> None:
    """A `CanNotDelete` management lock on `resource`: even an Owner must remove the lock before deleting
    it (Pulumi's `protect` guards only against this program; the lock guards against everyone)."""
    authorization.ManagementLockByScope(
        name,
        lock_name="do-not-delete",  # names are per scope, and the scope is this one resource
        scope=resource.id,
        level=authorization.LockLevel.CAN_NOT_DELETE,
        notes="Production data of mlops-stack: remove this lock deliberately before deleting.",
        opts=pulumi.ResourceOptions(parent=parent, protect=True),
    )
