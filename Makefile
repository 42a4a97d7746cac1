# nbfleet — the commands a developer and CI run. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Deploying: the Lambda architecture (must equal the stack's Architecture parameter) and the stack.
ARCH ?= arm64
STACK ?= nbfleet
LAMBDAS := nbfleet-launch nbfleet-read nbfleet-lifecycle nbfleet-events nbfleet-sweep nbfleet-slack
DEPLOY_TOOLS := $(VENV)/.deploy-tools
SAM := $(VENV)/bin/sam
CARGO_TEST := $(shell command -v cargo-nextest >/dev/null 2>&1 && echo "cargo nextest run --workspace --no-fail-fast" || echo "cargo test --workspace")

.PHONY: help venv tools lint template-check test fuzz bench hello-lambda build deploy destroy smoke build-local demo local local-stop

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

$(STAMP): scripts/requirements.txt
	@echo "==> creating the project venv ($(VENV)) with moto, jupyterlab, awscli, aws-sam-translator, cfn-lint and parliament"
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r scripts/requirements.txt
	touch $@

venv: $(STAMP) ## create .venv with the Python tools (moto, jupyterlab, awscli, SAM translator, cfn-lint, parliament)

tools: ## install shellcheck from Debian's packages if missing
	@command -v shellcheck >/dev/null || { echo "==> installing shellcheck"; \
	  apt-get install -y -qq shellcheck >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq shellcheck >/dev/null; }; }

lint: ## cargo fmt --check and clippy with warnings as errors
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings

template-check: venv ## check template.yaml offline: cfn-lint, IAM (parliament), event rules (moto), parameters, names
	$(PY) scripts/check-template.py

# clippy lints the workspace's own crates while they are built for the tests: clippy-driver wraps
# rustc for them (RUSTC_WORKSPACE_WRAPPER, as `cargo clippy` runs it), so the SDK crates are
# compiled once, for the tests, and not again in check mode. `--all-targets` lints the mains and
# the benches too. (`make lint` is the usual `cargo clippy`, for a quick look.)
CLIPPY_BUILD := RUSTC_WORKSPACE_WRAPPER=$(shell command -v clippy-driver) CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__

test: venv tools template-check ## fmt, then clippy -D warnings as it builds, then every test (starts and stops moto)
	cargo fmt --all --check
	@command -v clippy-driver >/dev/null || { echo "clippy-driver not found: rustup component add clippy"; exit 1; }
	$(CLIPPY_BUILD) cargo build --workspace --all-targets --quiet
	$(CLIPPY_BUILD) scripts/with-moto.sh $(CARGO_TEST)

FUZZ_SECONDS ?= 60
FUZZ_TARGETS := launch_body slack_request probe_line schedule

fuzz: ## fuzz core's parsers with cargo-fuzz on stable (FUZZ_SECONDS per target; corpus kept out of git)
	@[ -x .tools/bin/cargo-fuzz ] || { echo "==> installing cargo-fuzz into .tools"; cargo install --quiet --locked cargo-fuzz --root .tools; }
	for t in $(FUZZ_TARGETS); do \
	  echo "==> fuzzing $$t for $(FUZZ_SECONDS) s"; \
	  PATH="$(CURDIR)/.tools/bin:$$PATH" cargo fuzz run -s none $$t -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048; \
	done

# `make bench` runs the Lambda binaries here, so it builds them for this machine's architecture.
HOST_ARCH := $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x86_64)
bench: ARCH = $(HOST_ARCH)
# The Python baseline's own venv: boto3 and nothing else, as a Lambda Python runtime has it.
BASELINE_VENV := target/bench/baseline-venv
$(BASELINE_VENV)/.installed:
	python3 -m venv $(BASELINE_VENV)
	$(BASELINE_VENV)/bin/pip install --quiet --upgrade pip
	$(BASELINE_VENV)/bin/pip install --quiet boto3
	touch $@

bench: venv build $(BASELINE_VENV)/.installed hello-lambda ## benchmarks on moto: the sweep (N = 100, 1000, 5000), the pipeline's overhead, each Lambda's cold start, memory and zip size against Python, the monthly cost, the idle probe on an instance, a Slack button's acknowledgement; to bench/results.md
	cargo build -p nbfleet-bench --bin sweep-bench --bin pipeline-bench --bin lambda-bench --bin probe-bench --bin slack-bench
	rm -f target/bench/*.md target/bench/*.json
	status=0; \
	scripts/with-moto.sh target/debug/sweep-bench || status=1; \
	scripts/with-moto.sh target/debug/pipeline-bench || status=1; \
	scripts/with-moto.sh target/debug/lambda-bench || status=1; \
	scripts/with-moto.sh target/debug/probe-bench || status=1; \
	scripts/with-moto.sh target/debug/slack-bench || status=1; \
	bench/assemble.sh; \
	exit $$status

# The hello-world Rust Lambda the cold starts are compared with, built as the functions are.
hello-lambda: $(DEPLOY_TOOLS)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release $(if $(filter arm64,$(ARCH)),--arm64,--x86-64) -p nbfleet-bench --features hello --bin hello-lambda

$(DEPLOY_TOOLS): $(STAMP)
	@echo "==> installing cargo-lambda (with its zig) and the SAM CLI into $(VENV)"
	$(VENV)/bin/pip install --quiet cargo-lambda aws-sam-cli
	touch $@

build: $(DEPLOY_TOOLS) ## release-build every Lambda with cargo-lambda, in one cargo run (ARCH=arm64 or x86_64)
	@if [ "$(ARCH)" = arm64 ] && ! rustup target list --installed | grep -q '^aarch64-unknown-linux-gnu$$'; then \
	  rustup target add aarch64-unknown-linux-gnu || { echo "no aarch64 standard library here: make build ARCH=x86_64 (and deploy with Architecture=x86_64)"; exit 1; }; fi
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release $(if $(filter arm64,$(ARCH)),--arm64,--x86-64) $(addprefix --bin ,$(LAMBDAS))
	@ls -l target/lambda/*/bootstrap

deploy: build ## deploy the stack with SAM from samconfig.toml (cp samconfig.example.toml samconfig.toml), or guided without one
	@if [ -f samconfig.toml ]; then $(SAM) deploy; \
	else $(SAM) deploy --guided --stack-name $(STACK) --capabilities CAPABILITY_IAM --parameter-overrides Architecture=$(ARCH); fi

# The smoke test uses the nbfleet CLI alone. Against AWS it needs the stack's ApiUrl (NBFLEET_API_URL,
# or api_url in ~/.config/nbfleet/config) and your credentials; the AWS CLI `nbfleet open` runs comes
# from the venv. LOCAL=1 starts moto and the local stack.
smoke: ## prove the deployed stack: launch, HTTPS login, probe, stop, start, delete, cost (LOCAL=1: the local stack)
ifeq ($(LOCAL),1)
	$(MAKE) build-local
	scripts/moto.sh start
	MOTO_ENDPOINT=http://127.0.0.1:$${NBFLEET_MOTO_PORT:-5000} NBFLEET_LOCAL_PORT=$${NBFLEET_LOCAL_PORT:-9000} target/debug/nbfleet-local > target/smoke-local.log 2>&1 & stack=$$!; \
	  trap 'kill $$stack 2>/dev/null' EXIT; \
	  for _ in $$(seq 120); do grep -q 'stack ready' target/smoke-local.log && break; \
	    kill -0 $$stack 2>/dev/null || { cat target/smoke-local.log; exit 1; }; sleep 0.5; done; \
	  LOCAL=1 NBFLEET=target/debug/nbfleet scripts/smoke.sh
else
	$(MAKE) venv
	cargo build --quiet --bin nbfleet
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" NBFLEET=target/debug/nbfleet scripts/smoke.sh
endif

destroy: $(DEPLOY_TOOLS) ## delete the stack (the notebook table is kept; running notebooks are not stopped)
	$(SAM) delete --stack-name $(STACK)

build-local: venv
	@echo "==> building nbfleet (a first build takes about 6 minutes on 2 cores; cargo shows its progress)"
	cargo build --bin nbfleet-local --bin nbfleet-demo --bin nbfleet

demo: build-local ## the main job, locally: launch a notebook, log in over HTTPS, clean up (KEEP=1 keeps it)
ifeq ($(KEEP),1)
	scripts/moto.sh start
	MOTO_ENDPOINT=http://127.0.0.1:$${NBFLEET_MOTO_PORT:-5000} KEEP=1 target/debug/nbfleet-demo
else
	scripts/with-moto.sh target/debug/nbfleet-demo
endif

local: build-local ## run the local stack on http://127.0.0.1:9000 against moto (Ctrl-C stops it)
	scripts/moto.sh start
	MOTO_ENDPOINT=http://127.0.0.1:$${NBFLEET_MOTO_PORT:-5000} target/debug/nbfleet-local

local-stop: ## stop what `make demo KEEP=1` or `make local` left running
	-@[ -f .local/stack.pid ] && kill $$(cat .local/stack.pid) 2>/dev/null; rm -f .local/stack.pid
	scripts/moto.sh stop
