"""A bounded final flush at exit and on SIGTERM.

The SDK providers' own ``atexit`` shutdown waits for the exporters, which with
no collector listening retry for seconds (about 8 s with stock
``opentelemetry-instrument``). agentwatch creates the providers with
``shutdown_on_exit=False`` and registers this instead: shut the providers down
on a daemon thread, wait at most ``AGENTWATCH_SHUTDOWN_TIMEOUT``, then
interrupt the exporters' retry sleeps and move on.

SIGTERM: uvicorn re-raises SIGTERM after its graceful shutdown with the handler
that was in place before it started, so the process died before ``atexit`` and
the last batch was lost. If no one else handles SIGTERM when agentwatch starts,
it installs a handler that flushes (bounded) and then re-delivers SIGTERM with
the default action, so the exit status stays what it would have been (143).
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

_providers: list[Any] = []
_exporters: list[Any] = []
_timeout = 1.5
_done = threading.Event()
_lock = threading.Lock()
_on_done: list[Callable[[], None]] = []


def register(providers: Sequence[Any], exporters: Sequence[Any], timeout: float) -> None:
    """Remember what to flush; install the ``atexit`` hook and, if free, the SIGTERM handler."""
    global _timeout  # noqa: PLW0603
    _providers.extend(p for p in providers if p is not None)
    _exporters.extend(exporters)
    _timeout = timeout
    atexit.register(flush_and_shutdown)
    _install_sigterm()


def on_shutdown(callback: Callable[[], None]) -> None:
    """Run ``callback`` (quickly, never raising) after the providers are shut down."""
    _on_done.append(callback)


def _install_sigterm() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # not the main interpreter / no signals here
        pass


def _on_sigterm(signum: int, _frame: Any) -> None:
    flush_and_shutdown()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def flush_and_shutdown(timeout: float | None = None) -> bool:
    """Shut every provider down within ``timeout`` seconds; True if everything finished in time."""
    with _lock:
        if _done.is_set() or not _providers:
            return True
        _done.set()
    budget = _timeout if timeout is None else timeout
    started = time.monotonic()
    # Exporters whose destination is known to be down would only sleep through
    # retries: shut them first, so the final flush fails fast and is counted.
    from agentwatch.distro.exporters import destination_down

    for exporter in _exporters:
        if destination_down(exporter):
            try:
                exporter.shutdown()
            except Exception:  # noqa: BLE001,S110
                pass

    def run() -> None:
        for provider in _providers:
            try:
                provider.shutdown()
            except Exception:  # noqa: BLE001,S110 - exit must never fail because of telemetry
                pass

    worker = threading.Thread(target=run, name="agentwatch-shutdown", daemon=True)
    worker.start()
    worker.join(budget)
    finished = not worker.is_alive()
    if not finished:
        # Interrupt retry back-off sleeps so the daemon thread stops sending.
        for exporter in _exporters:
            try:
                exporter.shutdown()
            except Exception:  # noqa: BLE001,S110
                pass
        worker.join(max(0.0, min(0.2, budget - (time.monotonic() - started))))
    for callback in _on_done:
        try:
            callback()
        except Exception:  # noqa: BLE001,S110
            pass
    return finished
