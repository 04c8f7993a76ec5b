"""The Sentry recipes of docs/operations.md ("Error tracking with Sentry"), end to end.

A real FastAPI app under ``opentelemetry-instrument uvicorn`` (agentwatch's distro) with an unhandled
exception and a logged one:

- without any Sentry SDK, only the OTLP environment variables of the recipe: the error spans (exception
  event) and the error log record (exception attributes) reach the local OTLP receiver standing in for
  Sentry's OTLP endpoint, each request carrying the ``x-sentry-auth`` header from
  ``OTEL_EXPORTER_OTLP_HEADERS``;
- with the real sentry-sdk installed and initialised (its own integrations with tracing on, or its
  ``OTLPIntegration`` as the recipe sets it), its DSN pointing at a local HTTP server that records the
  envelopes: every request is one server span in the OTLP export and at most one transaction in Sentry,
  each exception one Sentry event; with ``OTLPIntegration`` the Sentry event carries the OTel trace id.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from _service import clean_env, free_port
from otlp_receiver import OTLPReceiver

pytestmark = pytest.mark.slow

SENTRY_KEY = "0123456789abcdef0123456789abcdef"

APP = '''
import logging, os
import sentry_sdk
from fastapi import FastAPI

mode = os.environ["SENTRY_MODE"]
if mode == "sdk":  # sentry-sdk as most users have it: its own integrations, tracing on
    sentry_sdk.init(dsn=os.environ["SENTRY_DSN"], traces_sample_rate=1.0)
elif mode == "otlp":  # the recipe: errors from sentry-sdk, traces only through agentwatch's OTLP export
    from sentry_sdk.integrations.otlp import OTLPIntegration
    sentry_sdk.init(dsn=os.environ["SENTRY_DSN"],
                    integrations=[OTLPIntegration(setup_otlp_traces_exporter=False, setup_propagator=False,
                                                   capture_exceptions=True)])

elif mode == "otel-integration":  # the older, deprecated OTel integration (spans made by OpenTelemetry)
    from sentry_sdk.integrations.opentelemetry.integration import OpenTelemetryIntegration
    sentry_sdk.init(dsn=os.environ["SENTRY_DSN"], traces_sample_rate=1.0, instrumenter="otel",
                    integrations=[OpenTelemetryIntegration()])
    from opentelemetry import trace
    from agentwatch.distro import tracing  # agentwatch's provider; the SDK's own below opentelemetry-sdk 1.45
    expected = "agentwatch" if tracing.SUPPORTED else "opentelemetry.sdk"
    assert type(trace.get_tracer_provider()).__module__.startswith(expected), trace.get_tracer_provider()

app = FastAPI()
log = logging.getLogger("shop")

@app.get("/ok")
def ok():
    return {"ok": True}

@app.get("/crash")
def crash():
    raise RuntimeError("checkout exploded")

@app.get("/logged")
def logged():
    try:
        1 / 0
    except ZeroDivisionError:
        log.exception("payment failed")
    return {"logged": True}
'''


class Envelopes(ThreadingHTTPServer):
    """A stand-in for Sentry's ingest: records every envelope item (type, headers, payload)."""

    daemon_threads = True

    def __init__(self) -> None:
        self.items: list[tuple[str, dict]] = []
        self.paths: list[str] = []
        self.lock = threading.Lock()

        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding", "").lower() == "gzip":
                    body = gzip.decompress(body)
                with server.lock:
                    server.paths.append(self.path)
                    lines = body.split(b"\n")
                    index = 1
                    while index + 1 < len(lines) + 1 and index < len(lines):
                        header = json.loads(lines[index] or b"{}")
                        payload = lines[index + 1] if index + 1 < len(lines) else b""
                        try:
                            data = json.loads(payload) if payload else {}
                        except ValueError:
                            data = {}
                        server.items.append((header.get("type", ""), data))
                        index += 2
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format, *args):  # noqa: A002
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def of(self, kind: str) -> list[dict]:
        with self.lock:
            return [data for item_type, data in self.items if item_type == kind]


def _serve(tmp_path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    (tmp_path / "shop_app.py").write_text(textwrap.dedent(APP))
    port = free_port()
    bindir = sys.executable.rsplit("/", 1)[0]
    server = subprocess.Popen(
        [f"{bindir}/opentelemetry-instrument", f"{bindir}/uvicorn", "shop_app:app", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=(tmp_path / "server.log").open("wb"), stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 40
    while True:
        try:
            with urllib.request.urlopen(base + "/ok", timeout=2):
                return server, base
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise AssertionError((tmp_path / "server.log").read_text(errors="replace")[-3000:]) from None
            time.sleep(0.2)


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _stop(server: subprocess.Popen) -> None:
    server.terminate()  # SIGTERM: agentwatch flushes its exporters, sentry-sdk its transport
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(5)


def _env(rx: OTLPReceiver, **extra: str) -> dict[str, str]:
    # The recipe, with the local receiver standing in for https://o<org>.ingest.sentry.io/api/<project>/integration/otlp
    return clean_env(
        OTEL_SERVICE_NAME="shop",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{rx.endpoint}/v1/traces",
        OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=f"{rx.endpoint}/v1/logs",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_HEADERS=f"x-sentry-auth=sentry sentry_key={SENTRY_KEY}",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_LOGS_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="none",
        OTEL_BSP_SCHEDULE_DELAY="200",
        OTEL_BLRP_SCHEDULE_DELAY="200",
        AGENTWATCH_HEALTH_GEMINI="off",
        **extra,
    )


def _server_spans(rx: OTLPReceiver) -> list[dict]:
    return [span for span in rx.spans() if span["kind"] == "SERVER"]


def _traffic(base: str) -> None:
    assert _get(base + "/ok") == 200
    assert _get(base + "/crash") == 500
    assert _get(base + "/logged") == 200


def test_errors_reach_sentrys_otlp_endpoint_without_a_second_sdk(tmp_path):
    with OTLPReceiver(protocol="http") as rx:
        server, base = _serve(tmp_path, _env(rx, SENTRY_MODE="none"))
        try:
            _traffic(base)
            assert rx.wait_for(lambda r: any(s["name"] == "GET /crash" for s in _server_spans(r))
                               and any(log["attributes"].get("exception.type") == "ZeroDivisionError" for log in r.logs()),
                               timeout=20)
        finally:
            _stop(server)
        (crash,) = [s for s in _server_spans(rx) if s["name"] == "GET /crash"]
        assert crash["status"] == "ERROR"
        (event,) = [e for e in crash["events"] if e["name"] == "exception"]
        assert event["attributes"]["exception.type"] == "RuntimeError"
        assert "checkout exploded" in event["attributes"]["exception.message"]
        (record,) = [log for log in rx.logs() if log["attributes"].get("exception.type") == "ZeroDivisionError"]
        assert record["body"] == "payment failed" and record["severity_text"] == "ERROR"
        assert record["trace_id"] == [s for s in _server_spans(rx) if s["name"] == "GET /logged"][0]["trace_id"]
        for signal in ("traces", "logs"):
            headers = rx.request_headers(signal)
            assert headers and all(h.get("x-sentry-auth") == f"sentry sentry_key={SENTRY_KEY}" for h in headers), signal
        assert not rx.metrics()  # Sentry's OTLP endpoint takes traces and logs: metrics stay home


@pytest.mark.parametrize("mode", ["sdk", "otlp", "otel-integration"])
def test_sentry_sdk_alongside_no_duplicate_spans(tmp_path, mode):
    sentry = Envelopes()
    dsn = f"http://{SENTRY_KEY}@127.0.0.1:{sentry.server_address[1]}/42"
    try:
        with OTLPReceiver(protocol="http") as rx:
            server, base = _serve(tmp_path, _env(rx, SENTRY_MODE=mode, SENTRY_DSN=dsn))
            try:
                _traffic(base)
                assert rx.wait_for(lambda r: len(_server_spans(r)) >= 4, timeout=20)  # /ok twice (readiness), crash, logged
                time.sleep(1.0)
            finally:
                _stop(server)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and len(sentry.of("event")) < 2:
                time.sleep(0.2)
            spans = _server_spans(rx)
            by_route: dict[str, list[dict]] = {}
            for span in spans:
                by_route.setdefault(span["name"], []).append(span)
            # One OTel server span per request, each its own trace: nothing of Sentry's doubled them.
            assert len(by_route["GET /crash"]) == 1 and len(by_route["GET /logged"]) == 1, sorted(by_route)
            assert len({s["trace_id"] for s in spans}) == len(spans)
            assert all(s["scope"] != "sentry" for s in rx.spans())
            # Sentry: one event per exception, at most one transaction per request, never an OTLP request.
            events = sentry.of("event")
            types = sorted(e["exception"]["values"][-1]["type"] for e in events if e.get("exception"))
            assert types == ["RuntimeError", "ZeroDivisionError"], [e.get("message") or e.get("logentry") for e in events]
            transactions = [t.get("transaction") for t in sentry.of("transaction")]
            assert len(transactions) == len(set(transactions)) or mode == "sdk" and transactions.count("/ok") <= 2
            assert not any("otlp" in path for path in sentry.paths)
            crash_event = next(e for e in events if e["exception"]["values"][-1]["type"] == "RuntimeError")
            if mode == "otel-integration":
                # Its tracer provider is refused (agentwatch's is set): no transaction, no span of Sentry's.
                assert transactions == []
            elif mode == "otlp":
                # Sentry links the issue to the trace agentwatch exported (Sentry's OTLP ingest has it).
                assert crash_event["contexts"]["trace"]["trace_id"] == by_route["GET /crash"][0]["trace_id"]
                assert transactions == []  # traces reach Sentry only through OTLP: nothing twice
            else:
                assert sorted(set(transactions)) == ["/crash", "/logged", "/ok"], transactions
    finally:
        sentry.shutdown()
