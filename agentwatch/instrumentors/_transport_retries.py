"""The connection retries of httpx / httpx2 transports (``HTTPTransport(retries=N)``), on the current span.

httpcore (and httpcore2) retry a failed TCP connect inside ``HTTPConnection._connect``, only when the
transport was given ``retries``; they announce each step through the request's ``trace`` extension
(``connection.connect_tcp.failed``, ``connection.retry.started`` / ``.complete``). One wrapper on
``_connect`` -- run once per *new connection*, never per request on a kept-alive one -- adds a ``trace``
callback (chained to the app's own) when the connection has retries, and records each failed connect on
the span current at the time (the HTTP client span of the httpx instrumentation): one
``agentwatch.retry.failed_attempt`` event per failed connect (``retried`` with the backoff it slept, or
``exhausted``), ``agentwatch.retry.attempts``, and the ``agentwatch.retry.failed_attempts`` counter with
``agentwatch.retry.source=httpx``. Connections without retries pass straight through.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import wrapt
from opentelemetry import trace
from opentelemetry.instrumentation.utils import unwrap

from agentwatch import semconv as sc
from agentwatch.distro import guard
from agentwatch.instrumentors._retry_attempts import Attempts, RetryInstruments

WHERE = "httpx retry instrumentation"
_SKIPPED = "that connection's retries not recorded"
#: (module, class) of every connection class whose ``_connect`` retries.
CONNECTIONS = (
    ("httpcore._sync.connection", "HTTPConnection"),
    ("httpcore._async.connection", "AsyncHTTPConnection"),
    ("httpcore2._sync.connection", "HTTPConnection"),
    ("httpcore2._async.connection", "AsyncHTTPConnection"),
)


class _Connect:
    """What the trace callback saw of one ``_connect``: the failed attempts, recorded as they end."""

    def __init__(self, instruments: RetryInstruments):
        span = trace.get_current_span()
        self.attempts = Attempts(span, instruments, {sc.RETRY_SOURCE: "httpx"})
        self.attempt = 1
        self.error: BaseException | None = None
        self.sleep_started: float | None = None

    def seen(self, name: str, info: dict[str, Any]) -> None:
        if name.endswith((".connect_tcp.failed", ".connect_unix_socket.failed", ".start_tls.failed")):
            self.error = info.get("exception")
        elif name.endswith(".retry.started"):
            self.sleep_started = time.perf_counter()
        elif name.endswith(".retry.complete"):
            slept = time.perf_counter() - self.sleep_started if self.sleep_started is not None else None
            self.attempts.record(self.error, self.attempt, slept, True)
            self.attempt += 1
            self.error = None

    def end(self, error: BaseException | None) -> None:
        if error is not None:
            self.attempts.record(error, self.attempt, None, False)
        if self.attempts.failed and self.attempts.span.is_recording():
            self.attempts.span.set_attribute(sc.RETRY_ATTEMPTS, self.attempt)


def _chain(request: Any, connect: _Connect, is_async: bool) -> Any:
    """Put our trace callback on ``request`` (calling the app's after ours); returns what to restore."""
    original = request.extensions.get("trace")

    def seen(name: str, info: dict[str, Any]) -> None:
        guard.run(f"{WHERE}: a connect step", connect.seen, name, info, outcome=_SKIPPED)

    async def async_callback(name, info):
        seen(name, info)
        if original is not None:
            await original(name, info)

    def sync_callback(name, info):
        seen(name, info)
        if original is not None:
            original(name, info)

    request.extensions["trace"] = async_callback if is_async else sync_callback
    return original


def _restore(request: Any, original: Any) -> None:
    if original is None:
        request.extensions.pop("trace", None)
    else:
        request.extensions["trace"] = original


def _wrapper(instruments: RetryInstruments, is_async: bool):
    def _start(instance, args, kwargs):
        request = args[0] if args else kwargs.get("request")
        if not getattr(instance, "_retries", 0) or request is None:
            return None
        connect = _Connect(instruments)
        return connect, request, _chain(request, connect, is_async)

    def _finish(started, error):
        connect, request, original = started
        _restore(request, original)
        connect.end(error)

    def sync_wrapper(wrapped, instance, args, kwargs):
        started = guard.run(f"{WHERE}: connect start", _start, instance, args, kwargs, outcome=_SKIPPED)
        if started is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            guard.run(f"{WHERE}: connect end", _finish, started, error, outcome=_SKIPPED)
            raise
        guard.run(f"{WHERE}: connect end", _finish, started, None, outcome=_SKIPPED)
        return result

    async def async_wrapper(wrapped, instance, args, kwargs):
        started = guard.run(f"{WHERE}: connect start", _start, instance, args, kwargs, outcome=_SKIPPED)
        if started is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as error:
            guard.run(f"{WHERE}: connect end", _finish, started, error, outcome=_SKIPPED)
            raise
        guard.run(f"{WHERE}: connect end", _finish, started, None, outcome=_SKIPPED)
        return result

    return async_wrapper if is_async else sync_wrapper


class TransportRetries:
    """Wraps ``_connect`` of each connection class when its module is imported (nothing before); undone by ``stop``."""

    def __init__(self, instruments: RetryInstruments):
        self.instruments = instruments
        self.applied: list[tuple[Any, str]] = []
        self.active = False

    def start(self) -> None:
        self.active = True
        for module_name, class_name in CONNECTIONS:
            if module_name in sys.modules:
                self._apply(sys.modules[module_name], class_name)
            else:  # wrapt cannot unregister hooks: the hook checks whether this is still active
                wrapt.register_post_import_hook(
                    lambda module, name=class_name: self._apply(module, name) if self.active else None, module_name
                )

    def _apply(self, module: Any, class_name: str) -> None:
        owner = getattr(module, class_name, None)
        if owner is None or not callable(getattr(owner, "_connect", None)) or (owner, "_connect") in self.applied:
            return
        wrapt.wrap_function_wrapper(owner, "_connect", _wrapper(self.instruments, class_name.startswith("Async")))
        self.applied.append((owner, "_connect"))

    def stop(self) -> None:
        self.active = False
        for owner, method in reversed(self.applied):
            unwrap(owner, method)
        self.applied = []
