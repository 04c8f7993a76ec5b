"""A FastAPI app mounted in another (``app.mount("/sub", FastAPI())``): both get agentwatch's layer
(the instrumentor wraps every app's ``build_middleware_stack``), but a request is set up once, by the
enclosing app's layer -- one request id, one pass of the per-request steps -- and ``/sub/health/*``
is the mounted app's own business. The enclosing app answers as it does without a mount."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

import agentwatch.web
from agentwatch.instrumentors.web import AgentwatchWebInstrumentor
from agentwatch.web import current_request_id, middleware

HEALTH = ["/health", "/health/live", "/health/ready", "/health/startup", "/health/detailed"]


@pytest.fixture
def passes(monkeypatch):
    """Instrumented; counts the calls of two per-request steps of the middleware (one each per pass)."""
    for name in ("AGENTWATCH_HEALTH_PREFIX", "AGENTWATCH_HEALTH_ENABLED", "AGENTWATCH_ERROR_DETAIL",
                 "AGENTWATCH_HEALTH_CRITICAL", "AGENTWATCH_HEALTH_HTTP_URLS", "AGENTWATCH_HEALTH_SQLITE_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AGENTWATCH_HEALTH_GEMINI", "off")
    counted: list[str] = []
    for step in ("_attach_baggage", "_annotate_span"):
        original = getattr(middleware, step)

        def counting(*args, _step=step, _original=original):
            counted.append(_step)
            return _original(*args)

        monkeypatch.setattr(middleware, step, counting)
    AgentwatchWebInstrumentor().instrument()
    try:
        yield counted
    finally:
        AgentwatchWebInstrumentor().uninstrument()


def _sub_app() -> FastAPI:
    sub = FastAPI()

    @sub.get("/hi")
    async def hi():
        return {"seen": current_request_id()}

    @sub.get("/boom")
    async def boom():
        raise RuntimeError("boom")

    return sub


def _outer_app(mount: bool) -> FastAPI:
    app = FastAPI()

    @app.get("/ok")
    async def ok():
        return {"seen": current_request_id()}

    @app.get("/missing")
    async def missing():
        raise HTTPException(status_code=404, detail="no such thing")

    if mount:
        app.mount("/sub", _sub_app())
    return app


def test_a_request_to_a_mounted_app_is_set_up_once(passes):
    with TestClient(_outer_app(mount=True)) as client:
        passes.clear()
        response = client.get("/sub/hi", headers={"X-Session-ID": "s-1"})
    assert response.status_code == 200
    assert len(response.headers.get_list("x-request-id")) == 1
    assert response.headers.get_list("x-session-id") == ["s-1"]
    assert response.json()["seen"] == response.headers["x-request-id"]
    assert sorted(passes) == ["_annotate_span", "_attach_baggage"]  # one pass, not one per app


def test_health_paths_under_the_mount_are_the_mounted_apps_own(passes):
    with TestClient(_outer_app(mount=True)) as client:
        for path in HEALTH:
            response = client.get("/sub" + path)
            # The mounted app's own 404 (with the request id agentwatch adds to FastAPI's error bodies).
            assert response.status_code == 404, path
            body = response.json()
            assert body["detail"] == "Not Found", path
            assert body["request_id"] == response.headers["x-request-id"], path
        assert client.get("/health/live").json()["status"] == "alive"  # the enclosing app's endpoints stay


def test_an_error_in_the_mounted_app_answers_once_with_the_request_id(passes):
    with TestClient(_outer_app(mount=True), raise_server_exceptions=False) as client:
        passes.clear()
        response = client.get("/sub/boom", headers={"X-Request-ID": "req-mounted-1"})
    assert response.status_code == 500
    assert response.json()["error"] == "internal_server_error"
    assert response.json()["request_id"] == "req-mounted-1"
    assert response.headers.get_list("x-request-id") == ["req-mounted-1"]
    assert passes.count("_annotate_span") == 1


def _answers(app: FastAPI) -> list[tuple]:
    out = []
    with TestClient(app) as client:
        for path in ["/ok", "/missing", *HEALTH]:
            response = client.get(path, headers={"X-Request-ID": "req-1"})
            body = response.json()
            shape = sorted(body) if path.startswith("/health") else body  # (uptimes and latencies vary)
            out.append((path, response.status_code, response.headers.get_list("x-request-id"), shape))
    return out


def test_the_enclosing_app_answers_as_without_a_mount(passes):
    plain = _answers(_outer_app(mount=False))
    agentwatch.web.reset()  # the first client's shutdown left the process draining
    passes.clear()
    mounted = _answers(_outer_app(mount=True))
    assert mounted == plain
    assert passes.count("_annotate_span") == len(plain)  # one pass per request
    assert ("/ok", 200, ["req-1"], {"seen": "req-1"}) in mounted


def test_an_app_that_is_not_mounted_keeps_its_own_layer(passes):
    with TestClient(_sub_app()) as client:
        response = client.get("/health/live")
        assert response.status_code == 200 and response.json()["status"] == "alive"
        hi = client.get("/hi")
        assert hi.json()["seen"] == hi.headers["x-request-id"]
