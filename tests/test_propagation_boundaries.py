"""Propagation boundaries (issue 16, item 3): trace context goes anywhere; baggage and the id headers only to
allowed hosts, never to a model provider's SDK; incoming baggage keys filtered at the door."""

from __future__ import annotations

import json
import subprocess
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from _service import BIN, FAST_EXPORT, clean_env, free_port
from agentwatch.distro import boundaries
from agentwatch.distro.boundaries import BoundaryPropagator, HostPolicy


@pytest.mark.parametrize(("host", "allowed"), [
    ("127.0.0.1", True), ("::1", True), ("[::1]", True), ("localhost", True), ("10.2.3.4", True), ("192.168.1.9", True),
    ("172.16.0.1", True), ("169.254.169.254", True), ("fd00::1", True), ("orders", True), ("orders.shop.svc", True),
    ("orders.shop.svc.cluster.local", True), ("db.internal", True), ("printer.local", True),
    ("8.8.8.8", False), ("2001:4860::1", False), ("generativelanguage.googleapis.com", False),
    ("127.0.0.1.nip.io", False), ("localhost.evil.com", False), ("evil.com", False), ("svc.evil.com", False),
    ("", False), (None, False),
])
def test_the_default_policy(host, allowed):
    assert HostPolicy(["private"]).allows(host) is allowed


def test_patterns_widen_and_narrow():
    policy = HostPolicy(["*.example.com", "203.0.113.0/24", "api.partner.io"])
    assert policy.allows("a.example.com") and policy.allows("A.B.EXAMPLE.COM.") and policy.allows("203.0.113.7")
    assert policy.allows("api.partner.io")
    assert not policy.allows("example.com.evil.net") and not policy.allows("127.0.0.1")  # no `private`: narrower
    assert not HostPolicy(["none"]).allows("127.0.0.1")
    assert HostPolicy(["*"]).allows("anything.anywhere")


def test_provider_sdks_are_recognised_by_their_headers():
    assert boundaries.provider_sdk({"x-goog-api-client": "google-genai-sdk/3.4.0 gl-python/3.11"})
    assert boundaries.provider_sdk({"user-agent": "OpenAI/Python 1.99"})
    assert not boundaries.provider_sdk({"user-agent": "python-httpx/0.28"})


def _propagator() -> BoundaryPropagator:
    inner = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    return BoundaryPropagator(inner, ["agentwatch.request.id", "agentwatch.session.id"])


def test_incoming_baggage_keys_are_filtered():
    carrier = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
               "baggage": "user.email=alice%40example.com,agentwatch.session.id=s1,tenant=acme"}
    extracted = _propagator().extract(carrier)
    assert baggage.get_all(extracted) == {"agentwatch.session.id": "s1"}


def test_baggage_injected_only_where_allowed():
    propagator = _propagator()
    ctx = baggage.set_baggage("agentwatch.request.id", "r1", otel_context.Context())
    allowed: dict[str, str] = {}
    propagator.inject(allowed, ctx)
    assert allowed["baggage"] == "agentwatch.request.id=r1"
    token = boundaries.hold(False)
    try:
        blocked: dict[str, str] = {}
        propagator.inject(blocked, ctx)
    finally:
        boundaries.release(token)
    assert "baggage" not in blocked


# --- end to end: a real app, a real google-genai client, a real downstream ------------------------------

GEMINI_ANSWER = {"candidates": [{"content": {"parts": [{"text": "hi"}], "role": "model"}, "finishReason": "STOP"}],
                 "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1, "totalTokenCount": 4}}


class _Recorder(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RecordingHandler)
        self.seen: dict[str, list[dict[str, str]]] = {}


class _RecordingHandler(BaseHTTPRequestHandler):
    server: _Recorder

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        kind = "gemini" if "generateContent" in self.path else "downstream"
        self.server.seen.setdefault(kind, []).append({k.lower(): v for k, v in self.headers.items()})
        body = json.dumps(GEMINI_ANSWER if kind == "gemini" else {"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    server = _Recorder()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


APP = textwrap.dedent("""\
    import os, sys, httpx, uvicorn
    from fastapi import FastAPI
    from google import genai
    from google.genai import types

    app = FastAPI()
    base = os.environ["RECORDER"]
    client = genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=base))

    @app.get("/go")
    async def go():
        async with httpx.AsyncClient() as http:
            await http.get(base + "/downstream")
        httpx.get(base + "/downstream-sync")
        await client.aio.models.generate_content(model="gemini-2.5-flash", contents="hello")
        client.models.generate_content(model="gemini-2.5-flash", contents="hello")
        return {"ok": True}

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
""")


def _call_app(tmp_path, recorder: _Recorder, **env: str) -> dict[str, list[dict[str, str]]]:
    import urllib.request

    from _service import Service

    script = tmp_path / "boundary_app.py"
    script.write_text(APP)
    port = free_port()
    full_env = clean_env(RECORDER=f"http://127.0.0.1:{recorder.server_port}", OTEL_TRACES_EXPORTER="none",
                         OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none", AGENTWATCH_ENDPOINT_CHECK="false",
                         AGENTWATCH_HEALTH_GEMINI="off", **FAST_EXPORT, **env)
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    process = subprocess.Popen([str(BIN / "opentelemetry-instrument"), "python", str(script), str(port)],
                               env=full_env, stdout=out.open("w"), stderr=err.open("w"))
    service = Service(process, port, err, out)
    try:
        import time

        deadline = time.monotonic() + 60
        while True:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/go", headers={
                    "baggage": "user.email=alice%40example.com,agentwatch.session.id=chat-1",
                    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
                with urllib.request.urlopen(request, timeout=20) as answer:
                    assert answer.status == 200
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError(service.stderr())
                time.sleep(0.2)
    finally:
        service.terminate()
    return recorder.seen


def test_gemini_gets_neither_and_a_loopback_downstream_gets_both(tmp_path, recorder):
    seen = _call_app(tmp_path, recorder)
    assert len(seen["downstream"]) == 2 and len(seen["gemini"]) == 2
    for headers in seen["downstream"]:
        assert headers["x-request-id"] and headers["x-session-id"] == "chat-1"
        assert "agentwatch.request.id=" in headers["baggage"] and "agentwatch.session.id=chat-1" in headers["baggage"]
        assert "alice" not in headers["baggage"] and "user.email" not in headers["baggage"]  # filtered at the door
        assert headers["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
    for headers in seen["gemini"]:
        assert "baggage" not in headers and "x-request-id" not in headers and "x-session-id" not in headers
        assert headers["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")  # trace context still goes


def test_none_keeps_everything_in(tmp_path, recorder):
    seen = _call_app(tmp_path, recorder, AGENTWATCH_PROPAGATE_TO="none")
    for headers in seen["downstream"]:
        assert "baggage" not in headers and "x-request-id" not in headers
        assert headers["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
