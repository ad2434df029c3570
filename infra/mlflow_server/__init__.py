"""The tracking-server image: stock MLflow started by an entrypoint that reads only what infra sets."""
