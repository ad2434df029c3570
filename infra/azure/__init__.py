"""The platform on Azure (`infra.azure.platform`): one module per part, each a component."""
