"""agentwatch's one server layer (agentwatch/web/server.py) exports what the contrib FastAPI/ASGI layer exported.

The same app runs twice under ``opentelemetry-instrument`` (real uvicorn, real OTLP/HTTP export to the test
receiver): once with ``AGENTWATCH_SERVER_LAYER=contrib`` (opentelemetry-instrumentation-fastapi, as before) and
once with the default (agentwatch's layer). The same requests, hostile ones included, go to both; the decoded
server-side spans (names, kinds, attributes, status, events, parent/child structure) and the HTTP server
metrics (names, units, descriptions, types, bucket boundaries, attribute sets, counts) must be equal once
ids, ports, timestamps, durations and stack frames are normalised.
"""

from __future__ import annotations

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
        env = clean_env(**rx.env(), **FAST_EXPORT, AGENTWATCH_SERVER_LAYER=layer)
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
    assert "t-health" not in own_trees  # excluded, as the probes are by default

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
