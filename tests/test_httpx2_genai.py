"""google-genai 3.x sends through httpx2; the stock HTTPX2ClientInstrumentor
catches it and gives the same CLIENT span an httpx request gets.

Real google-genai SDK against a local fake Gemini REST server, a real SDK
TracerProvider with an in-memory exporter.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import httpx2
import pytest
from google import genai
from google.genai import _api_client, types
from opentelemetry.instrumentation._semconv import (
    _OpenTelemetrySemanticConventionStability,
)
from opentelemetry.instrumentation.httpx import (
    HTTPX2ClientInstrumentor,
    HTTPXClientInstrumentor,
)
from opentelemetry.trace import SpanKind, StatusCode

API_KEY = "test-key"
MODEL = "gemini-2.5-flash"
GEMINI_REPLY = {
    "candidates": [
        {"content": {"role": "model", "parts": [{"text": "hello"}]}, "finishReason": "STOP"}
    ],
    "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5},
    "modelVersion": MODEL,
}
# google-genai 3.x sends through httpx2 by default, 2.x through httpx (where httpx2 is only an option):
# the tests of what genai's own requests look like need the former.
sends_over_httpx2 = pytest.mark.skipif(
    getattr(_api_client, "_DEFAULT_HTTP_CLIENT_BACKEND", "httpx") != "httpx2",
    reason="this google-genai sends through httpx (2.x); tests/test_gemini.py covers its HTTP spans",
)
_GENERATE = re.compile(r"^/v1[a-z0-9]*/models/[^/:]+:generateContent$")
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


class _FakeGemini(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002
        pass

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append(
            {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
        )
        if _GENERATE.match(self.path):
            status, payload = 200, json.dumps(GEMINI_REPLY).encode()
        else:
            status, payload = 404, b'{"error": {"code": 404, "message": "not found"}}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def gemini_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeGemini)
    server.daemon_threads = True
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def exporter(telemetry):
    return telemetry.span_exporter


@pytest.fixture
def provider(telemetry):
    return telemetry.tracer_provider


@pytest.fixture
def instrumented(monkeypatch, provider):
    """httpx and httpx2 instrumented under the stable HTTP conventions."""
    for var in ("GOOGLE_GENAI_HTTP_CLIENT", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    stability = _OpenTelemetrySemanticConventionStability
    saved = (stability._initialized, dict(stability._OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING))
    stability._initialized = False  # re-read the opt-in now
    stability._OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING = {}
    httpx2_inst, httpx_inst = HTTPX2ClientInstrumentor(), HTTPXClientInstrumentor()
    httpx2_inst.instrument(tracer_provider=provider)
    httpx_inst.instrument(tracer_provider=provider)
    yield
    httpx2_inst.uninstrument()
    httpx_inst.uninstrument()
    stability._initialized, mapping = saved
    stability._OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING = mapping


def _client(server) -> genai.Client:
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    return genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=base_url))


def _client_spans(exporter):
    return [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CLIENT]


def _assert_http_client_span(span, server, request_seen, parent):
    port = server.server_address[1]
    attrs = dict(span.attributes)
    assert span.name == "POST"
    assert span.kind == SpanKind.CLIENT
    assert span.status.status_code == StatusCode.UNSET
    assert span.instrumentation_scope.name == "opentelemetry.instrumentation.httpx"
    assert attrs["http.request.method"] == "POST"
    assert attrs["url.full"] == f"http://127.0.0.1:{port}{request_seen['path']}"
    assert attrs["server.address"] == "127.0.0.1"
    assert attrs["server.port"] == port
    assert attrs["http.response.status_code"] == 200
    # stable conventions only: none of the old names
    assert not {"http.method", "http.url", "http.status_code", "net.peer.name"} & set(attrs)
    # parented under the caller's span
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id

    # the server saw W3C trace context pointing at this very span
    match = _TRACEPARENT.match(request_seen["headers"]["traceparent"])
    assert match, request_seen["headers"]["traceparent"]
    assert match.group(1) == f"{span.context.trace_id:032x}"
    assert match.group(2) == f"{span.context.span_id:016x}"

    # the key travels in the header, never in the URL or any span attribute
    assert request_seen["headers"]["x-goog-api-key"] == API_KEY
    assert "key=" not in attrs["url.full"] and API_KEY not in request_seen["path"]
    for key, value in attrs.items():
        assert API_KEY not in str(value), key
    for event in span.events:
        assert API_KEY not in str(dict(event.attributes or {}))


@sends_over_httpx2
def test_genai_uses_httpx2_http_transport(instrumented, gemini_server):
    """What the stock instrumentor relies on: google-genai builds httpx2
    clients whose transport is httpx2.HTTPTransport / AsyncHTTPTransport."""
    client = _client(gemini_server)
    api = client._api_client
    assert isinstance(api._httpx_client, httpx2.Client)
    assert isinstance(api._httpx_client._transport, httpx2.HTTPTransport)
    assert isinstance(api._async_httpx_client, httpx2.AsyncClient)
    assert _api_client._DEFAULT_HTTP_CLIENT_BACKEND == "httpx2"


@sends_over_httpx2
def test_sync_generate_content_gives_one_client_span(instrumented, provider, exporter, gemini_server):
    client = _client(gemini_server)
    with provider.get_tracer("test").start_as_current_span("agent.answer") as parent:
        response = client.models.generate_content(model=MODEL, contents="hi")
    assert response.text == "hello"
    assert response.usage_metadata.total_token_count == 5

    (request_seen,) = gemini_server.seen
    assert request_seen["path"] == f"/v1/models/{MODEL}:generateContent"
    assert json.loads(request_seen["body"])["contents"][0]["parts"][0]["text"] == "hi"
    (span,) = _client_spans(exporter)
    _assert_http_client_span(span, gemini_server, request_seen, parent)


def test_async_generate_content_gives_one_client_span(instrumented, provider, exporter, gemini_server):
    client = _client(gemini_server)
    tracer = provider.get_tracer("test")

    async def call():
        with tracer.start_as_current_span("agent.answer") as parent:
            response = await client.aio.models.generate_content(model=MODEL, contents="hi")
        await client.aio.aclose()
        return parent, response

    parent, response = asyncio.run(call())
    assert response.text == "hello"
    (request_seen,) = gemini_server.seen
    assert _GENERATE.match(request_seen["path"])
    (span,) = _client_spans(exporter)
    _assert_http_client_span(span, gemini_server, request_seen, parent)


@sends_over_httpx2
def test_same_shape_as_an_httpx_span(instrumented, provider, exporter, gemini_server):
    """The httpx2 span (through genai) and a plain httpx span of the same
    request carry the same name, kind, scope and attribute keys."""
    client = _client(gemini_server)
    client.models.generate_content(model=MODEL, contents="hi")
    url = f"http://127.0.0.1:{gemini_server.server_address[1]}/v1/models/{MODEL}:generateContent"
    with httpx.Client() as plain:
        assert plain.post(url, json={"contents": []}).status_code == 200

    genai_span, httpx_span = _client_spans(exporter)
    assert genai_span.name == httpx_span.name == "POST"
    assert genai_span.kind == httpx_span.kind
    assert genai_span.instrumentation_scope.name == httpx_span.instrumentation_scope.name
    assert set(genai_span.attributes) == set(httpx_span.attributes)
    for key in ("http.request.method", "url.full", "server.address", "server.port", "http.response.status_code"):
        assert genai_span.attributes[key] == httpx_span.attributes[key]


def test_uninstrumented_genai_makes_no_span(provider, exporter, gemini_server, monkeypatch):
    monkeypatch.delenv("GOOGLE_GENAI_HTTP_CLIENT", raising=False)
    # keep the Client referenced: google-genai 3.4's Client.__del__ closes the
    # shared httpx2 client, so `genai.Client(...).models.generate_content(...)`
    # in one expression fails with "client has been closed"
    client = _client(gemini_server)
    response = client.models.generate_content(model=MODEL, contents="hi")
    assert response.text == "hello"
    assert exporter.get_finished_spans() == ()
    assert "traceparent" not in gemini_server.seen[0]["headers"]
