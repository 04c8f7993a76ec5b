"""agentwatch's one server layer (agentwatch/web/server.py) exports what the contrib FastAPI/ASGI layer exported.

The same app runs twice under ``opentelemetry-instrument`` (real uvicorn, real OTLP/HTTP export to the test
receiver): once with ``AGENTWATCH_SERVER_LAYER=contrib`` (opentelemetry-instrumentation-fastapi, as before) and
once with the default (agentwatch's layer). The same requests, hostile ones included, go to both; the decoded
server-side spans (names, kinds, attributes, status, events, parent/child structure) and the HTTP server
metrics (names, units, descriptions, types, bucket boundaries, attribute sets, counts) must be equal once
ids, ports, timestamps, durations and stack frames are normalised.
"""

from __future__ import annotations

import inspect
import json
import os
import socket
import time

import pytest

from _service import FAST_EXPORT, clean_env, start_service
from otlp_receiver import OTLPReceiver

pytestmark = pytest.mark.slow

APP = r'''
import asyncio, sys
import uvicorn
from fastapi import BackgroundTasks, FastAPI, HTTPException, WebSocket
from fastapi.responses import StreamingResponse

app = FastAPI()
sub = FastAPI()

@sub.get("/hello")
async def sub_hello():
    return {"sub": True}

app.mount("/sub", sub)

@app.get("/")
async def index():
    return {"ok": True}

@app.get("/items/{item_id}")
async def item(item_id: str, q: str | None = None):
    return {"item": item_id, "q": q}

@app.post("/echo")
async def echo(payload: dict):
    return payload

@app.get("/boom")
async def boom():
    raise ValueError("it broke for alice@example.com")

@app.get("/sync-boom")
def sync_boom():
    raise KeyError("sync")

@app.get("/teapot")
async def teapot():
    raise HTTPException(status_code=418, detail="short and stout")

@app.get("/unavailable")
async def unavailable():
    raise HTTPException(status_code=503, detail="later")

async def chunks(fail):
    for i in range(3):
        yield f"chunk {i}\n".encode()
        await asyncio.sleep(0)
    if fail:
        raise RuntimeError("stream broke")

@app.get("/stream")
async def stream():
    return StreamingResponse(chunks(False), media_type="text/plain")

@app.get("/stream-boom")
async def stream_boom():
    return StreamingResponse(chunks(True), media_type="text/plain")

@app.get("/slow")
async def slow():
    await asyncio.sleep(0.3)
    return {"slow": True}

def later(tag):
    pass

@app.get("/background")
async def background(tasks: BackgroundTasks):
    tasks.add_task(later, "x")
    return {"queued": True}

@app.websocket("/ws")
async def ws(websocket: WebSocket):
    await websocket.accept()
    text = await websocket.receive_text()
    await websocket.send_text("echo " + text)
    await websocket.close()

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[sys.argv.index("--port") + 1]), log_level="warning")
'''

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def raw(port: int, request: bytes, *, read: bool = True, timeout: float = 5.0) -> bytes:
    """Send ``request`` as it is on a fresh connection; the answer (until the server closes), or b""."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        if not read:
            return b""
        chunks = []
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def get(tag: str, target: str, method: str = "GET", extra: bytes = b"", body: bytes = b"") -> bytes:
    head = f"{method} {target} HTTP/1.1\r\nHost: testserver\r\nUser-Agent: equivalence-test/1.0\r\n".encode()
    head += f"X-Request-ID: {tag}\r\nConnection: close\r\n".encode() + extra
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n".encode()
    return head + b"\r\n" + body


REQUESTS: list[tuple[str, bytes]] = [
    ("index", get("t-index", "/")),
    ("item", get("t-item", "/items/42?q=a%20b&x=1")),
    ("item-parent", get("t-parent", "/items/7", extra=f"traceparent: {TRACEPARENT}\r\n".encode())),
    ("bad-traceparent", get("t-badtp", "/items/8", extra=b"traceparent: 00-zzzz-not-valid-01\r\ntracestate: ,,==\r\n")),
    ("echo", get("t-echo", "/echo", method="POST", body=json.dumps({"a": 1, "b": "x"}).encode())),
    ("invalid-body", get("t-invalid", "/echo", method="POST", body=b"[1, 2")),
    ("missing", get("t-missing", "/no/such/route")),
    ("boom", get("t-boom", "/boom")),
    ("sync-boom", get("t-syncboom", "/sync-boom")),
    ("teapot", get("t-teapot", "/teapot")),
    ("unavailable", get("t-unavail", "/unavailable")),
    ("stream", get("t-stream", "/stream")),
    ("stream-boom", get("t-streamboom", "/stream-boom")),
    ("head", get("t-head", "/items/1", method="HEAD")),
    ("options", get("t-options", "/items/1", method="OPTIONS")),
    ("odd-method", get("t-odd", "/items/1", method="FROBNICATE")),
    ("lower-method", get("t-lower", "/items/1", method="get")),
    ("non-ascii", get("t-nonascii", "/items/%C3%A9t%C3%A9%20%E2%9C%93?name=J%C3%BCrgen")),
    ("slash", get("t-slash", "/items/")),
    ("huge-header", get("t-huge", "/items/huge", extra=b"X-Big: " + b"A" * 12000 + b"\r\n")),
    ("odd-headers", get("t-odd-h", "/items/odd", extra=b"X-Latin: caf\xe9\r\nX-Empty:\r\nUser-Agent: second\r\n")),
    ("bot", get("t-bot", "/items/bot").replace(b"equivalence-test/1.0", b"Googlebot/2.1")),
    ("sub", get("t-sub", "/sub/hello")),
    ("background", get("t-background", "/background")),
    ("health", get("t-health", "/health/live")),
    ("excluded", get("t-excluded", "/items/excluded?x=1")),
]


def _exercise(port: int) -> None:
    for _, request in REQUESTS:
        assert raw(port, request), request[:80]
    # A client that goes away before its answer.
    raw(port, get("t-gone", "/slow"), read=False)
    time.sleep(0.5)
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{port}/ws?tag=t-ws") as ws:
        ws.send("hi")
        assert ws.recv() == "echo hi"
    time.sleep(0.3)


def _run(tmp_path, layer: str) -> tuple[list[dict], list[dict], int, str]:
    app = tmp_path / f"app_{layer}.py"
    app.write_text(APP)
    with OTLPReceiver(protocol="http") as rx:
        env = clean_env(
            **rx.env(), **FAST_EXPORT, AGENTWATCH_SERVER_LAYER=layer,
            OTEL_PYTHON_EXCLUDED_URLS="items/excluded,health",  # the generic form: agentwatch sets no FastAPI one
            OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST="x-latin,X-Big,traceparent",
            OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE="content-.*,x-request-id",
            OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS="x-big",
        )
        service = start_service(tmp_path, env, command=["python", str(app), "--port", "{port}"])
        try:
            _exercise(service.port)
            time.sleep(0.5)
        finally:
            service.process.send_signal(2)  # SIGINT flushes every signal
            service.process.wait(20)
        return rx.spans(), rx.metrics(), service.port, service.stderr()


SERVER_SCOPES = ("opentelemetry.instrumentation.fastapi", "agentwatch.web")


def _normalise_value(value, port: int):
    if isinstance(value, str):
        return value.replace(str(port), "PORT")
    if value == port:
        return "PORT"
    return value


def _event(event: dict, port: int) -> dict:
    attributes = {k: _normalise_value(v, port) for k, v in event["attributes"].items()}
    if "exception.stacktrace" in attributes:  # the frames of the layers differ by design; the error does not
        attributes["exception.stacktrace"] = attributes["exception.stacktrace"].strip().splitlines()[-1]
    return {"name": event["name"], "attributes": attributes}


def _span(span: dict, port: int) -> dict:
    attributes = {k: _normalise_value(v, port) for k, v in span["attributes"].items() if k != "client.port"}
    return {
        "name": span["name"],
        "kind": span["kind"],
        "status": span["status"],
        "status_message": span["status_message"],
        "attributes": attributes,
        "events": [_event(e, port) for e in span["events"]],
    }


def _trees(spans: list[dict], port: int) -> dict[str, dict]:
    """The server-side traces by request tag: each a tree of normalised spans (children sorted)."""
    spans = [s for s in spans if s["scope"] in SERVER_SCOPES]
    by_id = {s["span_id"]: s for s in spans}
    children: dict[str, list[dict]] = {}
    roots = []
    for span in spans:
        parent = span["parent_span_id"]
        if parent and parent in by_id:
            children.setdefault(parent, []).append(span)
        else:
            roots.append(span)

    def tree(span: dict) -> dict:
        node = _span(span, port)
        node["remote_parent"] = span["parent_span_id"] if span["parent_span_id"] not in by_id else None
        node["children"] = sorted((tree(c) for c in children.get(span["span_id"], [])), key=json.dumps)
        return node

    out = {}
    for root in roots:
        attributes = root["attributes"]
        tag = attributes.get("agentwatch.request.id") or attributes.get("url.query") or root["name"]
        if not str(tag).startswith("t-") and root["name"] == "GET /":
            continue  # start_service's readiness polls (random request ids)
        assert tag not in out, f"two traces for {tag}"
        out[tag] = tree(root)
    return out


HTTP_METRICS = (
    "http.server.request.duration", "http.server.active_requests", "http.server.request.body.size",
    "http.server.response.body.size", "agentwatch.http.server.errors",
)


def _metrics(metrics: list[dict], port: int) -> dict[str, dict]:
    """The last export of each HTTP server metric (cumulative): its description and points by attribute set."""
    out = {}
    for metric in metrics:
        if metric["name"] not in HTTP_METRICS:
            continue
        points = {}
        for point in metric["data_points"]:
            key = json.dumps({k: _normalise_value(v, port) for k, v in sorted(point["attributes"].items())})
            points[key] = {
                "count": point.get("count"),
                "value": point.get("value"),
                "explicit_bounds": point.get("explicit_bounds"),
            }
        out[metric["name"]] = {
            "unit": metric["unit"], "description": metric["description"], "type": metric["type"],
            "temporality": metric["temporality"], "monotonic": metric["monotonic"], "points": points,
        }
    return out


def test_agentwatch_layer_exports_what_the_contrib_layer_did(tmp_path):
    contrib_spans, contrib_metrics, contrib_port, contrib_err = _run(tmp_path, "contrib")
    own_spans, own_metrics, own_port, own_err = _run(tmp_path, "agentwatch")

    # Each run is what it claims to be.
    assert {s["scope"] for s in contrib_spans if s["kind"] == "SERVER"} == {"opentelemetry.instrumentation.fastapi"}
    assert {s["scope"] for s in own_spans if s["kind"] == "SERVER"} == {"agentwatch.web"}, own_err
    assert not [s for s in own_spans if s["scope"] == "opentelemetry.instrumentation.fastapi"]
    assert not [s for s in own_spans + contrib_spans if s["name"].endswith(("http send", "http receive"))]

    contrib_trees, own_trees = _trees(contrib_spans, contrib_port), _trees(own_spans, own_port)
    contrib_m, own_m = _metrics(contrib_metrics, contrib_port), _metrics(own_metrics, own_port)
    if os.environ.get("AGENTWATCH_TEST_DUMP"):
        for name, data in (("contrib", (contrib_trees, contrib_m)), ("agentwatch", (own_trees, own_m))):
            (tmp_path.parent / f"{name}.json").write_text(json.dumps(data, indent=1, sort_keys=True, default=str))
    assert sorted(own_trees) == sorted(contrib_trees)
    for tag in contrib_trees:
        assert own_trees[tag] == contrib_trees[tag], tag
    # The hostile requests were really traced (not silently dropped by both).
    for tag in ("t-item", "t-boom", "t-streamboom", "t-nonascii", "t-huge", "t-odd", "t-gone", "t-background"):
        assert tag in own_trees, tag
    assert own_trees["t-parent"]["remote_parent"] == TRACEPARENT.split("-")[2]
    assert "t-health" not in own_trees and "t-excluded" not in own_trees  # OTEL_PYTHON_EXCLUDED_URLS
    assert own_trees["t-huge"]["attributes"]["http.request.header.x_big"] == ["[REDACTED]"]
    assert own_trees["t-item"]["attributes"]["http.response.header.x_request_id"] == ["t-item"]

    assert set(own_m) == set(contrib_m)
    for name, contrib_metric in contrib_m.items():
        own_metric = own_m[name]
        if name == "http.server.response.body.size":
            # The contrib layer keeps the last Content-Length on the middleware and records it again for later
            # responses without one (streams); agentwatch records only real lengths: a subset, same shape.
            assert {k: v for k, v in own_metric.items() if k != "points"} == \
                {k: v for k, v in contrib_metric.items() if k != "points"}
            assert set(own_metric["points"]) <= set(contrib_metric["points"])
            continue
        assert own_metric == contrib_metric, name


# --------------------------------------------------------------------------- in process

from fastapi import BackgroundTasks, FastAPI, Request  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from opentelemetry.instrumentation._semconv import (  # noqa: E402
    _OpenTelemetrySemanticConventionStability,
    _OpenTelemetryStabilitySignalType,
    _StabilityMode,
)
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor  # noqa: E402

from agentwatch.instrumentors.web import AgentwatchWebInstrumentor  # noqa: E402
from agentwatch.web import choice, server  # noqa: E402


@pytest.fixture
def stable_http(monkeypatch):
    """The stable HTTP conventions for this test (the contrib instrumentations read a process-wide cache)."""
    _OpenTelemetrySemanticConventionStability._initialize()
    mapping = dict(_OpenTelemetrySemanticConventionStability._OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING)
    mapping[_OpenTelemetryStabilitySignalType.HTTP] = _StabilityMode.HTTP
    monkeypatch.setattr(_OpenTelemetrySemanticConventionStability, "_OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING", mapping)


@pytest.fixture
def layer(monkeypatch, telemetry, stable_http):
    """agentwatch_web instrumented with its server layer on the test's in-memory providers."""
    monkeypatch.setenv("AGENTWATCH_HEALTH_GEMINI", "off")
    AgentwatchWebInstrumentor().instrument(server_layer=True, tracer_provider=telemetry.tracer_provider,
                                           meter_provider=telemetry.meter_provider)
    yield telemetry
    AgentwatchWebInstrumentor().uninstrument()


def _variant_app(telemetry, *, own_handler: str | None = None, debug: bool = False) -> FastAPI:
    app = FastAPI(debug=debug)

    @app.get("/ok/{n}")
    def ok(n: int):
        return {"n": n}

    @app.get("/boom")
    async def boom():
        raise ValueError("async boom")

    @app.get("/sync-boom")
    def sync_boom():
        raise KeyError("sync boom")

    if own_handler == "async":
        @app.exception_handler(Exception)
        async def handler(request: Request, exc: Exception):
            return JSONResponse({"mine": True}, status_code=500)
    elif own_handler == "sync":
        def sync_handler(request: Request, exc: Exception):
            return JSONResponse({"mine": "sync"}, status_code=500)

        app.add_exception_handler(Exception, sync_handler)
    return app


def _spans_of(telemetry, scope_name: str, port_free: bool = True) -> list[dict]:
    out = []
    for span in telemetry.spans(scope_name):
        attributes = dict(span.attributes or {})
        attributes.pop("agentwatch.request.id", None)
        events = []
        for event in span.events:
            event_attributes = dict(event.attributes or {})
            if "exception.stacktrace" in event_attributes:
                event_attributes["exception.stacktrace"] = str(event_attributes["exception.stacktrace"]).strip() \
                    .splitlines()[-1]
            events.append((event.name, event_attributes))
        out.append({"name": span.name, "kind": span.kind, "attributes": attributes, "events": events,
                    "status": (span.status.status_code, span.status.description)})
    return out


@pytest.mark.parametrize("own_handler,debug,error_handlers", [
    (None, False, "true"), ("async", False, "true"), ("sync", False, "true"), (None, True, "true"),
    (None, False, "false"),
])
def test_same_spans_with_the_apps_own_error_handling(layer, monkeypatch, own_handler, debug, error_handlers):
    """Exceptions reach the span the same way whatever answers the 500: the app's own handler (async or
    sync, run in a thread), Starlette's debug page, Starlette's plain 500 (agentwatch's handlers off)."""
    import agentwatch.web

    monkeypatch.setenv("AGENTWATCH_ERROR_HANDLERS", error_handlers)
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST", "x-custom,x-request-id")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE", "content-type,x-request-id")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS", "x-custom")
    agentwatch.web.reset()
    server.activate(layer.tracer_provider, layer.meter_provider)  # reads the capture variables now
    contrib_app = _variant_app(layer, own_handler=own_handler, debug=debug)
    FastAPIInstrumentor.instrument_app(contrib_app, tracer_provider=layer.tracer_provider,
                                       meter_provider=layer.meter_provider, exclude_spans=["receive", "send"])
    own_app = _variant_app(layer, own_handler=own_handler, debug=debug)
    headers = {"x-custom": "secret", "x-request-id": "fixed-id"}
    answers = {}
    try:
        for name, app in (("contrib", contrib_app), ("agentwatch", own_app)):
            with TestClient(app, raise_server_exceptions=False) as client:
                answers[name] = [(r.status_code, r.text if not debug else r.text[:40]) for r in (
                    client.get(path, headers=headers) for path in ("/ok/1?x=y", "/boom", "/sync-boom", "/nope"))]
    finally:
        FastAPIInstrumentor.uninstrument_app(contrib_app)
    contrib_spans = _spans_of(layer, "opentelemetry.instrumentation.fastapi")
    own_spans = _spans_of(layer, "agentwatch.web")
    assert answers["agentwatch"] == answers["contrib"]
    assert len(own_spans) == len(contrib_spans) == 4
    for own, theirs in zip(own_spans, contrib_spans):
        if own["attributes"].get("http.response.status_code") == 500:
            # A 500 answered by the app's own handler or Starlette's was sent outside agentwatch's id layer
            # before (the contrib stack put a ServerErrorMiddleware above it), so without X-Request-ID; now
            # every answer carries it.
            assert own["attributes"].pop("http.response.header.x_request_id") == ("fixed-id",)
            theirs["attributes"].pop("http.response.header.x_request_id", None)
        assert own == theirs
    assert own_spans[0]["attributes"]["http.request.header.x_custom"] == ("[REDACTED]",)
    assert own_spans[0]["attributes"]["http.response.header.x_request_id"] == ("fixed-id",)
    assert [e[0] for e in own_spans[1]["events"]] == ["exception"]


def test_an_app_that_instruments_itself_gets_one_server_span(layer):
    """FastAPIInstrumentor.instrument_app(app) in the app's code: the contrib span only, never two; the
    request ids are still set by agentwatch (its id layer alone)."""
    app = _variant_app(layer)
    FastAPIInstrumentor.instrument_app(app, tracer_provider=layer.tracer_provider)
    try:
        with TestClient(app) as client:
            response = client.get("/ok/3")
    finally:
        FastAPIInstrumentor.uninstrument_app(app)
    assert response.headers["x-request-id"]
    servers = [s for s in layer.spans() if s.kind.name == "SERVER"]
    assert [(s.name, s.instrumentation_scope.name) for s in servers] == [
        ("GET /ok/{n}", "opentelemetry.instrumentation.fastapi")]
    assert servers[0].attributes["agentwatch.request.id"] == response.headers["x-request-id"]


@pytest.mark.skipif("telemetry" not in inspect.signature(FastAPI.__init__).parameters,
                    reason="this FastAPI has no native telemetry (FastAPI(telemetry=...)): the lowest resolution's 0.133")
def test_fastapis_native_layer_steps_aside_once_per_app(layer):
    """FastAPI's own telemetry, given providers of its own, would trace every request too; agentwatch's layer
    switches it off when the app's stack is built (its per-request check then finds nothing to do) and drops
    its exception observer from the stack."""
    app = FastAPI(telemetry={"tracer_provider": layer.tracer_provider, "meter_provider": layer.meter_provider})

    @app.get("/x")
    def x():
        return {}

    with TestClient(app) as client:
        assert client.get("/x").status_code == 200
        assert client.get("/x").status_code == 200
    assert [s.instrumentation_scope.name for s in layer.spans()] == ["agentwatch.web", "agentwatch.web"]
    assert not app._native_telemetry.enabled()
    node, names = app.middleware_stack, []
    while node is not None:
        names.append(type(node).__name__)
        node = getattr(node, "app", None)
    assert names[0] == "ServerLayer" and "ExceptionTelemetryMiddleware" not in names, names
    metric_scopes = {sm.scope.name for rm in layer.metric_reader.get_metrics_data().resource_metrics
                     for sm in rm.scope_metrics}
    assert "fastapi" not in metric_scopes


def test_background_tasks_keep_their_span(layer):
    app = FastAPI()

    ran = []

    def later():
        ran.append(True)

    @app.get("/bg")
    def bg(tasks: BackgroundTasks):
        tasks.add_task(later)
        return {}

    with TestClient(app) as client:
        assert client.get("/bg").status_code == 200
    spans = {s.name: s for s in layer.spans()}
    assert ran == [True]
    assert spans["BackgroundTask later"].parent.span_id == spans["GET /bg"].context.span_id


def test_a_fault_in_the_layer_costs_the_request_nothing(layer, lenient, monkeypatch):
    app = _variant_app(layer)

    def broken(*args, **kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr(server.ServerTelemetry, "start", broken)
    with TestClient(app) as client:
        response = client.get("/ok/5")
    assert response.status_code == 200 and response.json() == {"n": 5}
    assert response.headers["x-request-id"]  # the id layer still ran
    assert not layer.spans("agentwatch.web")


@pytest.mark.parametrize("env,expected", [
    ({}, True),
    ({"AGENTWATCH_SERVER_LAYER": "contrib"}, False),
    ({"AGENTWATCH_SERVER_LAYER": "CONTRIB"}, False),
    ({"AGENTWATCH_ASGI_MESSAGE_SPANS": "true"}, False),
    ({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "httpx, fastapi"}, False),
    ({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "agentwatch_web"}, False),
    ({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "*"}, False),
])
def test_when_agentwatchs_layer_replaces_the_contrib_one(monkeypatch, stable_http, env, expected):
    from agentwatch.distro.settings import reset_settings

    for name in ("AGENTWATCH_SERVER_LAYER", "AGENTWATCH_ASGI_MESSAGE_SPANS", "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_settings()
    try:
        assert choice.wanted() is expected
    finally:
        monkeypatch.undo()
        reset_settings()


@pytest.mark.parametrize("mode", [_StabilityMode.DEFAULT, _StabilityMode.HTTP_DUP])
def test_other_semantic_convention_modes_keep_the_contrib_layer(monkeypatch, mode):
    _OpenTelemetrySemanticConventionStability._initialize()
    mapping = dict(_OpenTelemetrySemanticConventionStability._OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING)
    mapping[_OpenTelemetryStabilitySignalType.HTTP] = mode
    monkeypatch.setattr(_OpenTelemetrySemanticConventionStability, "_OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING", mapping)
    monkeypatch.delenv("AGENTWATCH_SERVER_LAYER", raising=False)
    assert choice.wanted() is False


def test_the_distro_skips_the_contrib_fastapi_instrumentor_only_for_agentwatchs_layer(monkeypatch, stable_http):
    from agentwatch.distro.distro import AgentwatchDistro
    from agentwatch.distro.settings import reset_settings

    loaded = []

    class EntryPoint:
        name = "fastapi"
        value = "opentelemetry.instrumentation.fastapi:FastAPIInstrumentor"

        def load(self):
            class Fake:
                def instrument(self, **kwargs):
                    loaded.append(kwargs)

            return Fake

    monkeypatch.delenv("AGENTWATCH_SERVER_LAYER", raising=False)
    monkeypatch.delenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", raising=False)
    reset_settings()
    AgentwatchDistro().load_instrumentor(EntryPoint())
    assert loaded == []
    monkeypatch.setenv("AGENTWATCH_SERVER_LAYER", "contrib")
    reset_settings()
    try:
        AgentwatchDistro().load_instrumentor(EntryPoint())
    finally:
        monkeypatch.undo()
        reset_settings()
    assert loaded == [{"exclude_spans": ["receive", "send"]}]


def test_a_fault_while_opening_the_span_leaves_no_context_or_open_span_behind(layer, lenient, monkeypatch):
    from opentelemetry import context as otel_context
    from opentelemetry import trace

    app = _variant_app(layer)
    seen = []

    def broken_add(self, amount, attributes=None, context=None):
        raise RuntimeError("injected metrics fault")

    @app.get("/where")
    def where():
        seen.append(trace.get_current_span())
        return {}

    monkeypatch.setattr(type(server.active().active), "add", broken_add)
    before = otel_context.get_current()
    with TestClient(app) as client:
        assert client.get("/where", headers={"traceparent": TRACEPARENT}).status_code == 200
    assert seen == [trace.INVALID_SPAN]  # the request ran outside any half-made span or extracted context
    assert [s.name for s in layer.spans("agentwatch.web")] == ["GET /where"]  # ended, not left open
    assert otel_context.get_current() == before
