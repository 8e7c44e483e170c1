# mmplug entry points. `make demo` and `make test` set up everything they need on a fresh
# machine (Rust crates, Go modules, a Python venv with pinned dependencies).
SHELL := /bin/bash
.DEFAULT_GOAL := help

ROOT      := $(abspath .)
VENV      := $(ROOT)/.venv
PY        := $(VENV)/bin/python
CARGO     ?= cargo
GO        ?= go
BRIDGE    := $(ROOT)/target/debug/mmplug-bridge
# The Go tools and harness; the Rust target dir is not Go code.
GO_PKGS   := ./tools/... ./conformance/...

.PHONY: help setup venv gomod demo test lint test-rust test-go test-python conformance generate check-generated bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

setup: venv gomod ## install every dependency (Python venv, Go modules, Rust crates)
	$(CARGO) fetch --locked 2>/dev/null || $(CARGO) fetch

venv: $(VENV)/.installed
$(VENV)/.installed: python/pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -e 'python[dev]'
	touch $@

gomod:
	$(GO) mod download

bridge: ## build the bridge (debug)
	$(CARGO) build -p mmplug-bridge

demo: setup bridge ## run examples/hello under Mattermost's real plugin supervisor with the in-memory server
	$(GO) run ./conformance/harness -demo -plugin examples/hello -bridge $(BRIDGE) -venv $(VENV)

test: setup lint check-generated test-rust test-go test-python conformance matrix ## every test
	@echo "make test: all suites passed"

lint: setup ## formatters and linters, the same commands as CI
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@out=$$(gofmt -l tools conformance); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet $(GO_PKGS)
	$(VENV)/bin/ruff check python examples
	$(VENV)/bin/ruff format --check python examples
	cd python && $(VENV)/bin/mypy --strict src
	cd python && $(VENV)/bin/mypy --strict ../examples/hello/plugin.py
	cd python && $(VENV)/bin/mypy --strict ../examples/fastapi/plugin.py
	cd python && $(VENV)/bin/mypy --strict ../examples/flask/plugin.py
	cd python && $(VENV)/bin/mypy --strict ../conformance/harness/testdata/streams/plugin.py
	cd python && $(VENV)/bin/mypy --strict ../conformance/harness/testdata/slowstart/plugin.py
	$(VENV)/bin/ruff check conformance/harness/testdata
	$(VENV)/bin/ruff format --check conformance/harness/testdata

check-generated: setup ## regenerate schema, protos and stubs; fail on any diff
	$(GO) run ./tools/apischema -check
	$(CARGO) run -q -p mmplug-codegen -- --check
	$(PY) python/scripts/gen_proto.py --check

test-rust: setup ## Rust unit, golden (Go-judged) and interop tests
	$(CARGO) test --workspace

test-go:
	$(GO) test $(GO_PKGS)

test-python: setup
	cd python && $(VENV)/bin/pytest -q
	cd python && $(VENV)/bin/pytest -q ../examples/fastapi/tests ../examples/flask/tests

conformance: setup bridge ## the real-supervisor conformance cases (hellogo, examples/hello) and the fidelity sweep of every API method and hook
	$(GO) run ./conformance/harness -plugin conformance/hellogo
	$(GO) run ./conformance/harness -plugin examples/hello -bridge $(BRIDGE) -venv $(VENV)
	$(GO) run ./conformance/harness -fidelity -plugin conformance/harness/testdata/fidelity -bridge $(BRIDGE) -venv $(VENV)

.PHONY: matrix
matrix: setup bridge ## the conformance harness against older server/public releases (oldest supported ESR and one in between; conformance/matrix)
	conformance/matrix/run.sh $(BRIDGE) $(VENV)

bench: setup ## ServeHTTP throughput beside a native Go plugin (ratios) and bridge memory during a 1 GiB upload; writes bench/results.json
	$(CARGO) build --release -p mmplug-bridge
	$(GO) run ./conformance/harness -bench -bridge $(ROOT)/target/release/mmplug-bridge -venv $(VENV)

clean:
	rm -rf target .venv
