"""What a stack costs: the price sheets (prices/<cloud>.toml), the stack's inventory under Pulumi mocks, and
the estimate built from both. scripts/cost.py is the command; the README's cost table is its output."""
