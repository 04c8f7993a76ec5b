"""Shared test set-up.

Strict mode: agentwatch's guarded steps (agentwatch.distro.guard) re-raise under the test suite, so a
bug in agentwatch fails a test instead of hiding behind a warning line. The variable is set in the
environment, so subprocess apps started by tests inherit it. Tests that inject faults on purpose
use the ``lenient`` fixture (or drop AGENTWATCH_STRICT from a subprocess's environment).
AGENTWATCH_CACHE_DIR points at a folder of the session's (removed at exit), which the subprocess apps
started with ``tests/_service.clean_env`` share.

Fixtures for every test file:

- process state is reset around each test (autouse): agentwatch's said-once messages
  (``_diagnostics``), the web layer's settings and health state, the session's fake Gemini;
- ``telemetry``: real SDK providers for traces, metrics and logs exporting to memory (tests/_telemetry.py);
- ``fake_gemini``: examples/fake_gemini.py served once per session (tests/_fake_gemini.py).

For subprocess apps, ``FAST_EXPORT`` (short batch delays and export interval) is in tests/_service.py.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from _fake_gemini import FakeGemini
from _telemetry import Telemetry

from agentwatch.distro.environment_variables import AGENTWATCH_CACHE_DIR as CACHE_ENV
from agentwatch.distro.guard import STRICT_ENV

os.environ[STRICT_ENV] = "1"
# Compiled scrubber databases (hint_store.py) in a folder of the session's: kept by
# tests/_service.clean_env like AGENTWATCH_STRICT, so subprocess apps share it.
os.environ[CACHE_ENV] = tempfile.mkdtemp(prefix="agentwatch-test-cache-")
atexit.register(shutil.rmtree, os.environ[CACHE_ENV], True)

_fake_gemini: list[FakeGemini] = []  # the session's, once started


def reset_process_state() -> None:
    """Forget what one test left in this process's agentwatch state."""
    import agentwatch.web
    from agentwatch.distro import _diagnostics
    from agentwatch.distro.settings import reset_settings

    _diagnostics.reset()
    reset_settings()  # the next reader sees the environment as the test sets it
    agentwatch.web.reset()
    for fake in _fake_gemini:
        fake.reset()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test left out of the lowest resolution's run (``single_env``) says why: ``make test`` prints no list."""
    for item in items:
        for mark in item.iter_markers("single_env"):
            if not str(mark.kwargs.get("reason", "")).strip():
                raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.single_env needs reason=... (why it runs once)")


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    """Each test starts from fresh process state and leaves none behind (after its monkeypatches are
    undone). Module- and session-scoped fixtures are set up before it: they must not count on
    diagnostics they emitted still being there."""
    reset_process_state()
    yield
    reset_process_state()


@pytest.fixture
def lenient(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Guarded steps warn and step aside, as in production (for fault-injection tests)."""
    monkeypatch.delenv(STRICT_ENV, raising=False)
    yield


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """Traces, metrics and logs in memory: ``spans()``, ``metrics()``, ``points(name)``, ``logs()``, ``clear()``;
    the providers to instrument with are ``tracer_provider``, ``meter_provider``, ``logger_provider``."""
    memory = Telemetry()
    yield memory
    memory.shutdown()


@pytest.fixture(scope="session")
def fake_gemini() -> Iterator[FakeGemini]:
    """examples/fake_gemini.py in a thread for the whole session (``url``, ``env()`` for the demo
    service, ``require_key(...)`` for one test); requires ``_fake_gemini.KEY``, reset between tests."""
    fake = FakeGemini.start()
    _fake_gemini.append(fake)
    yield fake
    _fake_gemini.remove(fake)
    fake.stop()
