"""agentwatch.web under ``opentelemetry-instrument`` with the real uvicorn in a subprocess, exporting
to a real OTLP receiver: probes out of traces, the 500 and its span, startup probe, SIGTERM drain."""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from _service import FAST_EXPORT, clean_env, start_service
from otlp_receiver import OTLPReceiver

pytestmark = pytest.mark.slow

APP = '''
import asyncio, sys, time
import uvicorn
from fastapi import FastAPI
from agentwatch.web import health_check

app = FastAPI()

@health_check(name="warmup", startup=True, readiness=False, retries=0, timeout=5)
def warmup():
    time.sleep(float(__import__("os").environ.get("WARMUP_S", "0")))

@health_check(name="stuck", critical=False, timeout=0.3)
def stuck():
    time.sleep(30)

@app.get("/")
async def index():
    return {"ok": True}

@app.get("/work")
async def work():
    await asyncio.sleep(1.5)
    return {"done": True}

@app.get("/boom/{n}")
async def boom(n: int):
    raise ValueError("bad input from alice@example.com")

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[sys.argv.index("--port") + 1]), log_level="warning")
'''


def _get(url: str, timeout: float = 5, headers: dict | None = None) -> tuple[int, dict, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}"), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}"), dict(error.headers)


def _start(tmp_path: Path, rx: OTLPReceiver, **extra: str):
    app = tmp_path / "web_app.py"
    app.write_text(APP)
    env = clean_env(
        **rx.env(),
        **FAST_EXPORT,
        OTEL_SERVICE_NAME="web-test",
        OTEL_LOGS_EXPORTER="none",
        AGENTWATCH_HEALTH_GEMINI="off",
        AGENTWATCH_ENDPOINT_CHECK="false",
        AGENTWATCH_HEALTH_DETAILS="always",  # these tests read the full detailed view (its gating: test_health_details.py)
        **extra,
    )
    return start_service(tmp_path, env, command=["python", str(app), "--port", "{port}"])


def test_probes_untraced_error_span_and_metric(tmp_path):
    with OTLPReceiver(protocol="http") as rx:
        service = _start(tmp_path, rx)
        try:
            for _ in range(3):
                for path in ("/health", "/health/live", "/health/ready", "/health/startup", "/health/detailed"):
                    status, _body, _ = _get(service.url + path)
                    assert status == 200, (path, _body)
            started = time.monotonic()
            status, body, _ = _get(service.url + "/health/detailed")
            assert time.monotonic() - started < 1.0  # the hanging check is cached / bounded
            assert body["checks"]["stuck"]["error"] == "timed out after 0.3s" and body["status"] == "degraded"
            status, body, headers = _get(service.url + "/boom/3", headers={"X-Request-ID": "e2e-77"})
            assert status == 500
            assert body == {
                "error": "internal_server_error",
                "message": "An internal error occurred. Quote the request id when reporting it.",
                "request_id": "e2e-77",
            }
            assert headers["x-request-id"] == "e2e-77"
            assert _get(service.url + "/")[0] == 200
            assert rx.wait_for(lambda r: any(m["name"] == "agentwatch.http.server.errors" for m in r.metrics()), 10)
        finally:
            service.terminate()
        spans = rx.spans()
        names = {s["name"] for s in spans}
        assert "GET /boom/{n}" in names and "GET /" in names, names
        assert not [s for s in spans if "health" in s["name"] or "/health" in str(s["attributes"].get("url.path", ""))]
        durations = [p for m in rx.metrics("http.server.request.duration") for p in m["data_points"]]
        assert durations and not [p for p in durations if "health" in str(p["attributes"].get("http.route", ""))]
        boom = next(s for s in spans if s["name"] == "GET /boom/{n}")
        assert boom["attributes"]["agentwatch.request.id"] == "e2e-77"
        assert boom["status"] == "ERROR"
        # (error.type on the span is "500": the stable HTTP conventions, set by the ASGI middleware last)
        exceptions = [e for e in boom["events"] if e["name"] == "exception"]
        assert len(exceptions) == 1 and exceptions[0]["attributes"]["exception.type"] == "ValueError"
        assert exceptions[0]["attributes"]["exception.message"].startswith("bad input from ")
        assert "alice@example.com" not in json.dumps(boom)
        errors = rx.metrics("agentwatch.http.server.errors")[-1]["data_points"]
        assert [(p["attributes"], p["value"]) for p in errors] == [
            ({"error.type": "ValueError", "http.route": "/boom/{n}", "http.request.method": "GET"}, 1)
        ]
        # The latest value of each check over the exports (opentelemetry-sdk 1.44's synchronous gauge exports
        # only the series set since the last collection; 1.45 every series: a backend keeps the last either way).
        gauges = {p["attributes"]["agentwatch.health.check.name"]: p["value"]
                  for m in rx.metrics("agentwatch.health.check.status") for p in m["data_points"]}
        assert gauges["disk"] == 1.0 and gauges["stuck"] == 0.0
        # The /boom request is the only failure: uvicorn logs its traceback once, ending in the ValueError.
        stderr = service.stderr()
        assert stderr.count("Traceback (most recent call last):") == 1, stderr
        assert "ValueError: bad input from [REDACTED:email]" in stderr.splitlines(), stderr
        assert "alice@example.com" not in stderr


def test_startup_probe_then_sigterm_drain(tmp_path):
    with OTLPReceiver(protocol="http") as rx:
        service = _start(tmp_path, rx, WARMUP_S="1.0", AGENTWATCH_DRAIN_DELAY="1.0")
        try:
            status, body, _ = _get(service.url + "/health/startup")
            assert status == 503 and body["status"] == "starting" and body["pending"] == ["warmup"]
            assert _get(service.url + "/health/live")[0] == 200
            assert _get(service.url + "/health/ready")[0] == 503
            deadline = time.monotonic() + 10
            while _get(service.url + "/health/startup")[0] != 200 and time.monotonic() < deadline:
                time.sleep(0.05)
            status, body, _ = _get(service.url + "/health/startup")
            assert status == 200 and body["checks"]["warmup"]["status"] == "healthy"
            assert _get(service.url + "/health/ready")[0] == 200

            slow: dict = {}
            worker = threading.Thread(target=lambda: slow.update(result=_get(service.url + "/work", timeout=10)))
            worker.start()
            time.sleep(0.3)  # the request is in flight
            service.process.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            status, body, _ = _get(service.url + "/health/ready")
            assert status == 503 and body["status"] == "draining"
            worker.join(10)
            assert slow["result"][0] == 200 and slow["result"][1] == {"done": True}
            service.process.wait(15)
        finally:
            code = service.terminate()
        assert code in (0, -15, 143), service.stderr()
        # Flushed at exit: the in-flight request's span was exported.
        assert "GET /work" in {s["name"] for s in rx.spans()}


def test_shutdown_signal_hook_failing_still_stops_the_server_and_says_so_once(monkeypatch, lenient):
    """If starting the drain fails, uvicorn's own signal handling runs at once, and one warning says why."""
    from agentwatch.distro import _diagnostics
    from agentwatch.instrumentors import web as web_instrumentor
    from agentwatch.web import health

    def broken(reason: str) -> None:
        raise RuntimeError("drain state unavailable")

    monkeypatch.setattr(health, "start_draining", broken)
    calls: list[tuple] = []

    class Server:  # stands in for uvicorn.Server
        pass

    for _ in range(3):
        web_instrumentor._handle_exit(lambda *a, **k: calls.append(a), Server(), (signal.SIGTERM, None), {})
    assert calls == [(signal.SIGTERM, None)] * 3
    warnings = [m for m in _diagnostics.messages() if "shutdown signal" in m]
    assert len(warnings) == 1 and "drain state unavailable" in warnings[0], warnings
