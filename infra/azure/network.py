"""The stack's private network: the Container Apps environment and PostgreSQL share one VNet, so the
database is reached over private addresses only and has no public endpoint at all."""

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.network as network
import pulumi_azure_native.privatedns as privatedns

from infra.azure.limits import name_limit
from infra.naming import short_name

# One /16 per stack is plenty; stacks never peer, so they may all use the same range.
ADDRESS_SPACE = "10.40.0.0/16"
# A workload-profiles environment needs at least a /27 delegated to Microsoft.App/environments; a /23
# leaves room for many replicas (each takes an address) and matches Azure's recommendation.
APPS_SUBNET = "10.40.0.0/23"
# PostgreSQL Flexible Server's VNet integration needs a subnet delegated to it and nothing else.
DATABASE_SUBNET = "10.40.2.0/24"


# PostgreSQL's VNet integration needs a zone whose name ends in postgres.database.azure.com.
DATABASE_ZONE_SUFFIX = ".private.postgres.database.azure.com"


def database_zone_name(stack: str) -> str:
    """`<stack>.private.postgres.database.azure.com`, the stack part shortened so the whole name keeps
    within 63 characters (the conservative reading of Azure's rule for private DNS zones)."""
    return (
        short_name(stack, max_length=ZONE_NAME_MAX_LENGTH - len(DATABASE_ZONE_SUFFIX)) + DATABASE_ZONE_SUFFIX
    )


ZONE_NAME_MAX_LENGTH = 63


@dataclass(frozen=True, kw_only=True)
class NetworkArgs:
    resource_group_name: pulumi.Input[str]
    stack: str


class Network(pulumi.ComponentResource):
    """VNet, the two delegated subnets, and the private DNS zone PostgreSQL registers its name in."""

    apps_subnet_id: pulumi.Output[str]
    database_subnet_id: pulumi.Output[str]
    database_dns_zone_id: pulumi.Output[str]
    database_dns_link: privatedns.VirtualNetworkLink

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-stack:azure:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        vnet = network.VirtualNetwork(
            f"{name}-vnet",
            virtual_network_name=short_name(
                args.stack, "vnet", max_length=name_limit("azure-native:network:VirtualNetwork")
            ),
            resource_group_name=args.resource_group_name,
            address_space=network.AddressSpaceArgs(address_prefixes=[ADDRESS_SPACE]),
            opts=child,
        )
        apps = network.Subnet(
            f"{name}-apps",
            subnet_name="apps",  # names are per VNet, and the VNet is the stack's
            resource_group_name=args.resource_group_name,
            virtual_network_name=vnet.name,
            address_prefix=APPS_SUBNET,
            delegations=[
                network.DelegationArgs(name="container-apps", service_name="Microsoft.App/environments")
            ],
            opts=child,
        )
        # Subnets of one VNet are updated one at a time by ARM: chain them to avoid conflicting writes.
        database = network.Subnet(
            f"{name}-database",
            subnet_name="database",
            resource_group_name=args.resource_group_name,
            virtual_network_name=vnet.name,
            address_prefix=DATABASE_SUBNET,
            delegations=[
                network.DelegationArgs(
                    name="postgresql", service_name="Microsoft.DBforPostgreSQL/flexibleServers"
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[apps]),
        )
        # The server's private A record lives here; the zone name must end in postgres.database.azure.com.
        zone = privatedns.PrivateZone(
            f"{name}-database-dns",
            resource_group_name=args.resource_group_name,
            private_zone_name=database_zone_name(args.stack),
            location="global",
            opts=child,
        )
        self.database_dns_link = privatedns.VirtualNetworkLink(
            f"{name}-database-dns-link",
            virtual_network_link_name="vnet",  # names are per zone, and the zone is the stack's
            resource_group_name=args.resource_group_name,
            private_zone_name=zone.name,
            virtual_network=privatedns.SubResourceArgs(id=vnet.id),
            registration_enabled=False,
            location="global",
            opts=child,
        )
        self.apps_subnet_id = apps.id
        self.database_subnet_id = database.id
        self.database_dns_zone_id = zone.id
        self.register_outputs(
            {"apps_subnet_id": apps.id, "database_subnet_id": database.id, "database_dns_zone_id": zone.id}
        )
