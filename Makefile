# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both bootstrap the virtual environment from the lock file first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.agentwatch-installed
# System tools of the collector/ bundle tests: promtool (Debian `prometheus`), Go (Debian `golang-go`,
# for Go's regexp) and amtool + alertmanager (Debian `prometheus-alertmanager`); Chromium (Debian
# `chromium`) opens the HTML report in the report tests. Installed only when missing; sudo only if not root.
TOOLS_STAMP := $(VENV)/.agentwatch-system-tools
# A second venv with chromadb (requirements-chroma.lock = requirements.lock + the `chromadb` extra)
# for the chromadb instrumentor's tests. Kept apart because chromadb brings aiohttp, httptools and
# uvloop, which change how google-genai and uvicorn behave in the main suite.
CHROMA_VENV := .venv-chroma
CHROMA_BIN := $(CHROMA_VENV)/bin
CHROMA_STAMP := $(CHROMA_VENV)/.agentwatch-installed
CHROMA_TESTS := tests/test_chromadb.py tests/test_aiohttp_genai.py
# The lowest end of pyproject.toml's ranges (requirements-lowest.lock, `uv pip compile --resolution
# lowest-direct`) beside google-adk, whose bounds set it: OpenTelemetry 1.44 / 0.65b0, google-genai 2.x.
# requirements.lock is the highest end (uv's default resolution, `make lock` re-resolves with --upgrade)
# of the same set without google-adk.
LOWEST_VENV := .venv-lowest
LOWEST_BIN := $(LOWEST_VENV)/bin
LOWEST_STAMP := $(LOWEST_VENV)/.agentwatch-installed
LOWEST_LOG := $(LOWEST_VENV)/test.log
# A benchmark-only venv with OpenLIT (benchmarks/requirements-openlit.lock: the demo app's runtime
# needs plus openlit, constrained by requirements.lock; no agentwatch) for the `openlit` mode of
# benchmarks/overhead.py. `make bench` builds it; `make test` does not.
OPENLIT_VENV := .venv-openlit
OPENLIT_BIN := $(OPENLIT_VENV)/bin
OPENLIT_STAMP := $(OPENLIT_VENV)/.openlit-installed
OPENLIT_LOCK := benchmarks/requirements-openlit.lock
# Both resolutions run the whole suite at once (one core each), less the tests marked single_env (each
# with its reason: the collector bundle, venvs a test builds itself, a browser, several workers at once),
# which then run once, alone, in the main venv.
BOTH := not single_env
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)
# logfire is in the dev group only for the scrubber benchmark; keep its pydantic
# plugin out of the demo, the tests and the overhead benchmark.
export PYDANTIC_DISABLE_PLUGINS := logfire-plugin

# Lint and types of agentwatch/ (pinned in the lock), before the tests.
.PHONY: demo test lint test-chroma test-lowest test-fast bench bench-profile bench-scrubber bench-genai lock doctor clean

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

$(LOWEST_STAMP): requirements-lowest.lock pyproject.toml $(STAMP)
	@test -x $(LOWEST_BIN)/python || $(PYTHON) -m venv --without-pip $(LOWEST_VENV)
	$(call sync,$(LOWEST_BIN)/python,requirements-lowest.lock)

# Exactly the lock, without agentwatch (OpenLIT is the other choice the benchmark compares).
$(OPENLIT_STAMP): $(OPENLIT_LOCK) $(STAMP)
	@test -x $(OPENLIT_BIN)/python || $(PYTHON) -m venv --without-pip $(OPENLIT_VENV)
	@$(BIN)/uv pip sync --quiet --python $(OPENLIT_BIN)/python $(OPENLIT_LOCK)
	@touch $@

demo: $(STAMP)
	$(BIN)/python examples/run_demo.py

$(TOOLS_STAMP): $(STAMP)
	@if ! command -v promtool >/dev/null 2>&1 || ! command -v go >/dev/null 2>&1 || ! command -v amtool >/dev/null 2>&1 \
		|| ! command -v chromium >/dev/null 2>&1; then \
		echo "installing system tools for the tests: prometheus (promtool), golang-go, prometheus-alertmanager (amtool), chromium"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends prometheus golang-go prometheus-alertmanager chromium >/dev/null \
		|| echo "WARNING: could not install prometheus/golang-go/prometheus-alertmanager/chromium; their tests fail under CI=true and are skipped otherwise"; \
	fi
	@if command -v promtool >/dev/null 2>&1 && command -v go >/dev/null 2>&1 && command -v amtool >/dev/null 2>&1 \
		&& command -v chromium >/dev/null 2>&1; then touch $(TOOLS_STAMP); fi

lint: $(STAMP)
	$(BIN)/ruff check agentwatch
	$(BIN)/basedpyright --project pyproject.toml

# 1. the suite at the highest resolution (.venv) and, at the same time, at the lowest (.venv-lowest; its
# output goes to $(LOWEST_LOG) and is printed after the main run's); 2. the single_env tests, alone;
# 3. the chromadb tests. Each step runs even when an earlier one failed; the target fails if any did.
test: $(STAMP) $(TOOLS_STAMP) $(CHROMA_STAMP) $(LOWEST_STAMP) lint
	@echo "--- highest resolution (.venv, requirements.lock), beside the lowest (.venv-lowest) running at once:"; \
	$(MAKE) --no-print-directory test-lowest >$(LOWEST_LOG) 2>&1 & lowest=$$!; \
	$(BIN)/python -m pytest -q -m "$(BOTH)"; main=$$?; \
	wait $$lowest; low=$$?; \
	echo "--- lowest resolution (.venv-lowest, requirements-lowest.lock), run at the same time:"; cat $(LOWEST_LOG); \
	echo "--- single_env tests (once, alone, in .venv):"; \
	$(BIN)/python -m pytest -q -m single_env; single=$$?; \
	echo "--- chromadb (.venv-chroma):"; \
	$(MAKE) --no-print-directory test-chroma; chroma=$$?; \
	echo "exit codes: highest $$main, lowest $$low, single_env $$single, chromadb $$chroma"; \
	test $$main = 0 -a $$low = 0 -a $$single = 0 -a $$chroma = 0

# The suite at the lowest resolution (beside google-adk), in .venv-lowest, less the single_env tests
# (`make test` runs it alongside the main suite).
test-lowest: $(LOWEST_STAMP)
	$(LOWEST_BIN)/python -m pytest -q -p no:cacheprovider -m "$(BOTH)"

# The chromadb tests alone, in .venv-chroma (there a missing chromadb fails them instead of skipping).
test-chroma: $(CHROMA_STAMP)
	AGENTWATCH_REQUIRE_CHROMADB=1 $(CHROMA_BIN)/python -m pytest -q -m chromadb $(CHROMA_TESTS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP) $(OPENLIT_STAMP)
	$(BIN)/python benchmarks/overhead.py

# Where the CPU of one request goes, per component (py-spy, from the dev group), agentwatch next to the stock distro.
bench-profile: $(STAMP)
	$(BIN)/python benchmarks/profile.py

bench-scrubber: $(STAMP)
	$(BIN)/python benchmarks/scrubber.py

bench-genai: $(STAMP)
	$(BIN)/python benchmarks/genai_compare.py

doctor: $(STAMP)
	$(BIN)/agentwatch doctor

# Re-resolve the pinned dependency set (needs the package registry). --upgrade: each lock is a fresh
# resolution (the newest versions the ranges admit, or for the lowest lock the lowest of the direct
# dependencies), not the previous lock's pins kept; the venvs are synced from the lock files, so a run
# is reproducible until the next `make lock`.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra demo --group dev --upgrade --generate-hashes -o requirements.lock --python-version 3.11
	$(BIN)/uv pip compile pyproject.toml --extra demo --extra chromadb --group dev --upgrade --generate-hashes -c requirements.lock -o requirements-chroma.lock --python-version 3.11
	$(BIN)/uv pip compile pyproject.toml --extra demo --group dev --group adk --resolution lowest-direct --upgrade --generate-hashes -o requirements-lowest.lock --python-version 3.11
	$(BIN)/uv pip compile benchmarks/requirements-openlit.in --upgrade --generate-hashes -c requirements.lock -o $(OPENLIT_LOCK) --python-version 3.11

clean:
	rm -rf $(VENV) $(CHROMA_VENV) $(LOWEST_VENV) $(OPENLIT_VENV) agentwatch-data .pytest_cache

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
