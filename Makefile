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
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)
# logfire is in the dev extra only for the scrubber benchmark; keep its pydantic
# plugin out of the demo, the tests and the overhead benchmark.
export PYDANTIC_DISABLE_PLUGINS := logfire-plugin

.PHONY: demo test test-fast bench bench-scrubber bench-genai lock doctor clean

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
	@$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	@$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

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

test: $(STAMP) $(TOOLS_STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py

bench-scrubber: $(STAMP)
	$(BIN)/python benchmarks/scrubber.py

bench-genai: $(STAMP)
	$(BIN)/python benchmarks/genai_compare.py

doctor: $(STAMP)
	$(BIN)/agentwatch doctor

# Re-resolve the pinned dependency set (needs the package registry).
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes -o requirements.lock --python-version 3.11

clean:
	rm -rf $(VENV) agentwatch-data .pytest_cache
