# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both bootstrap the virtual environment from the lock file first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.agentwatch-installed

.PHONY: demo test test-fast bench lock doctor clean

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
	@$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	@$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/run_demo.py

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py

doctor: $(STAMP)
	$(BIN)/agentwatch doctor

# Re-resolve the pinned dependency set (needs the package registry).
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes -o requirements.lock --python-version 3.11

clean:
	rm -rf $(VENV) agentwatch-data .pytest_cache
