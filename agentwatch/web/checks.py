"""Health checks: declaration, registry, and a runner that never hangs a probe.

A check is a function (sync or ``async``) that returns normally when healthy,
raises when unhealthy, or returns ``"degraded"`` / ``(status, message)``.
Declare one with the decorator, or through the ``agentwatch_health_checks``
entry-point group (the entry point names a decorated function, a
:class:`Check`, or a plain callable)::

    from agentwatch.web import health_check

    @health_check(name="cache", critical=False, timeout=1.0)
    async def cache_ok():
        await redis.ping()

    @health_check(startup=True, readiness=False, depends_on=["sqlite"], priority=10)
    def migrations_applied():
        ...

Each run has a time limit: a sync check runs on its own daemon thread and an
async one on the event loop; the probe stops waiting at the limit and reports
the check unhealthy (``timed out after 2.0s``). A check still running is not
started again -- later probes wait on the same run -- so a hanging dependency
costs one thread, not one per probe. Results are cached for the check's TTL,
so frequent probes run nothing. Checks run with instrumentation suppressed:
their SQL and HTTP calls produce no spans.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.instrumentation.utils import suppress_instrumentation

from agentwatch.distro._diagnostics import warn_once
from agentwatch.web import telemetry
from agentwatch.web._scrub import scrub_text

HEALTHY = "healthy"
DEGRADED = "degraded"
UNHEALTHY = "unhealthy"
ENTRY_POINT_GROUP = "agentwatch_health_checks"


@dataclass
class Check:
    """One declared check. ``timeout``/``ttl`` None means the configured defaults."""

    name: str
    function: Callable[[], Any]
    critical: bool = True
    timeout: float | None = None
    ttl: float | None = None
    readiness: bool = True
    startup: bool = False
    depends_on: tuple[str, ...] = ()
    priority: int = 0
    retries: int | None = None


@dataclass
class CheckResult:
    name: str
    status: str
    critical: bool
    latency_ms: float
    error: str | None = None
    checked_at: float = field(default_factory=time.time)

    def as_dict(self, cached: bool = False) -> dict[str, Any]:
        return {
            "status": self.status,
            "critical": self.critical,
            "latency_ms": round(self.latency_ms, 2),
            "error": self.error,
            "checked_at": round(self.checked_at, 3),
            "cached": cached,
        }


# --- registry ---------------------------------------------------------------------------
_declared: dict[str, Check] = {}
_lock = threading.Lock()


def register(check: Check) -> Check:
    """Add (or replace) a check by name."""
    with _lock:
        if check.name in _declared and _declared[check.name].function is not check.function:
            warn_once(f"health:duplicate:{check.name}", f"health check {check.name!r} declared twice; the last one is used")
        _declared[check.name] = check
    return check


def unregister(name: str) -> None:
    with _lock:
        _declared.pop(name, None)


def declared() -> dict[str, Check]:
    with _lock:
        return dict(_declared)


def health_check(
    function: Callable[[], Any] | None = None,
    *,
    name: str | None = None,
    critical: bool = True,
    timeout: float | None = None,
    ttl: float | None = None,
    readiness: bool = True,
    startup: bool = False,
    depends_on: tuple[str, ...] | list[str] = (),
    priority: int = 0,
    retries: int | None = None,
):
    """Decorator declaring a health check (usable bare or with options); returns the function unchanged."""

    def decorate(fn: Callable[[], Any]) -> Callable[[], Any]:
        check = Check(
            name=name or fn.__name__,
            function=fn,
            critical=critical,
            timeout=timeout,
            ttl=ttl,
            readiness=readiness,
            startup=startup,
            depends_on=tuple(depends_on),
            priority=priority,
            retries=retries,
        )
        fn.__agentwatch_check__ = check  # type: ignore[attr-defined]
        register(check)
        return fn

    return decorate(function) if function is not None else decorate


_entry_points_loaded = False


def load_entry_points() -> None:
    """Register the checks of the ``agentwatch_health_checks`` entry-point group (once; a bad one warns and is skipped)."""
    global _entry_points_loaded  # noqa: PLW0603
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    # OpenTelemetry's cached view of every entry point: ``opentelemetry-instrument`` read them all at
    # start-up already, so this costs a lookup, not another scan of every installed distribution (~8 ms).
    from opentelemetry.util._importlib_metadata import entry_points

    try:
        found = entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # noqa: BLE001
        return
    for entry_point in found:
        try:
            obj = entry_point.load()
            if isinstance(obj, Check):
                register(obj)
            elif isinstance(getattr(obj, "__agentwatch_check__", None), Check):
                register(obj.__agentwatch_check__)  # the decorator registered it already; keep one
            elif callable(obj):
                register(Check(name=entry_point.name, function=obj))
            else:
                raise TypeError(f"{obj!r} is not callable")
        except Exception as error:  # noqa: BLE001 - a broken plugin costs only itself
            warn_once(
                f"health:entry_point:{entry_point.name}",
                f"health check entry point {entry_point.name!r} could not be loaded ({error!r}); skipped",
            )


# --- running ------------------------------------------------------------------------------


def _interpret(value: Any) -> tuple[str, str | None]:
    if value is None or value is True:
        return HEALTHY, None
    if value is False:
        return UNHEALTHY, "check returned False"
    message = None
    if isinstance(value, tuple) and len(value) == 2:
        value, message = value
    if isinstance(value, str) and value.lower() in (HEALTHY, DEGRADED, UNHEALTHY):
        return value.lower(), scrub_text(str(message)) if message else None
    return HEALTHY, None


def _error_text(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return scrub_text(text)[:500]


def _call_suppressed(function: Callable[[], Any]) -> Any:
    with suppress_instrumentation():
        return function()


class Runner:
    """Runs checks with time limits, a result cache and at most one run per check in flight."""

    def __init__(self, default_timeout: float = 2.0, default_ttl: float = 5.0, critical: list[str] | None = None):
        self.default_timeout = default_timeout
        self.default_ttl = default_ttl
        self.critical_override = critical
        self._results: dict[str, CheckResult] = {}
        self._inflight: dict[str, tuple[Any, float, asyncio.AbstractEventLoop]] = {}
        self._lock = threading.Lock()

    def is_critical(self, check: Check) -> bool:
        if self.critical_override is not None:
            return check.name in self.critical_override
        return check.critical

    def timeout_of(self, check: Check) -> float:
        return check.timeout if check.timeout is not None else self.default_timeout

    def ttl_of(self, check: Check) -> float:
        return check.ttl if check.ttl is not None else self.default_ttl

    def cached(self, check: Check) -> CheckResult | None:
        result = self._results.get(check.name)
        if result is not None and time.time() - result.checked_at < self.ttl_of(check):
            return result
        return None

    async def run(self, check: Check, use_cache: bool = True) -> tuple[CheckResult, bool]:
        """Run one check (or reuse its fresh result); never raises; returns (result, was_cached)."""
        if use_cache:
            result = self.cached(check)
            if result is not None:
                return result, True
        critical = self.is_critical(check)
        timeout = self.timeout_of(check)
        loop = asyncio.get_running_loop()
        with self._lock:
            inflight = self._inflight.get(check.name)
            if inflight is None or inflight[2] is not loop:
                started = time.monotonic()
                future = self._start(check, loop)
                self._inflight[check.name] = (future, started, loop)
            else:
                future, started, _ = inflight
        remaining = max(0.0, timeout - (time.monotonic() - started))
        try:
            value = await asyncio.wait_for(asyncio.shield(future), remaining)
            status, error = _interpret(value)
        except asyncio.TimeoutError:
            status, error = UNHEALTHY, f"timed out after {timeout:g}s"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the check's failure is its result
            status, error = UNHEALTHY, _error_text(exc)
        latency_ms = (time.monotonic() - started) * 1000
        result = CheckResult(check.name, status, critical, latency_ms, error)
        self._results[check.name] = result
        telemetry.record_check(check.name, status, latency_ms / 1000)
        return result, False

    def _start(self, check: Check, loop: asyncio.AbstractEventLoop) -> asyncio.Future:
        function = check.function
        call = getattr(function, "__call__", None)  # noqa: B004 - an async __call__ method, not callability
        if inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(call):

            async def run_async() -> Any:
                with suppress_instrumentation():
                    return await function()

            future: asyncio.Future = loop.create_task(run_async())
        else:
            future = loop.create_future()

            def deliver(value: Any, error: BaseException | None) -> None:
                if future.done():
                    return
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(value)

            def run_sync() -> None:
                value, error = None, None
                try:
                    value = _call_suppressed(function)
                    if inspect.isawaitable(value):  # a sync callable returning a coroutine
                        value = asyncio.run(value)  # pyright: ignore[reportArgumentType] - a check's awaitable result
                except BaseException as exc:  # noqa: BLE001
                    error = exc
                try:
                    loop.call_soon_threadsafe(deliver, value, error)
                except RuntimeError:  # the loop is gone (a test client's): nobody waits any more
                    pass

            threading.Thread(target=run_sync, name=f"agentwatch-check-{check.name}", daemon=True).start()

        def done(_f: Any, name: str = check.name) -> None:
            with self._lock:
                if self._inflight.get(name, (None,))[0] is _f:
                    del self._inflight[name]
            if not _f.cancelled():
                _f.exception()  # mark retrieved

        future.add_done_callback(done)
        return future

    async def run_many(self, checks: list[Check], use_cache: bool = True) -> list[tuple[CheckResult, bool]]:
        """Run checks concurrently; the whole call is bounded by the longest time limit."""
        if not checks:
            return []
        return list(await asyncio.gather(*(self.run(check, use_cache) for check in checks)))


def overall(results: list[CheckResult]) -> str:
    """healthy, degraded (a non-critical check failing or any check degraded) or unhealthy (a critical one failing)."""
    status = HEALTHY
    for result in results:
        if result.status == UNHEALTHY and result.critical:
            return UNHEALTHY
        if result.status != HEALTHY:
            status = DEGRADED
    return status
