"""Who sees the full /health/detailed, and URL credentials of checks (issue 16, item 4).

A real FastAPI app with agentwatch's web layer (the same in-process set-up as tests/test_web_health.py) and a
real HTTP dependency check against a local server that requires basic auth.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import agentwatch.web
from agentwatch.instrumentors.web import AgentwatchWebInstrumentor
from agentwatch.web import checks
from agentwatch.web.builtin_checks import without_credentials

TOKEN = "s3cret-health-token"
HIDDEN = ("pid", "process", "system", "disk", "service", "latency_ms", "error", "started_at", "path")


class _Dependency(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _AuthHandler)
        self.authorizations: list[str | None] = []


class _AuthHandler(BaseHTTPRequestHandler):
    server: _Dependency

    def do_GET(self) -> None:  # noqa: N802
        given = self.headers.get("Authorization")
        self.server.authorizations.append(given)
        expected = "Basic " + base64.b64encode(b"svc:p@ss:w0rd").decode()
        self.send_response(200 if given == expected else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def dependency() -> Iterator[_Dependency]:
    server = _Dependency()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _web_layer(telemetry) -> Iterator[None]:
    for name in list(checks.declared()):
        checks.unregister(name)
    AgentwatchWebInstrumentor().instrument(meter_provider=telemetry.meter_provider)
    yield
    AgentwatchWebInstrumentor().uninstrument()
    for name in list(checks.declared()):
        checks.unregister(name)


def _client(monkeypatch, dependency: _Dependency, **env: str) -> TestClient:
    url = f"http://svc:p%40ss%3Aw0rd@127.0.0.1:{dependency.server_port}/health"
    monkeypatch.setenv("AGENTWATCH_HEALTH_HTTP_URLS", f"billing={url}")
    monkeypatch.setenv("AGENTWATCH_HEALTH_GEMINI", "off")
    for name in ("AGENTWATCH_HEALTH_DETAILS", "AGENTWATCH_HEALTH_TOKEN", "AGENTWATCH_HEALTH_SQLITE_PATH"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    agentwatch.web.reset()
    return TestClient(FastAPI())


def _reduced(body: dict) -> None:
    assert set(body) == {"status", "checks"}, body
    assert all(isinstance(state, str) for state in body["checks"].values()), body
    text = json.dumps(body)
    assert "127.0.0.1" not in text and "p@ss" not in text and "svc:" not in text


def test_by_default_only_token_holders_see_details(monkeypatch, dependency):
    with _client(monkeypatch, dependency, AGENTWATCH_HEALTH_TOKEN=TOKEN) as client:
        anonymous = client.get("/health/detailed")
        _reduced(anonymous.json())
        assert anonymous.json()["checks"]["billing"] == "healthy"  # names and states are still there
        for wrong in ("Bearer nope", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer", "", ("Bearer " + "é" * 5).encode("latin-1")):
            _reduced(client.get("/health/detailed", headers={"Authorization": wrong}).json())
        full = client.get("/health/detailed", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert {"process", "system", "disk", "service"} <= set(full)
        assert full["checks"]["billing"]["status"] == "healthy"
        assert "p@ss" not in json.dumps(full) and "svc:" not in json.dumps(full)


def test_without_a_token_nobody_sees_details(monkeypatch, dependency):
    with _client(monkeypatch, dependency) as client:
        _reduced(client.get("/health/detailed", headers={"Authorization": "Bearer "}).json())


@pytest.mark.parametrize(("mode", "full"), [("always", True), ("never", False)])
def test_always_and_never(monkeypatch, dependency, mode, full):
    with _client(monkeypatch, dependency, AGENTWATCH_HEALTH_DETAILS=mode, AGENTWATCH_HEALTH_TOKEN=TOKEN) as client:
        body = client.get("/health/detailed", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert ("process" in body) is full


def test_a_check_url_with_credentials_authenticates_and_passes(monkeypatch, dependency):
    with _client(monkeypatch, dependency, AGENTWATCH_HEALTH_DETAILS="always") as client:
        body = client.get("/health/ready").json()
        assert body["checks"]["billing"] == "healthy", body
    expected = "Basic " + base64.b64encode(b"svc:p@ss:w0rd").decode()
    assert dependency.authorizations and set(dependency.authorizations) == {expected}


def test_without_credentials():
    assert without_credentials("https://u:p%2Fq@h:8/x?y=1") == ("https://h:8/x?y=1", "Basic " + base64.b64encode(b"u:p/q").decode())
    assert without_credentials("http://h/x") == ("http://h/x", None)
    assert without_credentials("http://token@h/") == ("http://h/", "Basic " + base64.b64encode(b"token:").decode())
