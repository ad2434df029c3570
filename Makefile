# The few entry points a person types. Everything a target needs, it installs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv: use the one on PATH, else a private copy under .tools/ (installed from PyPI with pip).
UV ?= $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
export UV_LINK_MODE ?= copy

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	@echo "uv not found: installing it into .tools/"
	@python3 -m venv .tools 2>/dev/null && .tools/bin/pip install --quiet uv \
	  || { rm -rf .tools; python3 -m pip install --quiet --target .tools/lib uv \
	       && mkdir -p .tools/bin && ln -sf ../lib/bin/uv .tools/bin/uv; }

.PHONY: uv
uv: $(UV)

.PHONY: sync
sync: uv ## install the Python environment (.venv) from uv.lock
	$(UV) sync --frozen --all-groups --compile-bytecode

.PHONY: test-deps
test-deps: sync ## install what the tests start: PostgreSQL binaries, Node + Azurite
	@.ci/install_test_deps.sh

.PHONY: local
local: sync ## run MLflow + the example model + the model API on this machine
	$(UV) run --frozen --all-groups python -m scripts.local_stack

.PHONY: test
test: test-deps ## install everything the tests need, then run them
	$(UV) run --frozen --all-groups pytest

.PHONY: lint
lint: sync ## ruff, mypy, hadolint
	$(UV) run --frozen --all-groups ruff check .
	$(UV) run --frozen --all-groups ruff format --check .
	$(UV) run --frozen --all-groups mypy
	$(UV) run --frozen --all-groups hadolint service/Dockerfile infra/mlflow_server/Dockerfile

.PHONY: bench
bench: sync ## our model API vs `mlflow models serve` on the same model
	$(UV) run --frozen --all-groups python -m bench

.PHONY: cost-table
cost-table: sync ## rewrite the README's cost table from the estimator (python -m scripts.cost --readme)
	$(UV) run --frozen --all-groups python -m scripts.cost --readme

.PHONY: preview
preview: sync ## pulumi preview --diff for STACK (needs the Pulumi CLI and cloud login)
	@test -n "$(STACK)" || { echo "set STACK, e.g. make preview STACK=gcp-dev"; exit 2; }
	pulumi preview --diff --stack $(STACK)
