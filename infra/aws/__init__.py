"""The platform on AWS (`infra.aws.platform`): one module per part, each a component."""
