"""Request ids, session ids and structured logs in process (fast): id validation, the middleware with
the real FastAPI app through TestClient (response headers, span attributes, baggage, log records in
async/sync endpoints and background tasks, outgoing httpx headers), the JSON and pretty formatters,
and the console take-over (uvicorn's logging config, basicConfig) in a plain subprocess."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import textwrap
from datetime import datetime

import httpx
import pytest
from fastapi import BackgroundTasks, FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import baggage
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider

import agentwatch.web
from agentwatch.distro import context
from agentwatch.distro.logs import JSONFormatter, PrettyFormatter
from agentwatch.instrumentors.web import AgentwatchWebInstrumentor
from agentwatch.web import request_id as rid

HEX32 = re.compile(r"[0-9a-f]{32}")
VALID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


# --- validation -----------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), st.from_regex(VALID, fullmatch=True)))
def test_incoming_id_kept_only_when_well_formed(incoming):
    scope = {"headers": [(b"x-request-id", incoming.encode("utf-8", "surrogatepass"))]}
    got = rid.from_scope(scope)
    if VALID.fullmatch(incoming):
        assert got == incoming
    else:
        assert HEX32.fullmatch(got) and got != incoming
    assert rid.from_scope(scope) == got  # assigned once per request


@pytest.mark.parametrize(
    "bad",
    [b"a" * 10_240, b"abc\ndef", b"abc\r\nSet-Cookie: x=1", "r\u00e9quest-\u00efd".encode(), "\u0438\u0434".encode(),
     b"", b"id with spaces", b"<script>", b"abc%0D%0Aevil", b"a" * 129],
)
def test_malformed_ids_replaced(bad):
    got = rid.from_scope({"headers": [(b"X-Request-ID", bad)]})
    assert HEX32.fullmatch(got)
    assert rid.session_from_scope({"headers": [(b"x-session-id", bad)]}) is None


def test_ids_from_baggage_when_no_header():
    from opentelemetry import context as otel_context

    ctx = baggage.set_baggage(context.REQUEST_ID_KEY, "upstream-7")
    ctx = baggage.set_baggage(context.SESSION_ID_KEY, "s-1", ctx)
    token = otel_context.attach(ctx)
    try:
        assert rid.from_scope({"headers": []}) == "upstream-7"
        assert rid.session_from_scope({"headers": []}) == "s-1"
        assert rid.from_scope({"headers": [(b"x-request-id", b"header-wins")]}) == "header-wins"
    finally:
        otel_context.detach(token)


# --- the middleware in the real FastAPI app ---------------------------------------------------
class Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []
        context.add_filter(self)

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def web(monkeypatch, telemetry):
    monkeypatch.setenv("AGENTWATCH_HEALTH_GEMINI", "off")
    AgentwatchWebInstrumentor().instrument()
    records = Records()
    logger = logging.getLogger("rid.app")
    logger.setLevel(logging.INFO)
    logger.addHandler(records)
    outgoing: list[httpx.Request] = []

    def downstream(request: httpx.Request) -> httpx.Response:
        outgoing.append(request)
        return httpx.Response(200, json={})

    app = FastAPI()

    def background_sync():
        logger.info("background sync")

    async def background_async():
        logger.info("background async")

    @app.get("/async")
    async def handler_async(tasks: BackgroundTasks):
        logger.info("async endpoint")
        async with httpx.AsyncClient(transport=httpx.MockTransport(downstream)) as client:
            await client.get("http://downstream/async")
        tasks.add_task(background_sync)
        tasks.add_task(background_async)
        return {"request_id": agentwatch.web.current_request_id(),
                "baggage": dict(baggage.get_all())}

    @app.get("/sync")
    def handler_sync():
        logger.info("sync endpoint")
        with httpx.Client(transport=httpx.MockTransport(downstream)) as client:
            client.get("http://downstream/sync", headers={"X-Request-ID": "caller-set"})
        return {"request_id": agentwatch.web.current_request_id(), "session_id": context.current_session_id()}

    FastAPIInstrumentor.instrument_app(app, tracer_provider=telemetry.tracer_provider)
    try:
        yield app, telemetry, records, outgoing
    finally:
        logger.removeHandler(records)
        FastAPIInstrumentor.uninstrument_app(app)
        AgentwatchWebInstrumentor().uninstrument()


def test_ids_on_response_span_baggage_logs_and_outgoing_calls(web):
    app, telemetry, records, outgoing = web
    with TestClient(app) as client:
        response = client.get("/async", headers={"X-Request-ID": "req-1.a:b", "X-Session-ID": "chat-42"})
        assert response.status_code == 200
        assert response.headers["x-request-id"] == "req-1.a:b"
        assert response.headers["x-session-id"] == "chat-42"
        body = response.json()
        assert body["request_id"] == "req-1.a:b"
        assert body["baggage"] == {"agentwatch.request.id": "req-1.a:b", "agentwatch.session.id": "chat-42"}

        response = client.get("/sync", headers={"X-Request-ID": "x" * 10_240})
        generated = response.headers["x-request-id"]
        assert HEX32.fullmatch(generated) and response.json() == {"request_id": generated, "session_id": None}
        assert "x-session-id" not in response.headers
    assert context.current_request_id() is None  # nothing leaks into the caller

    server = {s.attributes.get("http.route"): s for s in telemetry.spans() if s.kind.name == "SERVER"}
    assert server["/async"].attributes["agentwatch.request.id"] == "req-1.a:b"
    assert server["/async"].attributes["agentwatch.session.id"] == "chat-42"
    assert server["/sync"].attributes["agentwatch.request.id"] == generated
    assert "agentwatch.session.id" not in server["/sync"].attributes

    ids = {r.getMessage(): (r.__dict__.get(context.REQUEST_ID_KEY), r.__dict__.get(context.SESSION_ID_KEY))
           for r in records.records}
    assert ids == {
        "async endpoint": ("req-1.a:b", "chat-42"),
        "background sync": ("req-1.a:b", "chat-42"),
        "background async": ("req-1.a:b", "chat-42"),
        "sync endpoint": (generated, None),
    }
    assert outgoing[0].headers["x-request-id"] == "req-1.a:b" and outgoing[0].headers["x-session-id"] == "chat-42"
    assert outgoing[1].headers["x-request-id"] == "caller-set"  # a header the caller set wins
    assert "x-session-id" not in outgoing[1].headers


def test_no_header_outside_a_request(web):
    seen = []
    with httpx.Client(transport=httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(204))) as client:
        client.get("http://downstream/")
    assert "x-request-id" not in seen[0].headers


# --- formatters -------------------------------------------------------------------------------
def _record(message="hello %s", args=("world",), level=logging.INFO, exc_info=None, **extra) -> logging.LogRecord:
    record = logging.LogRecord("shop.orders", level, __file__, 10, message, args, exc_info)
    record.__dict__.update(extra)
    return record


def test_json_line_fields_and_scrubbing():
    tokens = context.set_request_context("req-9", "sess-3")
    try:
        record = _record("paid by %s", ("alice@example.com",), order_total=12.5, customer={"email": "bob@example.com"},
                         api_key="k-live-123", items=[1, 2])
        context.FILTER.filter(record)
    finally:
        context.reset_request_context(tokens)
    line = JSONFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["timestamp"].endswith("Z")
    assert datetime.fromisoformat(data["timestamp"].replace("Z", "+00:00")).utcoffset().total_seconds() == 0
    assert data["level"] == "INFO" and data["logger"] == "shop.orders"
    assert data["message"] == "paid by [REDACTED:email]"
    assert data["request_id"] == "req-9" and data["session_id"] == "sess-3"
    assert data["trace_id"] is None and data["span_id"] is None and data["exception"] is None
    assert data["order_total"] == 12.5 and data["items"] == [1, 2]
    assert data["customer"] == {"email": "[REDACTED:email]"}
    assert data["api_key"] == "[REDACTED:api_key]"
    assert "alice@" not in line and "bob@" not in line and "k-live-123" not in line


def test_json_line_exception_and_trace_ids():
    provider = TracerProvider()
    tracer = provider.get_tracer("t")
    try:
        raise RuntimeError("card 4111 1111 1111 1111 declined")
    except RuntimeError:
        exc_info = sys.exc_info()
    with tracer.start_as_current_span("op") as span:
        data = json.loads(JSONFormatter().format(_record(level=logging.ERROR, exc_info=exc_info)))
        ctx = span.get_span_context()
    assert data["trace_id"] == format(ctx.trace_id, "032x") and data["span_id"] == format(ctx.span_id, "016x")
    assert data["request_id"] is None and "session_id" not in data
    assert data["exception"].startswith("Traceback") and "RuntimeError: card [REDACTED:credit_card] declined" in data["exception"]


def test_pretty_line_colors_only_when_asked():
    record = _record(user_email="carol@example.com")
    plain = PrettyFormatter(color=False).format(record)
    assert "\x1b[" not in plain
    assert re.fullmatch(r"\S+Z INFO +shop\.orders  hello world  user_email=\[REDACTED:email\]", plain), plain
    colored = PrettyFormatter(color=True).format(record)
    assert "\x1b[32mINFO" in colored and re.sub(r"\x1b\[[0-9;]*m", "", colored) == plain


# --- the app's console handlers, formatted and scrubbed (a plain subprocess: it changes global logging state)
TAKEOVER = textwrap.dedent(
    '''
    import logging, logging.config, sys
    from agentwatch.distro import logs
    logs.configure_output(sys.argv[1], scrub_console=sys.argv[2] == "scrub")
    logging.basicConfig(level=logging.INFO, format="PLAIN %(message)s")          # the app's own config
    from uvicorn.config import LOGGING_CONFIG
    logging.config.dictConfig(LOGGING_CONFIG)                                     # what uvicorn.run does
    logging.getLogger("uvicorn.error").info("Application startup complete.")
    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/", "1.1", 200)
    logging.getLogger("app").warning("from the app for bob@example.com")
    logging.getLogger("app").info("app info")
    logging.getLogger("app").debug("app debug")
    from agentwatch.distro import _diagnostics
    _diagnostics.warn_once("t", "agentwatch diagnostics stay on stderr")
    '''
)


def _run_takeover(fmt: str, scrub: str = "scrub") -> tuple[str, str]:
    done = subprocess.run([sys.executable, "-c", TAKEOVER, fmt, scrub], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "NO_COLOR": ""})
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_json_formats_the_apps_own_handlers_once_per_record():
    out, err = _run_takeover("json")
    # Each handler keeps its stream (uvicorn's access log on stdout, the rest on stderr) and its level:
    # the app's basicConfig(level=INFO) took effect, so its INFO line is there and its DEBUG line is not.
    assert [(d["logger"], d["message"]) for d in _json_lines(out)] == [
        ("uvicorn.access", '127.0.0.1:5000 - "GET / HTTP/1.1" 200'),
    ]
    assert [(d["logger"], d["message"]) for d in _json_lines(err)] == [
        ("uvicorn.error", "Application startup complete."),
        ("app", "from the app for [REDACTED:email]"),
        ("app", "app info"),
    ]
    assert "PLAIN" not in out + err and "INFO:" not in err and "bob@example.com" not in out + err
    assert "agentwatch diagnostics stay on stderr" in err


def test_off_keeps_the_apps_format_and_scrubs_its_console():
    out, err = _run_takeover("off")
    assert out == 'INFO:     127.0.0.1:5000 - "GET / HTTP/1.1" 200 OK\n'  # uvicorn's own access handler
    assert "PLAIN from the app for [REDACTED:email]" in err and "PLAIN app info" in err
    assert "Application startup complete." in err and "{" not in err and "bob@example.com" not in err
    assert "app debug" not in err


def test_off_without_console_scrubbing_leaves_logging_alone():
    out, err = _run_takeover("off", "raw")
    assert out == 'INFO:     127.0.0.1:5000 - "GET / HTTP/1.1" 200 OK\n'
    assert "PLAIN from the app for bob@example.com" in err and "PLAIN app info" in err


