# nbfleet — the commands a developer and CI run. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CARGO_TEST := $(shell command -v cargo-nextest >/dev/null 2>&1 && echo "cargo nextest run --workspace --no-fail-fast" || echo "cargo test --workspace")

.PHONY: help venv tools lint test

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 12

$(STAMP): scripts/requirements.txt
	@echo "==> creating the project venv ($(VENV)) with moto, jupyterlab and awscli"
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r scripts/requirements.txt
	touch $@

venv: $(STAMP) ## create .venv with the Python tools (moto, jupyterlab, awscli)

tools: ## install shellcheck from Debian's packages if missing
	@command -v shellcheck >/dev/null || { echo "==> installing shellcheck"; \
	  apt-get install -y -qq shellcheck >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq shellcheck >/dev/null; }; }

lint: ## cargo fmt --check and clippy with warnings as errors
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings

test: venv tools lint ## run every test (starts and stops moto)
	scripts/with-moto.sh $(CARGO_TEST)
