"""CPU per request of the server layers of a FastAPI app, in one process: agentwatch's one layer against the
contrib FastAPI/ASGI layer plus agentwatch's request-id layer (and FastAPI's native check), as before.

    .venv/bin/python benchmarks/server_layer.py                  # ~30 s
    .venv/bin/python benchmarks/server_layer.py --requests 2000 --rounds 9

Three apps with the same routes, driven by a raw ASGI driver (no server, no sockets: what is left is the
app's stack and the layers) in the same process, on the same SDK providers (spans to an exporter that
drops them, metrics to an in-memory reader that is never read, so export costs are left out):

- ``bare``: FastAPI without any telemetry layer (its native telemetry off, the stack built before
  agentwatch is instrumented): the app's own cost;
- ``contrib``: what ``opentelemetry-instrument`` gave before: the contrib instrumentation
  (``FastAPIInstrumentor.instrument_app``, ``exclude_spans=["receive", "send"]`` as the distro passes it)
  around agentwatch's request-id layer, FastAPI's native layer checking per request that it should step aside;
- ``agentwatch``: agentwatch's server layer (agentwatch/web/server.py).

Each round runs ``--requests`` requests per app, apps interleaved (order rotated per round); the figure
is CPU time (``time.process_time``) per request, best round and median, and the layers' cost (app minus
bare). A GET with a path parameter and a query, as a browser or an agent client sends it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _providers() -> tuple[Any, Any]:
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans):  # noqa: ANN001
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(Drop()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    return tracer_provider, meter_provider


def _app(**kwargs: Any) -> Any:
    from fastapi import FastAPI

    app = FastAPI(**kwargs)

    @app.get("/")
    async def index() -> dict:
        return {"ok": True}

    @app.get("/items/{item_id}")
    async def item(item_id: int, q: str | None = None) -> dict:
        return {"item": item_id, "q": q}

    @app.post("/chat")
    async def chat(payload: dict) -> dict:
        return payload

    @app.get("/documents/{doc_id}")
    async def document(doc_id: str) -> dict:
        return {"doc": doc_id}

    return app


def build_apps() -> dict[str, Any]:
    import os

    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http,database")
    os.environ.setdefault("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "/health(/live|/ready|/startup|/detailed)?/?$")
    tracer_provider, meter_provider = _providers()
    bare = _app(telemetry={"tracing": False, "metrics": False, "logs": False})
    bare.middleware_stack = bare.build_middleware_stack()  # before agentwatch wraps the class's builder

    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    from agentwatch.instrumentors.web import AgentwatchWebInstrumentor

    AgentwatchWebInstrumentor().instrument(server_layer=True, tracer_provider=tracer_provider,
                                           meter_provider=meter_provider)
    contrib = _app()
    FastAPIInstrumentor.instrument_app(contrib, tracer_provider=tracer_provider, meter_provider=meter_provider,
                                       exclude_spans=["receive", "send"])
    own = _app()
    return {"bare": bare, "contrib": contrib, "agentwatch": own}


SCOPE = {
    "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1", "method": "GET",
    "scheme": "http", "path": "/items/42", "raw_path": b"/items/42", "query_string": b"q=hello", "root_path": "",
    "headers": [
        (b"host", b"127.0.0.1:8000"), (b"user-agent", b"python-httpx/0.28.1"), (b"accept", b"*/*"),
        (b"accept-encoding", b"gzip, deflate"), (b"connection", b"keep-alive"),
    ],
    "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
}


async def _drive(app: Any, n: int) -> None:
    request = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> dict:
        return request

    async def send(message: dict) -> None:
        pass

    for _ in range(n):
        scope = dict(SCOPE)
        scope["headers"] = list(SCOPE["headers"])
        scope["state"] = {}
        await app(scope, receive, send)


def measure(apps: dict[str, Any], requests: int, rounds: int) -> dict[str, list[float]]:
    loop = asyncio.new_event_loop()
    names = list(apps)
    for name in names:  # warm-up: stacks built, caches filled
        loop.run_until_complete(_drive(apps[name], 200))
    results: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        order = names[index % len(names):] + names[:index % len(names)]
        for name in order:
            gc.collect()
            started = time.process_time()
            loop.run_until_complete(_drive(apps[name], requests))
            results[name].append((time.process_time() - started) / requests * 1e6)
    loop.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    apps = build_apps()
    results = measure(apps, args.requests, args.rounds)
    best = {name: min(values) for name, values in results.items()}
    median = {name: statistics.median(values) for name, values in results.items()}
    print(f"CPU µs per request, {args.rounds} rounds x {args.requests} requests per app, interleaved "
          f"(Python {platform.python_version()})\n")
    print("| app | best | median | layers (best - bare) |")
    print("|---|---:|---:|---:|")
    for name in results:
        print(f"| {name} | {best[name]:.1f} | {median[name]:.1f} | {best[name] - best['bare']:.1f} |")
    layer_old, layer_new = best["contrib"] - best["bare"], best["agentwatch"] - best["bare"]
    print(f"\nagentwatch / contrib, whole request: {best['agentwatch'] / best['contrib']:.2f}; "
          f"layers only: {layer_new / layer_old:.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"requests": args.requests, "rounds": args.rounds, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
