"""Run by tests/test_client_layer.py in a fresh process: real requests through httpx or httpx2 to a local
server, instrumented by the contrib instrumentor or by agentwatch's client layer, and print what was
recorded (spans, metric points, the trace headers the server received) as one JSON document.

    python _client_layer_run.py {httpx|httpx2} {contrib|agentwatch|both|client}
"""

from __future__ import annotations

import asyncio
import http.server
import importlib
import json
import socket
import socketserver
import sys
import threading

library, layer = sys.argv[1], sys.argv[2]

from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

received: list[dict[str, str]] = []


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        received.append({k.lower(): v for k, v in self.headers.items() if k.lower() in ("traceparent", "tracestate")})
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        status = 200
        if "/missing" in self.path:
            status = 404
        elif "/boom" in self.path:
            status = 500
        elif "/moved" in self.path:
            status = 302
        body = b'{"ok": true}'
        self.send_response(status)
        if status == 302:
            self.send_header("location", "/ok")
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_FOO = do_get = _answer

    def log_message(self, *args: object) -> None:
        pass


server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
port = server.server_address[1]
threading.Thread(target=server.serve_forever, daemon=True).start()
with socket.socket() as probe:  # a port nothing listens on: a connection error
    probe.bind(("127.0.0.1", 0))
    closed = probe.getsockname()[1]

base = f"http://127.0.0.1:{port}"
CASES = [
    ("GET", f"{base}/ok"),
    ("POST", f"{base}/missing?q=1"),
    ("DELETE", f"{base}/boom"),
    ("get", f"{base}/ok"),  # method_original
    ("FOO", f"{base}/ok"),  # an unknown method: _OTHER, span name HTTP
    ("PATCH", f"{base}/moved"),
    ("GET", f"http://user:pa%40ss@127.0.0.1:{port}/ok?sig=abc&X-Goog-Signature=s&keep=1"),
    ("GET", f"{base}/caf\u00e9/\u65e5\u672c?name=J\u00fcrgen&x=%2F"),
    ("GET", f"http://localhost:{port}/ok"),
    ("GET", f"{base}/ok?token=t0k&q=" + "%22%3Cscript%3E\u00e9" * 2000 + "&password=x"),  # 20 KB, hostile
    ("GET", f"http://127.0.0.1:{closed}/refused"),
]

exporter = InMemorySpanExporter()
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
reader = InMemoryMetricReader()
meter_provider = MeterProvider(metric_readers=[reader])
providers = {"tracer_provider": tracer_provider, "meter_provider": meter_provider}

module = importlib.import_module(library)
contrib_mod = importlib.import_module("opentelemetry.instrumentation.httpx")
contrib_cls = contrib_mod.HTTPXClientInstrumentor if library == "httpx" else contrib_mod.HTTPX2ClientInstrumentor
from agentwatch.web import client as layer_mod  # noqa: E402

ours_cls = layer_mod.AgentwatchHTTPXClientInstrumentor if library == "httpx" else layer_mod.AgentwatchHTTPX2ClientInstrumentor

if layer == "contrib":
    contrib_cls().instrument(**providers)
elif layer == "agentwatch":
    ours_cls().instrument(**providers)
elif layer == "both":  # the app instruments with the contrib instrumentor too: one span per request
    ours_cls().instrument(**providers)
    contrib_cls().instrument(**providers)

if layer == "faulty":  # agentwatch's layer with a propagator that raises and a request it cannot read
    from opentelemetry import propagate
    from opentelemetry.propagators.textmap import TextMapPropagator

    class Broken(TextMapPropagator):
        def inject(self, carrier, context=None, setter=None):
            raise RuntimeError("propagator broke for https://user:pw@example.com")

        def extract(self, carrier, context=None, getter=None):
            return context

        @property
        def fields(self):
            return set()

    propagate.set_global_textmap(Broken())
    real_start = layer_mod._Layer.start

    def start(self, request):
        if "/ok" not in str(request.url):
            raise ValueError("cannot read this request")
        return real_start(self, request)

    layer_mod._Layer.start = start
    ours_cls().instrument(**providers)

clients = [module.Client(), module.AsyncClient()]
if layer == "client":  # the app instruments one client with the contrib instrumentor, the distro the rest
    ours_cls().instrument(**providers)
    for c in clients:
        contrib_cls.instrument_client(c, **providers)


async def run() -> list[str]:
    outcomes = []
    for method, url in CASES:
        for c in clients:
            try:
                if isinstance(c, module.AsyncClient):
                    response = await c.request(method, url, content=b"{}" if method == "POST" else None)
                else:
                    response = c.request(method, url, content=b"{}" if method == "POST" else None)
                outcomes.append(str(response.status_code))
            except Exception as error:  # noqa: BLE001 - a connection error is a case
                outcomes.append(type(error).__name__)
    return outcomes


outcomes = asyncio.run(run())
spans = []
for span in exporter.get_finished_spans():
    spans.append({
        "scope": span.instrumentation_scope.name,
        "schema_url": span.instrumentation_scope.schema_url,
        "name": span.name,
        "kind": span.kind.name,
        "attributes": [[k, v] for k, v in span.attributes.items()],
        "status": [span.status.status_code.name, span.status.description],
        "events": [[e.name, {k: v for k, v in e.attributes.items() if k != "exception.stacktrace"}] for e in span.events],
        "trace_id": format(span.context.trace_id, "032x"),
        "span_id": format(span.context.span_id, "016x"),
    })
points = []
data = reader.get_metrics_data()
for rm in data.resource_metrics if data else []:
    for sm in rm.scope_metrics:
        for metric in sm.metrics:
            for point in metric.data.data_points:
                points.append({
                    "scope": sm.scope.name, "name": metric.name, "unit": metric.unit,
                    "description": metric.description, "attributes": sorted(point.attributes.items()),
                    "count": point.count, "bounds": list(point.explicit_bounds),
                })
print(json.dumps({"ports": [port, closed], "outcomes": outcomes, "spans": spans, "points": points, "received": received}))
