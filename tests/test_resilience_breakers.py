"""Circuit breakers and rate limits for real: pybreaker and aiobreaker breakers opening, refusing and
recovering, and slowapi rejecting requests in a FastAPI app, with real SDK providers (tests/_telemetry.py)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from fastapi import Request
from opentelemetry.trace import SpanKind

from agentwatch import semconv as sc
from agentwatch.instrumentors import breakers, ratelimit
from agentwatch.instrumentors.breakers import AgentwatchAiobreakerInstrumentor, AgentwatchPybreakerInstrumentor
from agentwatch.instrumentors.ratelimit import AgentwatchSlowapiInstrumentor


SCOPE_PY = breakers.SCOPE + ".pybreaker"
SCOPE_AIO = breakers.SCOPE + ".aiobreaker"


def _by_attributes(points) -> dict[frozenset, float]:
    return {frozenset(p.attributes.items()): p.value for p in points}


def _attrs(name: str, library: str, **more: str) -> frozenset:
    return frozenset({sc.BREAKER_NAME: name, sc.BREAKER_LIBRARY: library, **more}.items())


@pytest.fixture
def pybreaker_instrumented(telemetry):
    inst = AgentwatchPybreakerInstrumentor()
    inst.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    yield telemetry
    inst.uninstrument()


def _boom():
    raise ConnectionError("down")


def test_pybreaker_opening_shows_on_the_gauge_counts_transitions_and_rejections(pybreaker_instrumented):
    import pybreaker

    tel = pybreaker_instrumented
    breaker = pybreaker.CircuitBreaker(fail_max=2, reset_timeout=0.2, name="payments")
    assert breaker.call(lambda: "ok") == "ok"
    assert _by_attributes(tel.points(sc.BREAKER_STATE_METRIC, SCOPE_PY)) == {_attrs("payments", "pybreaker"): 0}
    with pytest.raises(ConnectionError):
        breaker.call(_boom)
    with pytest.raises(pybreaker.CircuitBreakerError):  # the failure that trips it: not a refusal
        breaker.call(_boom)
    assert _by_attributes(tel.points(sc.BREAKER_STATE_METRIC, SCOPE_PY)) == {_attrs("payments", "pybreaker"): 2}
    assert not tel.points(sc.BREAKER_REJECTED_METRIC, SCOPE_PY)
    ran = []
    with tel.tracer_provider.get_tracer("t").start_as_current_span("POST /pay", kind=SpanKind.SERVER):
        with pytest.raises(pybreaker.CircuitBreakerError):
            breaker.call(lambda: ran.append(1))
    assert not ran
    (server,) = [s for s in tel.spans() if s.name == "POST /pay"]
    assert server.attributes[sc.BREAKER_NAME] == "payments" and server.attributes[sc.BREAKER_STATE] == "open"
    assert [e.name for e in server.events] == [sc.BREAKER_REJECTED_EVENT]
    assert _by_attributes(tel.points(sc.BREAKER_REJECTED_METRIC, SCOPE_PY)) == {_attrs("payments", "pybreaker"): 1}
    time.sleep(0.25)
    assert breaker.call(lambda: "back") == "back"  # the half-open trial succeeds: closed again
    assert _by_attributes(tel.points(sc.BREAKER_STATE_METRIC, SCOPE_PY)) == {_attrs("payments", "pybreaker"): 0}
    transitions = _by_attributes(tel.points(sc.BREAKER_TRANSITIONS_METRIC, SCOPE_PY))
    assert transitions == {
        _attrs("payments", "pybreaker", **{sc.BREAKER_FROM_STATE: "closed", sc.BREAKER_STATE: "open"}): 1,
        _attrs("payments", "pybreaker", **{sc.BREAKER_FROM_STATE: "open", sc.BREAKER_STATE: "half-open"}): 1,
        _attrs("payments", "pybreaker", **{sc.BREAKER_FROM_STATE: "half-open", sc.BREAKER_STATE: "closed"}): 1,
    }


def test_a_failed_half_open_trial_is_not_a_refusal(pybreaker_instrumented):
    import pybreaker

    breaker = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=0.05, name="trial")
    with pytest.raises(pybreaker.CircuitBreakerError):
        breaker.call(_boom)
    time.sleep(0.06)
    with pytest.raises(pybreaker.CircuitBreakerError):  # the trial ran and failed: re-opened
        breaker.call(_boom)
    assert not pybreaker_instrumented.points(sc.BREAKER_REJECTED_METRIC, SCOPE_PY)


def test_a_breaker_made_before_instrumentation_is_seen_from_its_first_change(telemetry):
    import pybreaker

    early = pybreaker.CircuitBreaker(fail_max=1, name="early")
    inst = AgentwatchPybreakerInstrumentor()
    inst.instrument(meter_provider=telemetry.meter_provider)
    try:
        with pytest.raises(pybreaker.CircuitBreakerError):
            early.call(_boom)
        assert _by_attributes(telemetry.points(sc.BREAKER_STATE_METRIC, SCOPE_PY)) == {_attrs("early", "pybreaker"): 2}
    finally:
        inst.uninstrument()


def test_breaker_names_are_bounded(telemetry, monkeypatch):
    import pybreaker

    monkeypatch.setenv("AGENTWATCH_RESILIENCE_MAX_NAMES", "2")
    inst = AgentwatchPybreakerInstrumentor()
    inst.instrument(meter_provider=telemetry.meter_provider)
    try:
        made = [pybreaker.CircuitBreaker(fail_max=1, name=f"b{i}") for i in range(5)]
        with pytest.raises(pybreaker.CircuitBreakerError):
            made[4].call(_boom)
        states = {dict(k)[sc.BREAKER_NAME]: v for k, v in _by_attributes(telemetry.points(sc.BREAKER_STATE_METRIC, SCOPE_PY)).items()}
        # b4 was met first (its transition), two names kept, the rest folded; the folded ones show their worst state
        assert len(states) == 3 and states["b4"] == 2 and states["_other"] == 0, states
    finally:
        inst.uninstrument()


def test_aiobreaker_states_and_refusals(telemetry):
    import aiobreaker

    inst = AgentwatchAiobreakerInstrumentor()
    inst.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    try:
        breaker = aiobreaker.CircuitBreaker(fail_max=1, timeout_duration=timedelta(seconds=60), name="search")

        async def fail():
            raise ConnectionError("down")

        async def run():
            with pytest.raises(aiobreaker.CircuitBreakerError):
                await breaker.call_async(fail)
            with pytest.raises(aiobreaker.CircuitBreakerError):
                await breaker.call_async(fail)

        asyncio.run(run())
        assert _by_attributes(telemetry.points(sc.BREAKER_STATE_METRIC, SCOPE_AIO)) == {_attrs("search", "aiobreaker"): 2}
        assert _by_attributes(telemetry.points(sc.BREAKER_REJECTED_METRIC, SCOPE_AIO)) == {_attrs("search", "aiobreaker"): 1}
    finally:
        inst.uninstrument()
    breaker2 = aiobreaker.CircuitBreaker(fail_max=1, name="after")
    assert breaker2 not in set()  # uninstrumented: nothing wrapped any more
    import aiobreaker.state as state

    assert not hasattr(state.CircuitOpenState.before_call, "__wrapped__")


def test_slowapi_rejections_are_counted_by_limit_and_marked_on_the_request_span(telemetry):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from slowapi import Limiter, _rate_limit_exceeded_handler
    from slowapi.errors import RateLimitExceeded
    from slowapi.util import get_remote_address

    inst = AgentwatchSlowapiInstrumentor()
    inst.instrument(meter_provider=telemetry.meter_provider)
    limiter = Limiter(key_func=get_remote_address)
    app = FastAPI()
    app.state.limiter = limiter
    app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)

    @app.get("/chat")
    @limiter.limit("2/minute")
    def chat(request: Request):
        return {"ok": True}

    FastAPIInstrumentor.instrument_app(app, tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    try:
        with TestClient(app) as client:
            codes = [client.get("/chat").status_code for _ in range(4)]
    finally:
        FastAPIInstrumentor.uninstrument_app(app)
        inst.uninstrument()
    assert codes == [200, 200, 429, 429]
    assert _by_attributes(telemetry.points(sc.RATE_LIMIT_REJECTIONS_METRIC, ratelimit.SCOPE)) == {
        frozenset({sc.RATE_LIMIT_LIMIT: "2 per 1 minute"}.items()): 2
    }
    servers = [s for s in telemetry.spans() if s.kind == SpanKind.SERVER]
    rejected = [s for s in servers if s.attributes.get(sc.RATE_LIMIT_LIMIT)]
    # the stock instrumentation here may still speak the pre-1.0 HTTP conventions (the distro's web layer does not)
    def status(attributes):
        return attributes.get("http.response.status_code", attributes.get("http.status_code"))

    assert len(rejected) == 2 and all(status(s.attributes) == 429 for s in rejected)
    # the per-route 429 count the docs give, from the server histogram every app already has
    durations = telemetry.points("http.server.request.duration") or telemetry.points("http.server.duration")
    assert sum(p.count for p in durations if status(p.attributes) == 429
               and p.attributes.get("http.route", p.attributes.get("http.target")) == "/chat") == 2


@pytest.mark.parametrize("module", ["agentwatch.instrumentors.breakers", "agentwatch.instrumentors.ratelimit",
                                    "agentwatch.instrumentors.retries"])
def test_absent_libraries_cost_nothing(module, tmp_path):
    """Without the library: instrument() refuses cleanly and imports none of them; with it installed but
    never imported by the app, instrument() imports nothing of it either."""
    code = f'''
import sys, importlib.abc
BLOCKED = {{"pybreaker", "aiobreaker", "slowapi", "tenacity", "httpcore", "httpcore2"}}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(name)
import importlib.util
real = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name.split(".")[0] in BLOCKED else real(name, *a)
sys.meta_path.insert(0, Block())
import {module} as m
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
for inst in [c() for c in vars(m).values() if isinstance(c, type) and issubclass(c, BaseInstrumentor) and c.__module__ == m.__name__ and not c.__name__.startswith("_")]:
    try:
        inst.instrument(skip_dep_check=True)  # refuses (ModuleNotFoundError) or waits for the import
    except ModuleNotFoundError:
        pass
    else:
        if m.__name__.endswith(("breakers", "ratelimit")):
            raise SystemExit(f"{{inst}} instrumented without its library")
print(sorted(n for n in sys.modules if n.split(".")[0] in BLOCKED))
'''
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    installed = f'''
import sys
import {module} as m
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
for c in vars(m).values():
    if isinstance(c, type) and issubclass(c, BaseInstrumentor) and c.__module__ == m.__name__ and not c.__name__.startswith("_"):
        c().instrument()
print(sorted(n for n in sys.modules if n.split(".")[0] in {{"pybreaker", "aiobreaker", "slowapi", "tenacity", "httpcore", "httpcore2"}}))
'''
    out = subprocess.run([sys.executable, "-c", installed], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
