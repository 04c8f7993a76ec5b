"""The health endpoints and the process-wide health state (startup progress, draining).

Shapes (documented in docs/operations.md, "Health endpoints and errors"):

``GET /health``           200/503 ``{"status", "service", "version", "uptime_seconds", "checks": {name: status}}``
``GET /health/live``      200     ``{"status": "alive", "uptime_seconds"}``
``GET /health/ready``     200/503 ``{"status", "ready", "checks": {name: status}}``
``GET /health/startup``   200/503 ``{"status": "starting"|"started"|"failed", "checks": {...}, "pending": [...]}``
``GET /health/detailed``  200/503 everything: checks with latency and error, service, process, system, disk.

``status`` is ``healthy`` / ``degraded`` / ``unhealthy``, or ``starting`` /
``draining`` before startup passed and after shutdown began. 503 means
"do not send traffic": unhealthy, starting or draining.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from agentwatch.distro._diagnostics import warn_once
from agentwatch.distro.guard import guard
from agentwatch.web import checks as checks_module
from agentwatch.web import config
from agentwatch.web.checks import DEGRADED, HEALTHY, UNHEALTHY, Check, CheckResult, Runner, overall
from agentwatch.web.request_id import HEADER

STARTING, STARTED, FAILED, DRAINING = "starting", "started", "failed", "draining"
_REQUEST_HEADER = HEADER.encode()
_logger = logging.getLogger("agentwatch")


class HealthState:
    """One per process: the runner, startup progress, the draining flag."""

    def __init__(self, s: config.WebSettings):
        self.settings = s
        self.started_at = time.time()
        self._monotonic_start = time.monotonic()
        self.runner = Runner(s.check_timeout, s.cache_ttl, s.critical)
        self.draining = False
        self.startup_status = STARTING
        self.startup_results: dict[str, dict[str, Any]] = {}
        self.startup_pending: list[str] = []
        self._startup_task: asyncio.Task | None = None
        self._startup_lock = threading.Lock()
        with guard("web layer: built-in health checks", "the app's own checks run without them"):
            from agentwatch.web.builtin_checks import register_builtins

            register_builtins(s)

    # -- helpers -----------------------------------------------------------------------------
    def uptime(self) -> float:
        return round(time.monotonic() - self._monotonic_start, 3)

    def readiness_checks(self) -> list[Check]:
        return [c for c in checks_module.declared().values() if c.readiness]

    def startup_checks(self) -> list[Check]:
        return [c for c in checks_module.declared().values() if c.startup]

    # -- startup -----------------------------------------------------------------------------
    def ensure_startup(self) -> None:
        """Start the startup checks on the running loop, once (at lifespan startup or the first request)."""
        if self.startup_status != STARTING:
            return
        with self._startup_lock:
            if self.startup_status != STARTING:
                return
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            task = self._startup_task
            if task is not None and not task.done() and task.get_loop() is loop:
                return
            if not self.startup_checks():
                self.startup_status = STARTED
                return
            # (A task left on another, finished loop -- e.g. a test client's -- is started again here.)
            self._startup_task = loop.create_task(self._run_startup())

    def _order(self, startup: list[Check]) -> tuple[list[Check], dict[str, str]]:
        """Dependencies first; among ready ones, higher priority first, then name. Returns (order, problems)."""
        by_name = {c.name: c for c in startup}
        every = checks_module.declared()
        problems: dict[str, str] = {}
        order: list[Check] = []
        done: set[str] = set()
        remaining = dict(by_name)
        # A dependency that is a declared non-startup check is run as part of startup too.
        for check in startup:
            for dep in check.depends_on:
                if dep not in by_name and dep in every:
                    remaining[dep] = every[dep]
                elif dep not in every:
                    problems[check.name] = f"depends on unknown check {dep!r}"
        while remaining:
            ready = [c for c in remaining.values() if all(d in done or d not in every for d in c.depends_on)]
            if not ready:
                for name in remaining:
                    problems.setdefault(name, "dependency cycle among " + ", ".join(sorted(remaining)))
                order.extend(sorted(remaining.values(), key=lambda c: c.name))
                break
            ready.sort(key=lambda c: (-c.priority, c.name))
            chosen = ready[0]
            order.append(chosen)
            done.add(chosen.name)
            del remaining[chosen.name]
        return order, problems

    async def _run_startup(self) -> None:
        with guard("web layer: running the startup checks", "reporting started") as running:
            await self._startup()
        if running.error is not None:
            self.startup_status = STARTED

    async def _startup(self) -> None:
        order, problems = self._order(self.startup_checks())
        self.startup_pending = [c.name for c in order]
        failed: set[str] = set()
        critical_failures: list[str] = []
        s = self.settings
        for check in order:
            critical = self.runner.is_critical(check)
            blocked = [d for d in check.depends_on if d in failed]
            attempts = 0
            if check.name in problems or blocked:
                error = problems.get(check.name) or "dependency failed: " + ", ".join(blocked)
                result = CheckResult(check.name, UNHEALTHY, critical, 0.0, error)
            else:
                retries = check.retries if check.retries is not None else s.startup_retries
                while True:
                    attempts += 1
                    result, _ = await self.runner.run(check, use_cache=False)
                    if result.status != UNHEALTHY or attempts > retries:
                        break
                    await asyncio.sleep(min(s.startup_backoff * (2 ** (attempts - 1)), 10.0))
            entry = result.as_dict()
            entry["attempts"] = attempts
            self.startup_results[check.name] = entry
            self.startup_pending.remove(check.name)
            if result.status == UNHEALTHY:
                failed.add(check.name)
                kind = "critical" if critical else "non-critical"
                message = (
                    f"startup check {check.name!r} ({kind}) failed after {attempts} attempt(s): {result.error}"
                )
                if critical:
                    critical_failures.append(check.name)
                    message += f"; {s.prefix}/startup and {s.prefix}/ready answer 503"
                warn_once(f"health:startup:{check.name}", message, logging.ERROR if critical else logging.WARNING)
        self.startup_status = FAILED if critical_failures else STARTED

    # -- probes ------------------------------------------------------------------------------
    async def readiness(self) -> tuple[str, list[tuple[CheckResult, bool]]]:
        results = await self.runner.run_many(self.readiness_checks())
        return overall([r for r, _ in results]), results

    def gate(self) -> str | None:
        """Why the app is not taking traffic regardless of checks: draining / starting / failed."""
        if self.draining:
            return DRAINING
        if self.startup_status == STARTING:
            self.ensure_startup()
            return STARTING
        if self.startup_status == FAILED:
            return UNHEALTHY
        return None


_state: HealthState | None = None
_state_lock = threading.Lock()


def state() -> HealthState:
    global _state  # noqa: PLW0603
    if _state is None:
        with _state_lock:
            if _state is None:
                _state = HealthState(config.settings())
    return _state


def reset_state() -> None:
    """Forget the state (tests)."""
    global _state  # noqa: PLW0603
    _state = None


def start_draining(reason: str = "shutdown") -> None:
    s = _state
    if s is not None and not s.draining:
        s.draining = True


# --- responses ----------------------------------------------------------------------------------

Send = Callable[[dict], Awaitable[None]]


async def _respond(send: Send, status: int, body: dict[str, Any], head: bool, request_id: str | None) -> None:
    payload = json.dumps(body, separators=(",", ":")).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if request_id:
        headers.append((_REQUEST_HEADER, request_id.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else payload})


def _code(status: str) -> int:
    return 200 if status in (HEALTHY, DEGRADED, STARTED, "alive") else 503


def _service() -> dict[str, str | None]:
    """The service as the resource names it (``null`` for a version or environment nobody set)."""
    try:
        from agentwatch.distro.resource import app_package_version
        from agentwatch.distro.settings import settings as distro_settings

        current = distro_settings()
        return {"name": current.service_name, "version": current.service_version or app_package_version(),
                "environment": current.environment}
    except Exception:  # noqa: BLE001
        return {"name": "unknown_service", "version": None, "environment": None}


async def live(st: HealthState) -> tuple[int, dict]:
    return 200, {"status": "alive", "uptime_seconds": st.uptime()}


async def ready(st: HealthState) -> tuple[int, dict]:
    gate = st.gate()
    if gate is not None:
        return 503, {"status": gate, "ready": False, "checks": {}}
    status, results = await st.readiness()
    checks = {r.name: r.status for r, _ in results}
    # A gate can close while the checks ran (SIGTERM): answer what is true now.
    if st.draining:
        return 503, {"status": DRAINING, "ready": False, "checks": checks}
    return _code(status), {"status": status, "ready": status != UNHEALTHY, "checks": checks}


async def startup(st: HealthState) -> tuple[int, dict]:
    if st.startup_status == STARTING:
        st.ensure_startup()
    status = st.startup_status
    body = {"status": status, "checks": dict(st.startup_results), "pending": list(st.startup_pending)}
    return _code(status), body


async def summary(st: HealthState) -> tuple[int, dict]:
    service = _service()
    gate = st.gate()
    checks: dict[str, str] = {}
    if gate in (None, UNHEALTHY):
        status, results = await st.readiness()
        checks = {r.name: r.status for r, _ in results}
        if gate == UNHEALTHY:
            status = UNHEALTHY
    else:
        status = gate
    body = {
        "status": status,
        "service": service["name"],
        "version": service["version"],
        "uptime_seconds": st.uptime(),
        "checks": checks,
    }
    return _code(status), body


_process = None


def _system_info(disk_path: str) -> dict[str, Any]:
    global _process  # noqa: PLW0603
    info: dict[str, Any] = {"process": {"pid": os.getpid()}, "system": {}, "disk": {"path": disk_path}}
    try:
        import shutil

        usage = shutil.disk_usage(disk_path)
        info["disk"].update(
            total_bytes=usage.total, free_bytes=usage.free, used_percent=round(100 * usage.used / usage.total, 1)
        )
    except Exception as error:  # noqa: BLE001
        info["disk"]["error"] = type(error).__name__
    try:
        import psutil

        if _process is None:
            _process = psutil.Process()
        with _process.oneshot():
            memory = _process.memory_info()
            info["process"].update(
                memory_rss_bytes=memory.rss,
                memory_percent=round(_process.memory_percent(), 2),
                cpu_percent=_process.cpu_percent(None),
                threads=_process.num_threads(),
            )
        virtual = psutil.virtual_memory()
        info["system"].update(
            cpu_count=psutil.cpu_count(),
            cpu_percent=psutil.cpu_percent(None),
            memory_total_bytes=virtual.total,
            memory_available_bytes=virtual.available,
            memory_percent=virtual.percent,
        )
        if hasattr(os, "getloadavg"):
            info["system"]["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except Exception as error:  # noqa: BLE001 - psutil missing or not permitted
        info["system"]["error"] = type(error).__name__
    return info


async def detailed(st: HealthState) -> tuple[int, dict]:
    service = _service()
    gate = st.gate()
    status, results = await st.readiness()
    if gate is not None:
        status = gate
    checks = {r.name: r.as_dict(cached) for r, cached in results}
    body: dict[str, Any] = {
        "status": status,
        "service": service,
        "uptime_seconds": st.uptime(),
        "started_at": round(st.started_at, 3),
        "draining": st.draining,
        "startup": {"status": st.startup_status, "pending": list(st.startup_pending)},
        "checks": checks,
    }
    body.update(await asyncio.get_running_loop().run_in_executor(None, _system_info, st.settings.disk_path))
    return _code(status), body


ENDPOINTS: dict[str, Callable[[HealthState], Awaitable[tuple[int, dict]]]] = {
    "": summary,
    "/live": live,
    "/ready": ready,
    "/startup": startup,
    "/detailed": detailed,
}


def authorised(scope: dict, s: config.WebSettings) -> bool:
    """May this caller see the full ``/health/detailed`` (``AGENTWATCH_HEALTH_DETAILS``)?"""
    if s.details == "always":
        return True
    if s.details != "token" or not s.token:
        return False
    for name, value in scope.get("headers") or ():
        if name.lower() == b"authorization":
            scheme, _, given = value.decode("latin-1").partition(" ")
            return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), s.token.encode())
    return False


def _reduced(body: dict) -> dict:
    """What an unauthorised caller of ``/health/detailed`` sees: the status and each check's name and state
    (no host, path, pid, memory, load or error text)."""
    return {"status": body.get("status"),
            "checks": {name: check.get("status") if isinstance(check, dict) else check
                       for name, check in (body.get("checks") or {}).items()}}


async def serve(handler, scope: dict, send: Send, request_id: str | None) -> None:
    st = state()
    # A probe answers, whatever happens.
    with guard(f"web layer: health endpoint ({getattr(handler, '__name__', '?')})", "it answers 503") as answering:
        if handler is detailed and not authorised(scope, st.settings):
            code, body = await summary(st)
            body = _reduced(body)
        else:
            code, body = await handler(st)
    if answering.error is not None:
        code, body = 503, {"status": UNHEALTHY, "error": type(answering.error).__name__}
    await _respond(send, code, body, scope.get("method") == "HEAD", request_id)
