"""The platform on Google Cloud (`infra.gcp.platform`): one module per part, each a component."""
