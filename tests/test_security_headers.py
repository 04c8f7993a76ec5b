"""AGENTWATCH_SECURITY_HEADERS: a real FastAPI app through agentwatch's web layer (both server layers),
driven over ASGI by Starlette's TestClient, and one run under uvicorn.

Hostile cases: the app sets a header itself in another case (raw ASGI), streaming responses, HEAD, 304,
error responses, health probes, websockets (untouched), header injection through the settings.
"""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Response, WebSocket
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient

from agentwatch.distro import _diagnostics
from agentwatch.instrumentors.web import AgentwatchWebInstrumentor
from agentwatch.web import config

USUAL = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
HSTS = "max-age=31536000; includeSubDomains"


class RawHeaders:
    """An app middleware that sets a header in raw ASGI, in the case it likes (as some servers do)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/raw"):
            await self.app(scope, receive, send)
            return

        async def raw_send(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"X-Frame-Options", b"SAMEORIGIN"),
                                                  (b"REFERRER-POLICY", b"strict-origin")]}
            await send(message)

        await self.app(scope, receive, raw_send)


def _app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(RawHeaders)

    @app.get("/plain")
    def plain():
        return {"ok": True}

    @app.get("/raw")
    def raw():
        return {"ok": True}

    @app.get("/own-csp")
    def own_csp():
        return Response("{}", media_type="application/json",
                        headers={"Content-Security-Policy": "default-src 'self'", "x-content-type-options": "nosniff"})

    @app.get("/stream")
    def stream():
        return StreamingResponse(iter([b"a", b"b", b"c"]), media_type="text/plain")

    @app.get("/cached")
    def cached():
        return Response(status_code=304)

    @app.get("/crash")
    def crash():
        raise RuntimeError("boom")

    @app.websocket("/ws")
    async def ws(socket: WebSocket):
        await socket.accept()
        await socket.send_text("hi")
        await socket.close()

    return app


@pytest.fixture(params=["agentwatch-layer", "contrib-layer"])
def client_for(request, monkeypatch, telemetry):
    monkeypatch.setenv("AGENTWATCH_HEALTH_GEMINI", "off")
    made = []

    def make(value: str | None, base_url: str = "http://testserver", **env: str) -> TestClient:
        if value is not None:
            monkeypatch.setenv("AGENTWATCH_SECURITY_HEADERS", value)
        for name, setting in env.items():
            monkeypatch.setenv(name, setting)
        config.reset()
        AgentwatchWebInstrumentor().instrument(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider,
            server_layer=request.param == "agentwatch-layer",
        )
        client = TestClient(_app(), base_url=base_url, raise_server_exceptions=False)
        client.__enter__()
        made.append(client)
        return client

    yield make
    for client in made:
        client.__exit__(None, None, None)
    AgentwatchWebInstrumentor().uninstrument()
    config.reset()


def _security(response) -> dict[str, str]:
    names = (*USUAL, "strict-transport-security", "content-security-policy")
    return {name: response.headers[name] for name in names if name in response.headers}


def test_off_by_default(client_for):
    client = client_for(None)
    assert _security(client.get("/plain")) == {}
    assert "x-request-id" in client.get("/plain").headers  # the layer is there


def test_on_adds_the_usual_set_without_hsts_over_plain_http(client_for):
    client = client_for("on")
    assert _security(client.get("/plain")) == USUAL


def test_hsts_only_over_https_unless_always(client_for):
    client = client_for("on", base_url="https://testserver")
    assert _security(client.get("/plain")) == {**USUAL, "strict-transport-security": HSTS}
    client = client_for("hsts-always", AGENTWATCH_SECURITY_HSTS="max-age=60")
    assert _security(client.get("/plain")) == {"strict-transport-security": "max-age=60"}


def test_never_overwrites_what_the_app_set_in_any_case(client_for):
    client = client_for("on", AGENTWATCH_SECURITY_CSP="default-src 'none'")
    response = client.get("/raw")
    assert response.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert response.headers.get_list("referrer-policy") == ["strict-origin"]
    assert response.headers.get_list("x-content-type-options") == ["nosniff"]
    response = client.get("/own-csp")
    assert response.headers.get_list("content-security-policy") == ["default-src 'self'"]
    assert response.headers.get_list("x-content-type-options") == ["nosniff"]  # not doubled
    assert client.get("/plain").headers["content-security-policy"] == "default-src 'none'"


def test_a_list_picks_items(client_for):
    client = client_for("nosniff, csp", AGENTWATCH_SECURITY_CSP="frame-ancestors 'none'")
    assert _security(client.get("/plain")) == {"x-content-type-options": "nosniff",
                                              "content-security-policy": "frame-ancestors 'none'"}


def test_streaming_head_304_errors_and_probes(client_for):
    client = client_for("on")
    stream = client.get("/stream")
    assert stream.text == "abc" and _security(stream) == USUAL
    head = client.head("/plain")
    assert head.status_code in (200, 405) and _security(head) == USUAL
    not_modified = client.get("/cached")
    assert not_modified.status_code == 304 and _security(not_modified) == USUAL
    assert _security(client.get("/health/live")) == USUAL
    assert _security(client.get("/nowhere")) == USUAL  # 404 from the router


def test_error_response_of_the_server_layer(client_for, request):
    client = client_for("on")
    crash = client.get("/crash")
    assert crash.status_code == 500
    if "agentwatch-layer" in request.node.callspec.id:
        assert _security(crash) == USUAL  # the one server layer sits above the error middleware
    # Under the contrib layer agentwatch's layer sits below Starlette's ServerErrorMiddleware, whose
    # 500 never passes it (documented in docs/operations.md).


def test_websocket_untouched(client_for):
    client = client_for("on")
    with client.websocket_connect("/ws") as socket:
        assert socket.receive_text() == "hi"


def test_bad_items_and_injected_values_are_refused(client_for):
    _diagnostics.reset()
    client = client_for("nosniff,bogus", AGENTWATCH_SECURITY_CSP="default-src 'none'\r\nSet-Cookie: a=b")
    response = client.get("/plain")
    assert _security(response) == {"x-content-type-options": "nosniff"}
    assert "set-cookie" not in response.headers
    text = "\n".join(_diagnostics.messages())
    assert "AGENTWATCH_SECURITY_HEADERS item 'bogus'" in text
    assert "AGENTWATCH_SECURITY_CSP=" in text and "line breaks" in text


def test_under_uvicorn(tmp_path):
    """A real server: the headers arrive over a socket, the app's own header wins."""
    import socket
    import subprocess
    import sys
    import textwrap
    import time
    import urllib.request

    from _service import clean_env

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "sec_app.py").write_text(textwrap.dedent("""
        from fastapi import FastAPI, Response
        app = FastAPI()

        @app.get("/")
        def index():
            return Response("ok", headers={"X-Frame-Options": "SAMEORIGIN"})
    """))
    env = clean_env(AGENTWATCH_SECURITY_HEADERS="on", OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none",
                    OTEL_LOGS_EXPORTER="none", AGENTWATCH_HEALTH_GEMINI="off")
    bindir = sys.executable.rsplit("/", 1)[0]
    server = subprocess.Popen([f"{bindir}/opentelemetry-instrument", f"{bindir}/uvicorn", "sec_app:app", "--port", str(port)],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    headers = response.headers
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        assert headers.get_all("X-Frame-Options") == ["SAMEORIGIN"]
        assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "no-referrer"
        assert "Strict-Transport-Security" not in headers
    finally:
        server.terminate()
        server.wait(10)
