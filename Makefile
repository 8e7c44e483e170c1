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
# What bundles ship: statically linked, so it runs on any x86_64 Linux server.
STATIC_BRIDGE := $(ROOT)/target/x86_64-unknown-linux-gnu/release/mmplug-bridge
# The same for linux-arm64 servers, cross-built (make static-bridge-arm64).
STATIC_BRIDGE_ARM64 := $(ROOT)/target/aarch64-unknown-linux-gnu/release/mmplug-bridge
# The Go tools and harness; the Rust target dir is not Go code.
GO_PKGS   := ./tools/... ./conformance/... ./bench/... ./crates/goplugin/fuzz/seedgen
# The CPython versions the SDK and its bundles support (docs/operations.md "Supported Python
# versions"), oldest first: make test runs the SDK's tests on the oldest and the newest and the
# hello cases against an offline bundle on each.
SUPPORTED_PYTHONS := 3.10 3.11 3.12 3.13
OLDEST_PYTHON     := $(firstword $(SUPPORTED_PYTHONS))
NEWEST_PYTHON     := $(lastword $(SUPPORTED_PYTHONS))

.PHONY: help setup venv gomod demo test lint test-rust test-go test-python conformance generate check-generated bench clean static-bridge static-bridge-arm64 test-arm64 test-bundle test-pythons test-python-versions upstream fuzz-brief fuzz soak mutants dev-server dev-server-arm64 wheel release test-wheel

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

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

test: setup lint check-generated test-rust fuzz-brief test-go test-python test-python-versions conformance matrix test-bundle test-wheel test-arm64 upstream e2e ## every test, the real server and database (make e2e) included
	@echo "make test: all suites passed"

lint: setup ## formatters and linters, the same commands as CI
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@out=$$(gofmt -l tools conformance bench crates/goplugin/fuzz/seedgen); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet $(GO_PKGS)
	$(VENV)/bin/ruff check python examples
	$(VENV)/bin/ruff format --check python examples
	cd python && $(VENV)/bin/mypy --strict src
	cd python && $(VENV)/bin/mypy --strict scripts/check_dev.py scripts/check_wheel_choice.py scripts/build_dist.py hatch_build.py
	cd python && $(VENV)/bin/mypy --strict ../examples/hello/plugin.py
	cd python && $(VENV)/bin/mypy --strict ../examples/fastapi/plugin.py
	cd python && $(VENV)/bin/mypy --strict ../examples/flask/plugin.py
	cd python && $(VENV)/bin/mypy --strict ../examples/moderation/plugin.py
	cd python && $(VENV)/bin/mypy --strict ../examples/oauth-connect/plugin.py
	cd python && $(VENV)/bin/mypy --strict ../examples/remind/plugin.py
	cd python && $(VENV)/bin/mypy --strict ../conformance/harness/testdata/streams/plugin.py
	cd python && $(VENV)/bin/mypy --strict ../conformance/harness/testdata/slowstart/plugin.py
	cd python && $(VENV)/bin/mypy --strict ../conformance/harness/testdata/faults/plugin.py
	cd python && $(VENV)/bin/mypy --strict ../conformance/harness/testdata/badinput/plugin.py
	cd python && $(VENV)/bin/mypy --strict ../conformance/harness/testdata/security/plugin.py
	cd python && $(VENV)/bin/mypy --strict ../conformance/harness/testdata/jobs/plugin.py
	$(VENV)/bin/ruff check crates/bridge/src/wheelenv.py
	$(VENV)/bin/ruff format --check crates/bridge/src/wheelenv.py
	$(VENV)/bin/ruff check conformance/harness/testdata conformance/upstream bench
	$(VENV)/bin/ruff format --check conformance/harness/testdata conformance/upstream bench
	cd python && $(VENV)/bin/mypy --strict ../bench/plugin-python/plugin.py ../bench/grpcio_floor.py ../bench/lane_floor.py ../bench/dispatch_floor.py
	# (a run of its own: mypy refuses two modules named plugin in one)
	cd python && $(VENV)/bin/mypy --strict ../bench/plugin-python-floor/plugin.py

# After bumping server/public in go.mod (CONTRIBUTING.md "Moving to a new Mattermost release"):
# the schema from the module, the protos, the Python client, hook signatures and docs/reference
# from the schema, the Python protobuf modules from the protos,
# and the harness's plugin.API catch-all and fidelity plumbing from the module's interface.
generate: setup ## regenerate everything generated (schema, protos, SDK stubs, references, harness plumbing) from the pinned server/public
	$(GO) run ./tools/apischema
	$(CARGO) run -q -p mmplug-codegen
	$(PY) python/scripts/gen_proto.py
	cd conformance/harness && $(GO) generate .

check-generated: setup ## regenerate schema, protos and stubs; fail on any diff
	$(GO) run ./tools/apischema -check
	$(CARGO) run -q -p mmplug-codegen -- --check
	$(PY) python/scripts/gen_proto.py --check

test-rust: setup ## Rust unit, golden (Go-judged) and interop tests
	$(CARGO) test --workspace

# The fuzz targets (crates/gob/fuzz, crates/goplugin/fuzz) on the stable toolchain; see
# docs/operations.md "Fuzzing". The long run's results go to bench/fuzz-results.md.
FUZZ_SECONDS ?= 600
fuzz-brief: ## every fuzz target for 20 s from its committed seeds; fails on any crash, hang or oversized allocation
	scripts/fuzz.sh 20

fuzz: ## the long fuzz run: every target for FUZZ_SECONDS (default 600) s
	scripts/fuzz.sh $(FUZZ_SECONDS)

# The mutation check (docs/operations.md "Mutation testing"): each mutation in mutants/ is
# applied alone to a scratch copy of HEAD and must fail its named test with its message.
# Not part of `make test`: it keeps a second build of the workspace (target/mutants/cargo)
# and checks the tests, not the code (2 to 4 minutes on 2 cores); runs are recorded in
# bench/mutants-results.md.
mutants: setup ## every mutation in mutants/ applied alone to a scratch copy of HEAD; fails if one survives its test
	scripts/mutants.sh

test-go:
	$(GO) test $(GO_PKGS)

test-python: setup
	cd python && $(VENV)/bin/pytest -q
	# -c: the examples' tests take the SDK's pytest settings (asyncio mode) from python/.
	cd python && $(VENV)/bin/pytest -q -c pyproject.toml ../examples/hello/tests ../examples/fastapi/tests ../examples/flask/tests \
		../examples/moderation/tests ../examples/oauth-connect/tests ../examples/remind/tests

# The SDK's and the examples' tests again on the oldest and the newest supported Python, each in
# a venv of its own (target/venv-pyX.Y, made again when pyproject.toml changes; on 3.10 the dev
# extra takes the FastAPI and Starlette releases that still support it): what lint cannot see
# fails here, such as asyncio.wait_for raising asyncio's own TimeoutError on 3.10 (the builtin
# one from 3.11) or 3.12's create_task refusing a generator-based coroutine. About a minute and
# a half per version; make test runs it.
EDGE_PYTHONS := $(OLDEST_PYTHON) $(NEWEST_PYTHON)
$(ROOT)/target/venv-py%/.installed: python/pyproject.toml
	rm -rf $(ROOT)/target/venv-py$*
	python=$$(scripts/find-python.sh $*) && "$$python" -m venv $(ROOT)/target/venv-py$*
	$(ROOT)/target/venv-py$*/bin/python -m pip install --quiet --upgrade pip==25.3
	$(ROOT)/target/venv-py$*/bin/python -m pip install --quiet -e 'python[dev]'
	touch $@
test-python-versions: $(foreach v,$(EDGE_PYTHONS),$(ROOT)/target/venv-py$(v)/.installed) ## the SDK's and the examples' tests on the oldest and the newest supported Python
	for v in $(EDGE_PYTHONS); do \
		echo "test-python-versions: Python $$v"; \
		(cd python && $(ROOT)/target/venv-py$$v/bin/pytest -q) || exit 1; \
		(cd python && $(ROOT)/target/venv-py$$v/bin/pytest -q -c pyproject.toml \
			$(addprefix ../,$(wildcard examples/*/tests))) || exit 1; \
	done

conformance: setup bridge ## the real-supervisor conformance cases (hellogo, examples/hello on the lane and on gRPC, the examples' own cases), the fidelity sweep of every API method and hook, and a 50,000-call soak
	$(GO) run ./conformance/harness -plugin conformance/hellogo
	$(GO) run ./conformance/harness -plugin examples/hello -bridge $(BRIDGE) -venv $(VENV)
	# The same cases with every unary call on gRPC, the contract's interoperable form.
	MMPLUG_TRANSPORT=grpc $(GO) run ./conformance/harness -plugin examples/hello -bridge $(BRIDGE) -venv $(VENV)
	$(GO) run ./conformance/harness -fidelity -plugin conformance/harness/testdata/fidelity -bridge $(BRIDGE) -venv $(VENV)
	$(GO) run ./conformance/harness -smoke -plugin examples/moderation -bridge $(BRIDGE) -venv $(VENV)
	# examples/oauth-connect's own cases (cases_oauth.go): the connect flow against the test kit's
	# OAuth2 provider on localhost.
	$(GO) run ./conformance/harness -plugin examples/oauth-connect -bridge $(BRIDGE) -venv $(VENV)
	# examples/remind's own cases (cases_remind.go), and the cluster cases of the SDK's jobs: two
	# plugin processes over one in-memory server (remind's one-shot jobs, testdata/jobs' recurring one).
	$(GO) run ./conformance/harness -plugin examples/remind -bridge $(BRIDGE) -venv $(VENV)
	# The plugins written for Mattermost's own Python SDK, from their directories (make upstream
	# runs them from bundles).
	for plugin in conformance/upstream/*/; do \
		$(GO) run ./conformance/harness -upstream -plugin $$plugin -bridge $(BRIDGE) -venv $(VENV) || exit 1; \
	done
	# The benchmark plugins still answer as make bench expects (with a debug bridge the
	# figures mean nothing; -run leaves bench/results.json alone).
	$(GO) run ./conformance/harness -bench -run 'hook_serial|api_get_user|sse|python_floor' -bridge $(BRIDGE) -venv $(VENV)
	$(GO) run ./conformance/harness -soak 50000 -plugin examples/hello -bridge $(BRIDGE) -venv $(VENV)

# The long soak: SOAK_CALLS mixed calls (hooks, HTTP, API calls from Python) through the real
# supervisor with the release bridge; fails on any wrong answer or if the bridge's or Python's
# RSS or descriptors grow past the bounds in conformance/harness/soak.go. `make conformance`
# runs 50,000 of them; bench/soak-results.md records a run of the long one.
SOAK_CALLS ?= 1000000
soak: setup ## the long soak: SOAK_CALLS (1,000,000) mixed calls to examples/hello, memory and descriptors flat
	$(CARGO) build --release -p mmplug-bridge
	$(GO) run ./conformance/harness -soak $(SOAK_CALLS) -plugin examples/hello -bridge $(ROOT)/target/release/mmplug-bridge -venv $(VENV)

static-bridge: ## the statically linked release bridge that bundles ship
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release -p mmplug-bridge --target x86_64-unknown-linux-gnu

# Cross-built on this x86_64 machine with Debian's aarch64 gcc and glibc (static; musl is out:
# the bridge calls glibc's malloc_trim). The script installs the rustup target and the Debian
# packages it needs (qemu-user-static too, for test-arm64) when they are missing.
static-bridge-arm64: ## the statically linked release bridge for linux-arm64 servers (cross-built)
	scripts/arm64-bridge.sh $(CARGO)

# The arm64 bridge under qemu-user: go-plugin's handshake as Mattermost launches it,
# examples/hello's cases with the real supervisor starting it through qemu, and a two-platform
# bundle activated offline with its arm64 bridge (see the script for what this proves and what
# it does not).
ARM64_BUNDLES := $(ROOT)/target/bundle-arm64
test-arm64: setup static-bridge static-bridge-arm64 dev-server-arm64 ## the linux-arm64 bridge under qemu-user: the handshake, the hello cases, a two-platform bundle offline, the aarch64 dev server
	rm -rf $(ARM64_BUNDLES)
	$(VENV)/bin/mmplug bundle examples/hello --python $(PYVER) --platform all \
		--bridge linux-amd64=$(STATIC_BRIDGE) --bridge linux-arm64=$(STATIC_BRIDGE_ARM64) \
		--output $(ARM64_BUNDLES)
	$(GO) build -o $(ROOT)/target/harness ./conformance/harness
	scripts/arm64-qemu-test.sh $(STATIC_BRIDGE_ARM64) $(ROOT)/target/harness $(VENV) \
		$(ARM64_BUNDLES)/com.mmplug.hello-0.1.0.tar.gz $(DEV_SERVER_ARM64)

# The offline bundle, end to end, as a user gets there: `mmplug bundle` builds examples/hello for
# every supported Python and both platforms (its defaults), and the harness installs the tar.gz
# as the server would and runs the hello cases inside a network namespace with no network
# (unshare -n): the bridge sets up Python from the bundle's wheels alone, first with this
# machine's PATH, then with only one supported Python on it, for each of them in turn
# (scripts/python-versions-test.sh, about 35 s a version). Which of the bundle's wheels an arm64
# (and an x86_64) server's Python of each version would install is checked with the bridge's
# own selection code (python/scripts/check_wheel_choice.py). A new user's journey, from the
# wheel alone, is make test-wheel.
PYVER = $$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
test-bundle: setup static-bridge static-bridge-arm64 ## mmplug bundle examples/hello (amd64 + arm64, every supported Python); activate the tar.gz under the real supervisor with no network, also on each supported Python alone
	rm -rf $(ROOT)/target/bundle-test
	$(VENV)/bin/mmplug bundle examples/hello --platform all \
		--bridge linux-amd64=$(STATIC_BRIDGE) --bridge linux-arm64=$(STATIC_BRIDGE_ARM64) \
		--output $(ROOT)/target/bundle-test
	$(GO) build -o $(ROOT)/target/harness ./conformance/harness
	unshare -n $(ROOT)/target/harness -bundle $(ROOT)/target/bundle-test/com.mmplug.hello-0.1.0.tar.gz
	scripts/python-versions-test.sh $(ROOT)/target/harness \
		$(ROOT)/target/bundle-test/com.mmplug.hello-0.1.0.tar.gz $(SUPPORTED_PYTHONS)
	for machine in aarch64 x86_64; do \
		$(PY) python/scripts/check_wheel_choice.py $(ROOT)/target/bundle-test/com.mmplug.hello-0.1.0.tar.gz $$machine || exit 1; \
	done

# The same check alone, for a quick look after a change that may behave differently on some
# Python: examples/hello's offline amd64 bundle passes the hello cases on every supported
# Python, each alone on PATH (make test-bundle does this too, with its two-platform bundle).
PYTHONS_BUNDLE := $(ROOT)/target/bundle-pythons
test-pythons: setup static-bridge ## the hello cases against examples/hello's offline bundle on every supported Python (SUPPORTED_PYTHONS), each alone on PATH
	rm -rf $(PYTHONS_BUNDLE)
	$(VENV)/bin/mmplug bundle examples/hello --bridge linux-amd64=$(STATIC_BRIDGE) \
		--output $(PYTHONS_BUNDLE)
	$(GO) build -o $(ROOT)/target/harness ./conformance/harness
	scripts/python-versions-test.sh $(ROOT)/target/harness \
		$(PYTHONS_BUNDLE)/com.mmplug.hello-0.1.0.tar.gz $(SUPPORTED_PYTHONS)

# The dev server that wheels carry (mmplug dev): the conformance harness, statically linked
# (CGO_ENABLED=0) so it runs on any Linux of its machine; -trimpath and -s -w keep the build
# machine's paths and the debug tables out of it (22 MB instead of 33).
DEV_SERVER       := $(ROOT)/target/dev-server/linux-amd64/mmplug-dev
DEV_SERVER_ARM64 := $(ROOT)/target/dev-server/linux-arm64/mmplug-dev
DEV_SERVER_BUILD := CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags='-s -w'
dev-server: ## the dev server for linux-amd64 wheels (the harness's -dev mode, static)
	GOARCH=amd64 $(DEV_SERVER_BUILD) -o $(DEV_SERVER) ./conformance/harness
dev-server-arm64: ## the same for linux-arm64 wheels (cross-built by Go)
	GOARCH=arm64 $(DEV_SERVER_BUILD) -o $(DEV_SERVER_ARM64) ./conformance/harness

# mmplug's release files (python/scripts/build_dist.py, python/hatch_build.py): a platform wheel
# per machine, manylinux_2_17 x86_64 and aarch64, each with both static bridges (bundles carry
# both, whatever machine builds them), the dev server of its own machine and the pure SDK
# wheel that bundles carry; and the sdist (Python sources only).
WHEEL_DIR := $(ROOT)/target/wheel
WHEEL_BRIDGES := --bridge linux-amd64=$(STATIC_BRIDGE) --bridge linux-arm64=$(STATIC_BRIDGE_ARM64)
wheel: setup static-bridge static-bridge-arm64 dev-server dev-server-arm64 ## mmplug's platform wheels (x86_64, aarch64) and sdist, in target/wheel
	rm -rf $(WHEEL_DIR)
	$(PY) python/scripts/build_dist.py --out $(WHEEL_DIR) $(WHEEL_BRIDGES) \
		--dev-server linux-amd64=$(DEV_SERVER) --dev-server linux-arm64=$(DEV_SERVER_ARM64)

# What gets published, in dist/: the wheels, the sdist, SHA256SUMS, checked by twine (in a
# venv of its own, pinned, so the dev environment does not carry it). Uploading stays a manual
# step: CONTRIBUTING.md "Cutting a release".
TWINE_VENV := $(ROOT)/target/twine-venv
release: wheel ## the release files in dist/ (wheels, sdist, SHA256SUMS), twine check --strict
	rm -rf $(ROOT)/dist && mkdir -p $(ROOT)/dist
	cp $(WHEEL_DIR)/*.whl $(WHEEL_DIR)/*.tar.gz $(ROOT)/dist/
	cd $(ROOT)/dist && sha256sum *.whl *.tar.gz > SHA256SUMS
	test -x $(TWINE_VENV)/bin/twine || { python3 -m venv $(TWINE_VENV) && \
		$(TWINE_VENV)/bin/pip install --quiet --disable-pip-version-check twine==7.0.0; }
	$(TWINE_VENV)/bin/twine check --strict $(ROOT)/dist/*.whl $(ROOT)/dist/*.tar.gz
	@cat $(ROOT)/dist/SHA256SUMS

# A plugin author's journey with only the wheel (scripts/wheel-journey.sh): a fresh venv with
# the x86_64 wheel (built here without the sdist or the aarch64 wheel, which it does not need),
# a PATH without cargo and go, no checkout: mmplug new, the scaffold's pytest, mmplug dev,
# mmplug bundle (both platforms, from the wheel's bridges), and the harness built from the
# checkout (the judge, not the author's tool) activating that bundle offline.
JOURNEY := $(ROOT)/target/journey
test-wheel: setup static-bridge static-bridge-arm64 dev-server ## an author's journey from the wheel alone: new, pytest, dev, bundle (amd64 + arm64), activation offline; no cargo, Go or checkout
	rm -rf $(JOURNEY) && mkdir -p $(JOURNEY)
	$(PY) python/scripts/build_dist.py --out $(JOURNEY)/wheel --no-sdist $(WHEEL_BRIDGES) \
		--dev-server linux-amd64=$(DEV_SERVER)
	$(GO) build -o $(ROOT)/target/harness ./conformance/harness
	scripts/wheel-journey.sh $(JOURNEY)/wheel/mmplug-*.whl $(ROOT)/target/harness $(PY) \
		$(JOURNEY)/author $(PYVER) 18065

# The compatibility suite (docs/upstream.md): every plugin of conformance/upstream, written only
# from the documented surface of Mattermost's own Python SDK, bundled unchanged by `mmplug
# bundle` and run under the real supervisor with its cases (conformance/harness/cases_upstream.go,
# picked by the plugin's id). python/tests/test_upstream_plugins.py runs them in the test kit.
UPSTREAM_BUNDLES := $(ROOT)/target/upstream
upstream: setup static-bridge ## the plugins written for Mattermost's own Python SDK (conformance/upstream) bundled unchanged and run under the real supervisor
	rm -rf $(UPSTREAM_BUNDLES)
	$(GO) build -o $(ROOT)/target/harness ./conformance/harness
	for plugin in conformance/upstream/*/; do \
		$(VENV)/bin/mmplug bundle $$plugin --python $(PYVER) --bridge linux-amd64=$(STATIC_BRIDGE) \
			--output $(UPSTREAM_BUNDLES) || exit 1; \
	done
	for bundle in $(UPSTREAM_BUNDLES)/*.tar.gz; do $(ROOT)/target/harness -upstream -bundle $$bundle || exit 1; done

.PHONY: matrix
matrix: setup bridge ## the conformance harness against older server/public releases (oldest supported ESR and one in between; conformance/matrix)
	conformance/matrix/run.sh $(BRIDGE) $(VENV)

# Python keeps its bytecode caches, as under a server: a PYTHONDONTWRITEBYTECODE in the
# caller's environment would have every activation compile the plugin's module again.
bench: setup static-bridge ## bench/plugin-python beside its native Go twin under the real supervisor, then the post latency users see on a real server: the table of bench/README.md, ratios, targets; writes bench/results.json
	env -u PYTHONDONTWRITEBYTECODE $(GO) run ./conformance/harness -bench -bridge $(STATIC_BRIDGE) -venv $(VENV)
	env -u PYTHONDONTWRITEBYTECODE scripts/e2e/run.sh -bench-out $(ROOT)/bench/results.json

clean:
	rm -rf target .venv

# The real-server test: a private PostgreSQL cluster and a real Mattermost 11.4.0 server (built
# once from the Go module proxy into ~/.cache/mmplug), the examples bundled with `mmplug bundle`
# and deployed beside their native Go twin, and cases over REST as users would run them; hostile
# inputs side by side with the Go twin. E2E_RUN=REGEX runs only the matching cases. See
# docs/operations.md "The real-server test (make e2e)".
.PHONY: e2e
# E2E_CAMPAIGN=N and E2E_SEED=S size and seed the hostile-input campaign (case campaign; 300
# inputs, seed 1 by default); a long run: make e2e E2E_RUN=campaign E2E_CAMPAIGN=5000 E2E_SEED=7.
E2E_RUN ?=
E2E_CAMPAIGN ?=
E2E_SEED ?=
e2e: setup static-bridge ## a real PostgreSQL and Mattermost server, the examples and their Go twin deployed, cases over REST
	scripts/e2e/run.sh $(if $(E2E_RUN),-run '$(E2E_RUN)') $(if $(E2E_CAMPAIGN),-campaign '$(E2E_CAMPAIGN)') $(if $(E2E_SEED),-campaign-seed '$(E2E_SEED)')
