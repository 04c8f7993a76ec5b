"""Request ids and structured logs end to end: a FastAPI app under ``opentelemetry-instrument`` with the
real uvicorn (its own logging config) in a subprocess, exporting to a real OTLP receiver, calling a real
local HTTP server with httpx. Each request -- with a valid ``X-Request-ID``, without one, and with
malicious ones (10 kB, newlines, unicode, header injection) -- must show the same id in the response
header, on the server span, on every stdout JSON line and exported OTel log record it caused (async and
sync endpoints, background tasks, uvicorn's access line) and on the downstream call (header and
baggage). ``pretty`` output is colored on a TTY (a pty) and plain on a pipe."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest

from _service import BIN, FAST_EXPORT, clean_env, start_service
from otlp_receiver import OTLPReceiver

pytestmark = pytest.mark.slow
HEX32 = re.compile(r"[0-9a-f]{32}")

APP = '''
import asyncio, logging, os, sys
import httpx, uvicorn
from fastapi import BackgroundTasks, FastAPI

log = logging.getLogger("app")
log.setLevel(logging.INFO)
DOWN = os.environ["DOWNSTREAM_URL"]
app = FastAPI()

@app.get("/")
async def index():
    return {"ok": True}

def background_sync(tag):
    log.info("background sync %s", tag)

async def background_async(tag):
    await asyncio.sleep(0.01)
    log.info("background async %s", tag, extra={"order_total": 12.5, "customer_email": "alice@example.com"})

@app.get("/async/{tag}")
async def handler_async(tag: str, tasks: BackgroundTasks):
    log.info("async endpoint %s", tag)
    async with httpx.AsyncClient() as client:
        await client.get(f"{DOWN}/async/{tag}")
    tasks.add_task(background_sync, tag)
    tasks.add_task(background_async, tag)
    return {"ok": True}

@app.get("/sync/{tag}")
def handler_sync(tag: str):
    log.info("sync endpoint %s card 4111 1111 1111 1111", tag)
    with httpx.Client() as client:
        client.get(f"{DOWN}/sync/{tag}")
    return {"ok": True}

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[sys.argv.index("--port") + 1]))
'''


class Downstream:
    """A local HTTP server that records the headers of each request by path."""

    def __init__(self):
        seen = self.seen = {}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                seen[self.path] = {k.lower(): v for k, v in self.headers.items()}
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def raw_get(port: int, path: str, header_lines: bytes) -> tuple[int, dict[str, str]]:
    """A GET with exactly these header bytes (urllib refuses the malicious ones)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + header_lines + b"\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return status, headers


CASES = {
    # tag: (header bytes sent, expected id or None for "a fresh one")
    "valid": (b"X-Request-ID: gw-2024.11:abc_DEF-9\r\nX-Session-ID: chat-42\r\n", "gw-2024.11:abc_DEF-9"),
    "absent": (b"", None),
    "huge": (b"X-Request-ID: " + b"a" * 10_240 + b"\r\n", None),
    "folded": (b"X-Request-ID: abc\r\n injected-line\r\n", None),
    "unicode": ("X-Request-ID: r\u00e9quest-\u0438\u0434-\U0001F600\r\n".encode(), None),
    "encoded-crlf": (b"X-Request-ID: abc%0D%0ASet-Cookie:%20x=1\r\n", None),
}


def test_request_ids_everywhere_json_logs_and_otel(tmp_path):
    downstream = Downstream()
    app = tmp_path / "rid_app.py"
    app.write_text(APP)
    with OTLPReceiver(protocol="http") as rx:
        env = clean_env(
            **rx.env(),
            DOWNSTREAM_URL=downstream.url,
            AGENTWATCH_LOG_FORMAT="json",
            **FAST_EXPORT,
            OTEL_METRICS_EXPORTER="none",
            OTEL_SERVICE_NAME="rid-test",
            AGENTWATCH_HEALTH_GEMINI="off",
            AGENTWATCH_ENDPOINT_CHECK="false",
        )
        service = start_service(tmp_path, env, command=["python", str(app), "--port", "{port}"])
        ids: dict[str, str] = {}
        try:
            for tag, (header_lines, expected) in CASES.items():
                for kind in ("async", "sync"):
                    status, headers = raw_get(service.port, f"/{kind}/{tag}", header_lines)
                    assert status == 200, (tag, kind, status)
                    got = headers["x-request-id"]
                    if expected is not None:
                        assert got == expected
                    else:
                        assert HEX32.fullmatch(got), (tag, got)
                    assert ("x-session-id" in headers) == (tag == "valid")
                    ids[f"{kind}/{tag}"] = got
            assert len(set(ids.values())) == len(ids) - 1  # the valid id was sent twice; every other is fresh
            assert rx.wait_for(lambda r: sum(1 for x in r.logs() if str(x["body"]).startswith("background async")) == len(CASES), 15)
            assert rx.wait_for(lambda r: len([s for s in r.spans() if s["kind"] == "SERVER"]) >= 2 * len(CASES), 15)
        finally:
            service.terminate()
            downstream.close()

        # The app's and uvicorn's own console handlers print JSON, each on its own stream (uvicorn's access
        # log on stdout, its server log on stderr); agentwatch's diagnostics stay plain lines on stderr.
        printed = service.stdout_path.read_text().splitlines() + service.stderr().splitlines()
        lines = [json.loads(line) for line in printed if line.startswith("{")]
        assert all(not line.strip() or line.startswith(("{", "agentwatch")) for line in service.stdout_path.read_text().splitlines())
        spans = rx.spans()
        otel_logs = rx.logs()

    assert "Traceback" not in service.stderr(), service.stderr()
    # no line printed twice (uvicorn's own handlers formatted, not doubled)
    assert len(lines) == len({json.dumps(line, sort_keys=True) for line in lines})
    # every console line is a JSON object with the documented fields
    for line in lines:
        assert {"timestamp", "level", "logger", "message", "trace_id", "span_id", "request_id", "exception"} <= set(line)
    assert any(line["logger"] == "uvicorn.error" and line["message"] == "Application startup complete." for line in lines)

    for key, request_id in ids.items():
        kind, tag = key.split("/")
        expected_messages = (
            {f"async endpoint {tag}", f"background sync {tag}", f"background async {tag}"}
            if kind == "async"
            else {f"sync endpoint {tag} card [REDACTED:credit_card]"}
        )
        mine = [line for line in lines if line["request_id"] == request_id]
        app_lines = [line for line in lines if line["logger"] == "app" and line["message"] in expected_messages]
        # each app line is printed exactly once, with this request's id (and trace)
        assert sorted(line["message"] for line in app_lines) == sorted(expected_messages), key
        assert {line["request_id"] for line in app_lines} == {request_id}, key
        assert len({line["trace_id"] for line in app_lines}) == 1 and app_lines[0]["trace_id"]
        access = [line for line in lines if line["logger"] == "uvicorn.access" and f"/{kind}/{tag} " in line["message"]]
        assert len(access) == 1 and access[0]["request_id"] == request_id, (key, access)
        # its app lines + its access line; the valid id was sent to both endpoints: 3 + 1 + 1 + 1
        assert len(mine) == (6 if tag == "valid" else len(expected_messages) + 1), mine
        assert all(("session_id" in line) == (tag == "valid") for line in mine)

        # the server span
        server = [s for s in spans if s["kind"] == "SERVER" and s["attributes"].get("url.path") == f"/{kind}/{tag}"]
        assert len(server) == 1 and server[0]["attributes"]["agentwatch.request.id"] == request_id
        assert server[0]["trace_id"] == app_lines[0]["trace_id"]
        if tag == "valid":
            assert server[0]["attributes"]["agentwatch.session.id"] == "chat-42"

        # the downstream call: header and W3C baggage
        sent = downstream.seen[f"/{kind}/{tag}"]
        assert sent["x-request-id"] == request_id
        entries = dict(item.strip().split("=", 1) for item in sent["baggage"].split(","))
        assert unquote(entries["agentwatch.request.id"]) == request_id
        if tag == "valid":
            assert sent["x-session-id"] == "chat-42" and unquote(entries["agentwatch.session.id"]) == "chat-42"
        else:
            assert "x-session-id" not in sent and "agentwatch.session.id" not in entries

        # the same records through the OTel pipeline, with the id as an attribute
        exported = [r for r in otel_logs if r["scope"] == "app" and r["body"] in expected_messages]
        assert sorted(r["body"] for r in exported) == sorted(expected_messages), key
        assert {r["attributes"]["agentwatch.request.id"] for r in exported} == {request_id}
        exported_access = [r for r in otel_logs if r["scope"] == "uvicorn.access" and f"/{kind}/{tag} " in str(r["body"])]
        assert len(exported_access) == 1 and exported_access[0]["attributes"]["agentwatch.request.id"] == request_id

    # extras: the same fields in JSON and as OTel attributes, scrubbed in both
    background = [line for line in lines if line["message"] == "background async valid"][0]
    assert background["order_total"] == 12.5 and background["customer_email"] == "[REDACTED:email]"
    record = [r for r in otel_logs if r["body"] == "background async valid"][0]
    assert record["attributes"]["order_total"] == 12.5 and record["attributes"]["customer_email"] == "[REDACTED:email]"
    assert record["attributes"]["agentwatch.session.id"] == "chat-42"
    everything = service.stdout_path.read_text() + json.dumps(otel_logs)
    assert "alice@example.com" not in everything and "4111 1111" not in everything
    for bad in ("injected-line", "Set-Cookie", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"):
        assert bad not in json.dumps([line["request_id"] for line in lines])


SCRIPT = '''
import logging
logging.basicConfig(level=logging.INFO, format="PLAIN %(levelname)s %(message)s")
logging.getLogger("app").warning("disk almost full for bob@example.com")
'''


def _run(tmp_path: Path, log_format: str, tty: bool, **extra: str) -> str:
    script = tmp_path / "log_script.py"
    script.write_text(SCRIPT)
    env = clean_env(
        OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
        AGENTWATCH_ENDPOINT_CHECK="false", TERM="xterm",
        **({"AGENTWATCH_LOG_FORMAT": log_format} if log_format else {}), **extra,
    )
    env.pop("NO_COLOR", None)
    command = [str(BIN / "opentelemetry-instrument"), "python", str(script)]
    if not tty:
        done = subprocess.run(command, env=env, capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.decode() + done.stderr.decode()
    leader, follower = pty.openpty()
    process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower)
    os.close(follower)
    output = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the pty
                break
            if not chunk:
                break
            output += chunk
        elif process.poll() is not None:
            break
    process.wait(30)
    os.close(leader)
    assert process.returncode == 0, output
    return output.decode()


def test_pretty_colored_only_on_a_tty_and_off_keeps_the_apps_format(tmp_path):
    on_tty = _run(tmp_path, "pretty", tty=True)
    assert "\x1b[33mWARNING" in on_tty and "app" in on_tty and "disk almost full for [REDACTED:email]" in on_tty
    assert "PLAIN" not in on_tty and "bob@example.com" not in on_tty

    on_pipe = _run(tmp_path, "pretty", tty=False)
    assert "\x1b[" not in on_pipe
    assert re.search(r"^\S+Z WARNING +app  disk almost full for \[REDACTED:email\]$", on_pipe, re.M), on_pipe
    assert "PLAIN" not in on_pipe

    as_json = _run(tmp_path, "json", tty=True)  # JSON is never colored
    assert "\x1b[" not in as_json
    assert json.loads(as_json.strip().splitlines()[-1])["message"] == "disk almost full for [REDACTED:email]"

    scrubbed = _run(tmp_path, "", tty=False)  # AGENTWATCH_LOG_FORMAT unset: off, the app's format, scrubbed
    assert "PLAIN WARNING disk almost full for [REDACTED:email]" in scrubbed and "bob@example.com" not in scrubbed
    untouched = _run(tmp_path, "", tty=False, AGENTWATCH_LOG_SCRUB_CONSOLE="false")
    assert "PLAIN WARNING disk almost full for bob@example.com" in untouched
