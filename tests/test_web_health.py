"""agentwatch.web in process: the real FastAPI app through TestClient, with the agentwatch_web
instrumentor and the contrib FastAPI instrumentation on in-memory SDK providers."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

import agentwatch.web
from _telemetry import Telemetry
from agentwatch.instrumentors.web import AgentwatchWebInstrumentor
from agentwatch.web import checks, current_request_id, health, health_check

@pytest.fixture(autouse=True)
def _full_details(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the full /health/detailed view; who may see it is tested in test_health_details.py."""
    monkeypatch.setenv("AGENTWATCH_HEALTH_DETAILS", "always")


PROBES = ["/health", "/health/live", "/health/ready", "/health/startup", "/health/detailed"]


@pytest.fixture
def tel(monkeypatch, telemetry):
    for name in ("AGENTWATCH_HEALTH_SQLITE_PATH", "AGENTWATCH_HEALTH_HTTP_URLS", "AGENTWATCH_HEALTH_CRITICAL",
                 "AGENTWATCH_ERROR_DETAIL", "AGENTWATCH_HEALTH_PREFIX", "AGENTWATCH_HEALTH_ENABLED",
                 "AGENTWATCH_HEALTH_CHROMA_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AGENTWATCH_HEALTH_GEMINI", "off")
    monkeypatch.setenv("AGENTWATCH_HEALTH_STARTUP_BACKOFF", "0.01")
    for name in list(checks.declared()):
        checks.unregister(name)
    AgentwatchWebInstrumentor().instrument(meter_provider=telemetry.meter_provider)
    yield telemetry
    AgentwatchWebInstrumentor().uninstrument()
    for name in list(checks.declared()):
        checks.unregister(name)


def make_app(tel: Telemetry, traced: bool = True) -> FastAPI:
    app = FastAPI()

    @app.get("/boom/{item_id}")
    def boom(item_id: int):
        raise ZeroDivisionError("secret in message: user@example.com")

    @app.get("/missing")
    def missing():
        raise HTTPException(404, "no such thing")

    @app.get("/rid")
    def rid():
        return {"request_id": current_request_id()}

    @app.get("/slow")
    async def slow():
        await asyncio.sleep(0.5)
        return {"ok": True}

    if traced:
        FastAPIInstrumentor.instrument_app(app, tracer_provider=tel.tracer_provider, meter_provider=tel.meter_provider)
    return app


def client(app: FastAPI) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)


def test_every_endpoint_and_shape(tel):
    with client(make_app(tel)) as c:
        live = c.get("/health/live")
        assert live.status_code == 200 and live.json()["status"] == "alive" and live.json()["uptime_seconds"] >= 0

        summary = c.get("/health")
        assert summary.status_code == 200
        body = summary.json()
        assert set(body) == {"status", "service", "version", "uptime_seconds", "checks"}
        assert body["status"] == "healthy" and body["checks"] == {"disk": "healthy"}

        ready = c.get("/health/ready")
        assert ready.status_code == 200 and ready.json() == {"status": "healthy", "ready": True, "checks": {"disk": "healthy"}}

        startup = c.get("/health/startup")
        assert startup.status_code == 200 and startup.json() == {"status": "started", "checks": {}, "pending": []}

        detailed = c.get("/health/detailed")
        assert detailed.status_code == 200
        d = detailed.json()
        assert set(d) >= {"status", "service", "uptime_seconds", "started_at", "draining", "startup", "checks",
                          "process", "system", "disk"}
        assert set(d["service"]) == {"name", "version", "environment"}
        disk = d["checks"]["disk"]
        assert set(disk) == {"status", "critical", "latency_ms", "error", "checked_at", "cached"}
        assert disk["status"] == "healthy" and disk["critical"] is False
        assert d["process"]["memory_rss_bytes"] > 0 and "cpu_percent" in d["process"]
        assert d["system"]["memory_total_bytes"] > 0 and d["disk"]["free_bytes"] > 0

        head = c.head("/health/ready")
        assert head.status_code == 200 and head.content == b""
        for path in PROBES:
            response = c.get(path)
            assert response.headers["content-type"] == "application/json"
            assert response.headers["cache-control"] == "no-store"
            assert response.headers["x-request-id"]


def test_probes_are_not_in_openapi_and_post_is_not_served(tel):
    with client(make_app(tel)) as c:
        assert not [p for p in c.get("/openapi.json").json()["paths"] if p.startswith("/health")]
        assert c.post("/health/ready").status_code in (404, 405)


def test_prefix_and_switch_off(tel, monkeypatch):
    monkeypatch.setenv("AGENTWATCH_HEALTH_PREFIX", "ops/status/")
    agentwatch.web.reset()
    with client(make_app(tel)) as c:
        assert c.get("/ops/status/ready").status_code == 200
        assert c.get("/health/ready").status_code == 404
    monkeypatch.setenv("AGENTWATCH_HEALTH_ENABLED", "false")
    agentwatch.web.reset()
    with client(make_app(tel)) as c:
        assert c.get("/ops/status/ready").status_code == 404
        assert c.get("/rid").headers["x-request-id"]  # request ids and errors stay


def test_hanging_check_is_bounded_and_runs_once(tel):
    calls = []
    release = threading.Event()

    @health_check(name="stuck", timeout=0.3)
    def stuck():
        calls.append(1)
        release.wait(10)

    try:
        with client(make_app(tel)) as c:
            started = time.monotonic()
            first = c.get("/health/ready")
            assert time.monotonic() - started < 1.5
            assert first.status_code == 503
            assert first.json() == {"status": "unhealthy", "ready": False, "checks": {"disk": "healthy", "stuck": "unhealthy"}}
            detail = c.get("/health/detailed").json()["checks"]["stuck"]
            assert detail["error"] == "timed out after 0.3s" and detail["critical"] is True
            # The cached result answers at once; once it expires, the still-running run is awaited, not restarted.
            checks.declared()["stuck"].ttl = 0
            started = time.monotonic()
            for _ in range(3):
                assert c.get("/health/ready").status_code == 503
            assert time.monotonic() - started < 1.5
            assert len(calls) == 1
    finally:
        release.set()


def test_critical_vs_noncritical(tel, monkeypatch):
    @health_check(name="cache", critical=False)
    def cache():
        raise ConnectionError("redis down at redis://user:hunter2@cache:6379")

    with client(make_app(tel)) as c:
        ready = c.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded" and ready.json()["ready"] is True
        error = c.get("/health/detailed").json()["checks"]["cache"]["error"]
        assert error.startswith("ConnectionError: ") and "hunter2" not in error

    monkeypatch.setenv("AGENTWATCH_HEALTH_CRITICAL", "cache")  # the override makes it critical
    agentwatch.web.reset()
    with client(make_app(tel)) as c:
        ready = c.get("/health/ready")
        assert ready.status_code == 503 and ready.json()["status"] == "unhealthy"
        assert c.get("/health").status_code == 503
        assert c.get("/health/live").status_code == 200


def test_degraded_return_value(tel):
    @health_check(name="queue")
    async def queue():
        return "degraded", "backlog 1200"

    with client(make_app(tel)) as c:
        assert c.get("/health/ready").json()["checks"]["queue"] == "degraded"
        assert c.get("/health/detailed").json()["checks"]["queue"]["error"] == "backlog 1200"


def test_cache_ttl_check_runs_once_for_many_probes(tel):
    calls = []

    @health_check(name="counted", ttl=30)
    def counted():
        calls.append(1)

    with client(make_app(tel)) as c:
        for _ in range(20):
            for path in ("/health", "/health/ready", "/health/detailed"):
                assert c.get(path).status_code == 200
        assert len(calls) == 1
        assert c.get("/health/detailed").json()["checks"]["counted"]["cached"] is True


def test_check_telemetry_status_gauge_and_duration(tel):
    @health_check(name="flaky", critical=False)
    def flaky():
        raise RuntimeError("nope")

    with client(make_app(tel)) as c:
        c.get("/health/ready")
    status = {p.attributes["agentwatch.health.check.name"]: p.value for p in tel.points("agentwatch.health.check.status")}
    assert status == {"disk": 1.0, "flaky": 0.0}
    durations = tel.points("agentwatch.health.check.duration")
    assert {(p.attributes["agentwatch.health.check.name"], p.attributes["agentwatch.health.check.status"]) for p in durations} == {
        ("disk", "healthy"), ("flaky", "unhealthy")}
    assert all(p.count == 1 for p in durations)


def test_startup_probe_ordering_retries_and_progress(tel):
    order = []
    gate = threading.Event()
    attempts = {"db": 0}

    @health_check(name="db", startup=True, readiness=False, priority=1)
    def db():
        attempts["db"] += 1
        order.append("db")
        if attempts["db"] < 3:
            raise ConnectionError("not yet")

    @health_check(name="migrations", startup=True, readiness=False, depends_on=["db"], priority=100)
    def migrations():
        order.append("migrations")
        gate.wait(5)

    @health_check(name="warm", startup=True, readiness=False, priority=50)
    def warm():
        order.append("warm")

    with client(make_app(tel)) as c:
        deadline = time.monotonic() + 5
        while "migrations" not in order and time.monotonic() < deadline:
            assert c.get("/health/live").status_code == 200  # liveness answers meanwhile
            time.sleep(0.02)
        starting = c.get("/health/startup")
        assert starting.status_code == 503
        body = starting.json()
        assert body["status"] == "starting" and body["pending"] == ["migrations"]
        assert body["checks"]["db"]["attempts"] == 3 and body["checks"]["db"]["status"] == "healthy"
        assert c.get("/health/ready").json()["status"] == "starting"
        assert c.get("/health/ready").status_code == 503
        gate.set()
        deadline = time.monotonic() + 5
        while c.get("/health/startup").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert c.get("/health/startup").json()["status"] == "started"
        assert c.get("/health/ready").status_code == 200
    # warm (priority 50) before db (priority 1); migrations (priority 100) waits for db.
    assert order == ["warm", "db", "db", "db", "migrations"]


def test_failing_critical_startup_check_is_reported_not_raised(tel, capsys, monkeypatch):
    monkeypatch.setenv("AGENTWATCH_HEALTH_STARTUP_RETRIES", "1")
    agentwatch.web.reset()

    @health_check(name="schema", startup=True)
    def schema():
        raise RuntimeError("table users missing")

    @health_check(name="after", startup=True, depends_on=["schema"], critical=False)
    def after():
        pass

    with client(make_app(tel)) as c:
        deadline = time.monotonic() + 5
        while c.get("/health/startup").json()["status"] == "starting" and time.monotonic() < deadline:
            time.sleep(0.02)
        startup = c.get("/health/startup")
        assert startup.status_code == 503 and startup.json()["status"] == "failed"
        assert startup.json()["checks"]["schema"]["attempts"] == 2
        assert startup.json()["checks"]["after"]["error"] == "dependency failed: schema"
        assert c.get("/health/ready").status_code == 503
        assert c.get("/health/live").status_code == 200
    err = capsys.readouterr().err
    assert "startup check 'schema' (critical) failed after 2 attempt(s): RuntimeError: table users missing" in err
    assert "Traceback" not in err


def test_app_route_wins_with_one_warning(tel, capsys):
    app = make_app(tel)

    @app.get("/health/ready")
    def my_ready():
        return {"mine": True}

    with client(app) as c:
        assert c.get("/health/ready").json() == {"mine": True}
        assert c.get("/health/live").json()["status"] == "alive"
    with client(app) as c:  # a second stack build: still one warning
        c.get("/health/ready")
    err = capsys.readouterr().err
    assert err.count("the app has its own route /health/ready") == 1


def test_request_id_kept_or_generated(tel):
    with client(make_app(tel)) as c:
        kept = c.get("/rid", headers={"X-Request-ID": "gw-42.a:b"})
        assert kept.headers["x-request-id"] == "gw-42.a:b" and kept.json() == {"request_id": "gw-42.a:b"}
        for bad in ("has space", "x" * 129, "<script>"):
            replaced = c.get("/rid", headers={"X-Request-ID": bad})
            assert replaced.headers["x-request-id"] != bad and len(replaced.headers["x-request-id"]) == 32
            assert replaced.json()["request_id"] == replaced.headers["x-request-id"]


def test_unhandled_error_json_span_and_metric(tel):
    with client(make_app(tel)) as c:
        response = c.get("/boom/7", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_server_error",
        "message": "An internal error occurred. Quote the request id when reporting it.",
        "request_id": "req-500",
    }
    assert response.headers["x-request-id"] == "req-500"
    server = [s for s in tel.spans() if s.kind.name == "SERVER"]
    assert len(server) == 1
    span = server[0]
    assert span.attributes["agentwatch.request.id"] == "req-500"
    assert span.attributes["error.type"] == "ZeroDivisionError"
    assert span.status.status_code.name == "ERROR"
    assert "user@example.com" not in (span.status.description or "")
    exceptions = [e for e in span.events if e.name == "exception"]
    assert len(exceptions) == 1 and exceptions[0].attributes["exception.type"] == "ZeroDivisionError"
    assert "user@example.com" not in str(dict(exceptions[0].attributes))  # scrubbed on the span
    errors = tel.points("agentwatch.http.server.errors")
    assert [(dict(p.attributes), p.value) for p in errors] == [
        ({"error.type": "ZeroDivisionError", "http.route": "/boom/{item_id}", "http.request.method": "GET"}, 1)
    ]


def test_errors_metric_counted_without_the_fastapi_instrumentation(tel):
    app = make_app(tel, traced=False)
    tracer = tel.tracer_provider.get_tracer("test")

    @app.middleware("http")
    async def outer_span(request: Request, call_next):
        with tracer.start_as_current_span("outer"):
            return await call_next(request)

    with client(app) as c:
        assert c.get("/boom/1").status_code == 500
    # the user middleware runs its own span; agentwatch records on whatever span is current in the handler
    assert tel.points("agentwatch.http.server.errors")


def test_error_detail_mode(tel, monkeypatch):
    monkeypatch.setenv("AGENTWATCH_ERROR_DETAIL", "true")
    agentwatch.web.reset()
    with client(make_app(tel)) as c:
        body = c.get("/boom/1").json()
    assert body["message"].startswith("ZeroDivisionError: secret in message: ")
    assert "user@example.com" not in body["message"]


def test_http_exception_and_validation_keep_shape_with_request_id(tel):
    with client(make_app(tel)) as c:
        missing = c.get("/missing", headers={"X-Request-ID": "r-404"})
        assert missing.status_code == 404
        assert missing.json() == {"detail": "no such thing", "request_id": "r-404"}
        invalid = c.get("/boom/notanint")
        assert invalid.status_code == 422
        body = invalid.json()
        assert body["detail"][0]["type"] == "int_parsing" and body["request_id"] == invalid.headers["x-request-id"]
        not_found = c.get("/nowhere")
        assert not_found.status_code == 404 and not_found.json()["detail"] == "Not Found"
        assert not_found.json()["request_id"] == not_found.headers["x-request-id"]


def test_app_handlers_win(tel):
    app = make_app(tel)

    @app.exception_handler(Exception)
    async def mine(request: Request, exc: Exception):
        return JSONResponse({"oops": type(exc).__name__}, status_code=500)

    @app.exception_handler(HTTPException)
    async def my_http(request: Request, exc: HTTPException):
        return JSONResponse({"custom": exc.detail}, status_code=exc.status_code)

    with client(app) as c:
        assert c.get("/boom/1").json() == {"oops": "ZeroDivisionError"}
        missing = c.get("/missing")
        assert missing.json() == {"custom": "no such thing"} and missing.headers["x-request-id"]


def test_draining_flips_readiness(tel):
    with client(make_app(tel)) as c:
        assert c.get("/health/ready").status_code == 200
        health.start_draining()
        ready = c.get("/health/ready")
        assert ready.status_code == 503 and ready.json()["status"] == "draining"
        assert c.get("/health").json()["status"] == "draining"
        assert c.get("/health/live").status_code == 200


def test_sqlite_disk_http_builtins(tel, tmp_path, monkeypatch):
    import sqlite3

    db = tmp_path / "app.sqlite3"
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.close()
    monkeypatch.setenv("AGENTWATCH_HEALTH_SQLITE_PATH", str(db))
    monkeypatch.setenv("AGENTWATCH_HEALTH_DISK_MIN_FREE_MB", "1e8")  # more than any disk: degraded
    monkeypatch.setenv("AGENTWATCH_HEALTH_HTTP_URLS", "billing=http://127.0.0.1:9/status?key=SECRET123")
    agentwatch.web.reset()
    with client(make_app(tel)) as c:
        body = c.get("/health/detailed").json()
    assert body["checks"]["sqlite"]["status"] == "healthy"
    assert body["checks"]["disk"]["status"] == "unhealthy" and "below" in body["checks"]["disk"]["error"]
    assert body["checks"]["billing"]["status"] == "unhealthy" and body["checks"]["billing"]["critical"] is True
    assert "SECRET123" not in str(body)
    assert body["status"] == "unhealthy"

    monkeypatch.setenv("AGENTWATCH_HEALTH_SQLITE_PATH", str(tmp_path / "missing.sqlite3"))
    monkeypatch.delenv("AGENTWATCH_HEALTH_HTTP_URLS")
    monkeypatch.delenv("AGENTWATCH_HEALTH_DISK_MIN_FREE_MB")
    agentwatch.web.reset()
    with client(make_app(tel)) as c:
        ready = c.get("/health/ready")
    assert ready.status_code == 503 and ready.json()["checks"]["sqlite"] == "unhealthy"
    assert not (tmp_path / "missing.sqlite3").exists()  # read-only: the check never creates the database


def test_gemini_key_check(tel, monkeypatch):
    monkeypatch.setenv("AGENTWATCH_HEALTH_GEMINI", "key")
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    agentwatch.web.reset()
    with client(make_app(tel)) as c:
        body = c.get("/health/detailed").json()
        assert body["checks"]["gemini"]["status"] == "unhealthy" and body["status"] == "degraded"
        assert "GEMINI_API_KEY" in body["checks"]["gemini"]["error"]
    monkeypatch.setenv("GEMINI_API_KEY", "k-123")
    agentwatch.web.reset()
    with client(make_app(tel)) as c:
        assert c.get("/health/ready").json()["checks"]["gemini"] == "healthy"


def test_chroma_configured_without_chromadb_warns_and_adds_no_check(tel, monkeypatch, capsys):
    import importlib.util

    if importlib.util.find_spec("chromadb") is not None:
        pytest.skip("chromadb is installed")
    monkeypatch.setenv("AGENTWATCH_HEALTH_CHROMA_URL", "http://127.0.0.1:8000")
    agentwatch.web.reset()
    with client(make_app(tel)) as c:
        assert "chromadb" not in c.get("/health/ready").json()["checks"]
    assert "chromadb is not installed" in capsys.readouterr().err


def test_bad_values_warn_once_and_fall_back(tel, monkeypatch, capsys):
    monkeypatch.setenv("AGENTWATCH_HEALTH_CHECK_TIMEOUT", "soon")
    monkeypatch.setenv("AGENTWATCH_HEALTH_PREFIX", "/he alth")
    agentwatch.web.reset()
    with client(make_app(tel)) as c:
        assert c.get("/health/live").status_code == 200
    err = capsys.readouterr().err
    assert "AGENTWATCH_HEALTH_CHECK_TIMEOUT='soon' is not a number between 0.01 and 300; using 2.0 instead" in err
    assert "AGENTWATCH_HEALTH_PREFIX='/he alth' is not a URL path" in err


def test_gemini_live_check_through_the_sdk_is_cached(tel, monkeypatch):
    """The real google-genai SDK against a local server: one models.get for many probes; a rejected key is unhealthy."""
    import json as _json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            key = self.headers.get("x-goog-api-key", "")
            seen.append((self.path, key))
            status, body = (200, {"name": "models/gemini-2.5-flash"}) if key == "good" else (
                403, {"error": {"code": 403, "message": "API key not valid", "status": "PERMISSION_DENIED"}})
            payload = _json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
        monkeypatch.setenv("GEMINI_API_KEY", "good")
        monkeypatch.setenv("AGENTWATCH_HEALTH_GEMINI", "live")
        monkeypatch.setenv("AGENTWATCH_HEALTH_CACHE_TTL", "0")  # only the Gemini TTL (300 s) caches
        # The first check imports google-genai inside the check's time limit: room for a loaded machine.
        monkeypatch.setenv("AGENTWATCH_HEALTH_CHECK_TIMEOUT", "30")
        agentwatch.web.reset()
        with client(make_app(tel)) as c:
            for _ in range(10):
                assert c.get("/health/ready").json()["checks"]["gemini"] == "healthy"
        assert len(seen) == 1 and "gemini-2.5-flash" in seen[0][0]

        monkeypatch.setenv("GEMINI_API_KEY", "revoked")
        agentwatch.web.reset()
        with client(make_app(tel)) as c:
            detail = c.get("/health/detailed").json()["checks"]["gemini"]
        assert detail["status"] == "unhealthy" and detail["error"] == "RuntimeError: Gemini API rejected the key (HTTP 403)"
        assert "revoked" not in str(detail)
    finally:
        server.shutdown()
