# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both bootstrap the virtual environment from the lock file first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.agentwatch-installed
# System tools of the collector/ bundle tests: promtool (Debian `prometheus`) and Go
# (Debian `golang-go`, for Go's regexp). Installed only when missing; sudo only if not root.
TOOLS_STAMP := $(VENV)/.agentwatch-system-tools
# A second venv with chromadb (requirements-chroma.lock = requirements.lock + the `chromadb` extra)
# for the chromadb instrumentor's tests. Kept apart because chromadb brings aiohttp, httptools and
# uvloop, which change how google-genai and uvicorn behave in the main suite.
CHROMA_VENV := .venv-chroma
CHROMA_BIN := $(CHROMA_VENV)/bin
CHROMA_STAMP := $(CHROMA_VENV)/.agentwatch-installed
CHROMA_TESTS := tests/test_chromadb.py tests/test_aiohttp_genai.py
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)
# logfire is in the dev extra only for the scrubber benchmark; keep its pydantic
# plugin out of the demo, the tests and the overhead benchmark.
export PYDANTIC_DISABLE_PLUGINS := logfire-plugin

# Lint and types of agentwatch/ (pinned in the lock), before the tests.
.PHONY: demo test lint test-chroma test-fast bench bench-profile bench-scrubber bench-genai lock doctor clean

# $(call sync,<venv python>,<lock file>): the venv gets exactly the lock, plus agentwatch (editable),
# by the main venv's uv; then the rule's stamp is touched.
define sync
	@$(BIN)/uv pip sync --quiet --python $(1) $(2)
	@$(BIN)/uv pip install --quiet --python $(1) --no-deps -e .
	@touch $@
endef

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
	$(call sync,$(BIN)/python,requirements.lock)

$(CHROMA_STAMP): requirements-chroma.lock pyproject.toml $(STAMP)
	@test -x $(CHROMA_BIN)/python || $(PYTHON) -m venv --without-pip $(CHROMA_VENV)
	$(call sync,$(CHROMA_BIN)/python,requirements-chroma.lock)

demo: $(STAMP)
	$(BIN)/python examples/run_demo.py

$(TOOLS_STAMP): $(STAMP)
	@if ! command -v promtool >/dev/null 2>&1 || ! command -v go >/dev/null 2>&1; then \
		echo "installing system tools for the collector/ tests: prometheus (promtool), golang-go"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends prometheus golang-go >/dev/null \
		|| echo "WARNING: could not install prometheus/golang-go; their tests fail under CI=true and are skipped otherwise"; \
	fi
	@if command -v promtool >/dev/null 2>&1 && command -v go >/dev/null 2>&1; then touch $(TOOLS_STAMP); fi

lint: $(STAMP)
	$(BIN)/ruff check agentwatch
	$(BIN)/basedpyright --project pyproject.toml

test: $(STAMP) $(TOOLS_STAMP) $(CHROMA_STAMP) lint
	$(BIN)/python -m pytest -q
	@$(MAKE) --no-print-directory test-chroma

# The chromadb tests alone, in .venv-chroma (there a missing chromadb fails them instead of skipping).
test-chroma: $(CHROMA_STAMP)
	AGENTWATCH_REQUIRE_CHROMADB=1 $(CHROMA_BIN)/python -m pytest -q -m chromadb $(CHROMA_TESTS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py

# Where the CPU of one request goes, per component (py-spy, from the dev extra), agentwatch next to the stock distro.
bench-profile: $(STAMP)
	$(BIN)/python benchmarks/profile.py

bench-scrubber: $(STAMP)
	$(BIN)/python benchmarks/scrubber.py

bench-genai: $(STAMP)
	$(BIN)/python benchmarks/genai_compare.py

doctor: $(STAMP)
	$(BIN)/agentwatch doctor

# Re-resolve the pinned dependency set (needs the package registry).
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes -o requirements.lock --python-version 3.11
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra chromadb --generate-hashes -c requirements.lock -o requirements-chroma.lock --python-version 3.11

clean:
	rm -rf $(VENV) $(CHROMA_VENV) agentwatch-data .pytest_cache

# --- The collector distribution (collector/distribution/) and the local agent/gateway stack ---
# `make collector` builds otelcol-agentwatch (the components of collector/otelcol/*.yaml, one
# collector release) with the go command from the Go module proxy; make rebuilds it only when
# a source is newer than the binary. The Go caches are the default ones (GOMODCACHE, GOCACHE).
# On this 2-core machine (shared, load ~14): module download 2 min, first build 24 min wall /
# 7.5 min CPU, warm `make collector` 20 s; binary 79 MiB (collector/README.md has the table).
# `make test` builds it when missing (tests/test_collector_binary.py, tests/test_collector_e2e.py).
COLLECTOR_DIR := collector/distribution
COLLECTOR_BIN := $(COLLECTOR_DIR)/build/otelcol-agentwatch
COLLECTOR_SRC := $(wildcard $(COLLECTOR_DIR)/*.go) $(COLLECTOR_DIR)/go.mod $(COLLECTOR_DIR)/go.sum
.PHONY: collector demo-stack

collector: $(COLLECTOR_BIN)

$(COLLECTOR_BIN): $(COLLECTOR_SRC) | $(TOOLS_STAMP)
	cd $(COLLECTOR_DIR) && go build -p=2 -buildvcs=false -trimpath -ldflags="-s -w" -o build/otelcol-agentwatch .

test: $(COLLECTOR_BIN)

# The agent -> two gateways -> Prometheus pipeline of tests/test_collector_e2e.py on loopback,
# with the demo's traffic; prints the URLs; Ctrl-C stops everything.
demo-stack: $(STAMP) $(TOOLS_STAMP) $(COLLECTOR_BIN)
	$(BIN)/python collector/tools/demo_stack.py
