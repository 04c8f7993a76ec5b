"""Fault injection into agentwatch itself (issue 8, item 2).

The demo service runs once without agentwatch and then under ``opentelemetry-instrument`` with every
wrapper, extractor, scrubber or exporter of ours, or every per-request step of the web layer, forced to
raise on every call (``tests/_agentwatch_faults.py``, imported by a launcher script after the
instrumentation is set up and before the app is imported; production code has no test hook). The same
fixed request sequence gets byte-identical responses, no traceback of ours, and each fault is reported
once, not once per call: the warning lines after the sequence ran twice are the same as after it ran once.

"Byte-identical" means status, body and headers but the date. With the telemetry faults the web layer
still works, so agentwatch's own additions (the ``X-Request-ID``/``X-Session-ID`` headers, the
``request_id`` field of error bodies) are set aside; a 500 and the health endpoints, which agentwatch
answers differently by design, are only in the web runs. With the web layer faulty nothing is set aside:
a broken step falls back to passing the request through untouched, so the app's own 500, 404 for
``/health`` and FastAPI's error bodies come back exactly.

The in-process tests at the end break each web step alone and check what falls back to what.
"""

from __future__ import annotations

import http.client
import json
import re
import sys
import textwrap
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from _fake_gemini import FakeGemini  # noqa: E402
from _service import APP_DIR, FAST_EXPORT, agentwatch_lines, clean_env, start_service  # noqa: E402
from agentwatch.distro.guard import STRICT_ENV  # noqa: E402
from otlp_receiver import OTLPReceiver  # noqa: E402
from run_demo import AGENT_TARGETS  # noqa: E402

TESTS = Path(__file__).resolve().parent
KINDS = ("wrappers", "extractors", "scrubber", "exporters", "web-ids", "web")
# (method, path, JSON body): ordinary answers, a 404, a validation error, a model failure.
SEQUENCE = [
    ("GET", "/", None),
    ("GET", "/documents/kb-001", None),
    ("GET", "/documents/no-such-doc", None),
    ("POST", "/chat", {"message": "I was charged twice on my invoice, can I get a refund?", "session_id": "s-1"}),
    ("POST", "/chat", {"message": "How do I reset my password?", "session_id": "s-1"}),
    ("POST", "/chat", {"message": "The app crashes when I export a report", "session_id": "s-2"}),
    ("POST", "/chat", {"message": "", "session_id": "s-3"}),
    ("POST", "/chat", {"message": "anything #fail-503", "session_id": "s-4"}),
    ("GET", "/nowhere", None),
]
# Answered differently by agentwatch by design (JSON 500, health endpoints): compared in the web runs only.
WEB_SEQUENCE = [
    *SEQUENCE,
    ("POST", "/chat", {"message": "#crash now", "session_id": "s-5"}),
    ("GET", "/health/ready", None),
    ("GET", "/health", None),
]
IGNORED_HEADERS = {"date", "x-request-id", "x-session-id"}


def _drive(port: int, sequence: list[tuple], strict: bool) -> list[tuple]:
    """The responses as ``(method, path, status, headers, body)``; unless ``strict``, agentwatch's own
    request-id header and body field are set aside."""
    ignored = {"date"} if strict else IGNORED_HEADERS
    out = []
    for method, path, body in sequence:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
            resp = conn.getresponse()
            headers = [(k.lower(), v) for k, v in resp.getheaders() if k.lower() not in ignored]
            payload = resp.read()
            stripped = payload if strict else _without_request_id(payload)
            if stripped != payload:  # by design, agentwatch adds the request id to error bodies
                payload = stripped
                headers = [(k, str(len(payload)) if k == "content-length" else v) for k, v in headers]
            out.append((method, path, resp.status, tuple(headers), payload))
        finally:
            conn.close()
    return out


def _without_request_id(payload: bytes) -> bytes:
    """The body as the app made it: agentwatch's error bodies end with ``,"request_id":"<32 hex>"}``."""
    return re.sub(rb',"request_id":"[0-9a-f]{32}"}$', b"}", payload)


def _run(
    tmp_path: Path, gemini: FakeGemini, faults: str | None, rx: OTLPReceiver | None = None
) -> tuple[list[tuple], list[tuple], str]:
    """Start the service (uninstrumented when ``faults`` is None), drive the sequence twice, stop it."""
    web = faults is None or "web" in faults
    sequence = WEB_SEQUENCE if web else SEQUENCE
    app_env = {**gemini.env(), "PYTHONUNBUFFERED": "1"}
    run_dir = tmp_path / (faults or "plain").replace(",", "-")
    run_dir.mkdir()
    if faults is None:
        service = start_service(run_dir, clean_env(**app_env), instrumented=False)
    else:
        launcher = run_dir / "launch.py"
        launcher.write_text(textwrap.dedent(f"""
            import runpy, sys
            sys.path[:0] = [{str(TESTS)!r}, {str(APP_DIR)!r}]
            import _agentwatch_faults  # noqa: F401 - patches agentwatch before the app is imported
            sys.argv = [{str(APP_DIR / 'app.py')!r}, *sys.argv[1:]]
            runpy.run_path(sys.argv[0], run_name="__main__")
        """))
        env = clean_env(
            **app_env,
            **AGENT_TARGETS,
            AGENTWATCH_TEST_FAULTS=faults,
            **rx.env(),
            OTEL_SERVICE_NAME="agent-service",
            **FAST_EXPORT,
            OTEL_EXPORTER_OTLP_TIMEOUT="1",
            OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="SPAN_ONLY",
            AGENTWATCH_SHUTDOWN_TIMEOUT="2",
        )
        env.pop(STRICT_ENV, None)  # the injected faults are said and stepped over, as in production
        service = start_service(run_dir, env, command=["python", str(launcher), "--port", "{port}"])
    try:
        first = _drive(service.port, sequence, strict=web)
        time.sleep(0.8)  # batches and a metric export run (and fault) in between
        second = _drive(service.port, sequence, strict=web)
        time.sleep(0.5)
    finally:
        service.terminate()
    return first, second, service.stderr()


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, fake_gemini):
    first, second, stderr = _run(tmp_path_factory.mktemp("baseline"), fake_gemini, None)
    assert first == second, "the demo must answer the fixed sequence deterministically"
    assert first[len(SEQUENCE)][2] == 500 and first[-1][2] == 404  # the crash, and no /health without us
    return first, stderr.count("Traceback")  # the crash's, logged by uvicorn on each pass


def _comparable(responses: list[tuple], strict: bool) -> list[tuple]:
    """Non-strict runs compare with the relaxed view of the baseline (agentwatch's request ids set aside)."""
    if strict:
        return responses
    out = []
    for method, path, status, headers, payload in responses:
        headers = tuple((k, v) for k, v in headers if k not in IGNORED_HEADERS)
        out.append((method, path, status, headers, payload))
    return out


# Each web step, as its warning names it, that the "web" run must report.
WEB_STEPS = ("request baggage", "span attributes", "startup checks", "health endpoint", "response headers",
             "context cleanup", "lifespan hooks", "error telemetry", "error metrics", "error response",
             "request id in error bodies", "outgoing request ids", "server span")


@pytest.mark.faults
@pytest.mark.slow
@pytest.mark.parametrize("faults", [*KINDS, "wrappers,extractors,scrubber,exporters,web"])
def test_agentwatch_faults_never_change_the_apps_responses(tmp_path, fake_gemini, baseline, faults):
    plain, plain_tracebacks = baseline
    web = "web" in faults
    expected = _comparable(plain if web else plain[: len(SEQUENCE)], web)
    with OTLPReceiver(protocol="http") as rx:
        first, second, stderr = _run(tmp_path, fake_gemini, faults, rx)
    assert first == expected, faults
    assert second == expected, faults
    # No traceback of ours: only the app's own crash is logged (web runs), as without agentwatch.
    assert "raise InjectedFault" not in stderr, stderr
    assert stderr.count("Traceback") == (plain_tracebacks if web else 0), stderr
    lines = agentwatch_lines(stderr)
    # Scrubbing failures name the error type only (its text could hold what was not scrubbed).
    fault_lines = [l for l in lines if "injected" in l or "(InjectedFault)" in l]
    # The receiver is healthy: no fault of ours but a crashing exporter counts as undelivered.
    assert "exporters" in faults or not [l for l in lines if "cannot export" in l or "not been delivered" in l], stderr
    if "," not in faults:  # (together, a failing wrapper hides the extractors it would have called)
        said = "(InjectedFault)" if faults == "scrubber" else f"injected {faults.rstrip('s').removesuffix('-id')} fault"
        assert [l for l in fault_lines if said in l], stderr
    if faults == "scrubber":
        # What could not be scrubbed is dropped, never exported as is; each signal says so once.
        assert not rx.spans(), "unscrubbed spans reached the receiver"
        assert len([l for l in fault_lines if l.split(": ", 1)[1].startswith("scrubbing ")]) == 3, fault_lines
    if faults == "wrappers":
        assert rx.spans(), "the rest of the telemetry (HTTP server spans) still flows"
    if faults == "web-ids":
        assert [l.split(": ", 1)[1].split(" failed")[0] for l in fault_lines] == ["web layer: request ids"]
    if faults == "web":
        steps = {l.split("web layer: ", 1)[1].split(" failed")[0] for l in fault_lines}
        assert steps == set(WEB_STEPS), sorted(steps)
        assert rx.spans(), "traces still flow without the web layer's additions"
    # Once per kind and place, not per call: no line repeats, and the second pass added none.
    assert len(fault_lines) == len(set(fault_lines)), stderr
    assert len(fault_lines) <= 12 + (len(WEB_STEPS) if web else 0), fault_lines


# --- each web step alone, in process ----------------------------------------------------------------------
PROBES = ["/ok", "/missing", "/typed/x", "/crash", "/call", "/health/ready"]
# step -> (module, attribute made to raise, the probes that must then get exactly the app's own answer)
STEP_FAULTS = {
    "request ids": ("agentwatch.web.request_id", "from_scope", set(PROBES)),
    "request baggage": ("agentwatch.web.middleware", "_attach_baggage", set()),
    "span attributes": ("agentwatch.web.middleware", "_annotate_span", set()),
    "startup checks": ("agentwatch.web.middleware", "_ensure_startup", set()),
    "health routing": ("agentwatch.web.middleware", "_health_handler", {"/health/ready"}),
    "health endpoint": ("agentwatch.web.health", "serve", {"/health/ready"}),
    "response headers": ("agentwatch.web.middleware", "_with_id_headers", {"/ok", "/call"}),
    "context cleanup": ("agentwatch.web.middleware", "_detach", set()),
    "error telemetry": ("agentwatch.web.errors", "_record_on_span", set()),
    "error metrics": ("agentwatch.web.telemetry", "_get", set()),
    "error response": ("agentwatch.web.errors", "_json_500", {"/crash"}),
    "request id in error bodies": ("agentwatch.web.errors", "_request_id", {"/missing", "/typed/x"}),
    "outgoing request ids": ("agentwatch.web.outgoing", "add_headers", set()),
    "lifespan hooks": ("agentwatch.web.health", "state", {"/health/ready"}),  # (the probe then fails too)
    "health check metrics": ("agentwatch.web.telemetry", "_get", set()),
    "text scrubbing": ("agentwatch.web._scrub", "_scrubber", set()),  # the exception message on the span
    # agentwatch's server layer cannot open the span: the request goes on with the ids alone.
    "server span": ("agentwatch.web.server", "_request_attributes", set()),
}


def _step_app(outgoing: list):
    import httpx
    from fastapi import FastAPI, HTTPException

    app = FastAPI()

    @app.get("/ok")
    async def ok():
        return {"ok": True}

    @app.get("/missing")
    async def missing():
        raise HTTPException(status_code=404, detail="no such thing")

    @app.get("/typed/{n}")
    async def typed(n: int):
        return {"n": n}

    @app.get("/crash")
    async def crash():
        raise RuntimeError("boom")

    @app.get("/call")
    async def call():
        transport = httpx.MockTransport(lambda r: outgoing.append(dict(r.headers)) or httpx.Response(204))
        async with httpx.AsyncClient(transport=transport) as client:
            await client.get("http://downstream/")
        return {"called": True}

    return app


def _answers(app, passes: int = 2) -> list[tuple]:
    """(path, status, headers without the date, body) of each probe, ``passes`` times over."""
    from fastapi.testclient import TestClient

    out = []
    with TestClient(app, raise_server_exceptions=False) as client:
        for _ in range(passes):
            for path in PROBES:
                response = client.get(path)
                headers = tuple((k, v) for k, v in response.headers.items() if k != "date")
                out.append((path, response.status_code, headers, response.content))
    return out


@pytest.fixture(params=[False, True], ids=["id-layer", "server-layer"])
def web_layer(request, monkeypatch, lenient):
    import agentwatch.web
    from agentwatch.distro import _diagnostics
    from agentwatch.instrumentors.web import AgentwatchWebInstrumentor

    monkeypatch.setenv("AGENTWATCH_HEALTH_GEMINI", "off")
    outgoing: list[dict] = []
    plain = _answers(_step_app(outgoing))  # the app as it is, without agentwatch
    agentwatch.web.reset()
    _diagnostics.reset()
    # Both stacks: the id layer alone (under the contrib instrumentation) and agentwatch's server layer.
    AgentwatchWebInstrumentor().instrument(server_layer=request.param)
    try:
        yield plain, outgoing, request.param
    finally:
        AgentwatchWebInstrumentor().uninstrument()


@pytest.mark.faults
@pytest.mark.parametrize("step", list(STEP_FAULTS))
def test_each_web_step_fails_alone_into_the_apps_own_answer(web_layer, monkeypatch, step):
    """A broken step is said once, in its own words, and the probes it concerns get exactly the app's own
    answer; the others keep agentwatch's additions (a request id, JSON errors, health endpoints)."""
    import importlib

    from agentwatch.distro import _diagnostics
    from _agentwatch_faults import InjectedFault

    plain, outgoing, server_layer = web_layer
    if step == "server span" and not server_layer:
        pytest.skip("a step of the server layer only")
    module, attribute, untouched = STEP_FAULTS[step]

    def broken(*_args, **_kwargs):
        raise InjectedFault(f"injected {step} fault")

    monkeypatch.setattr(importlib.import_module(module), attribute, broken)
    if step == "text scrubbing":  # the development 500 shows the exception message: scrubbed or nothing
        monkeypatch.setenv("AGENTWATCH_ERROR_DETAIL", "true")
    answers = _answers(_step_app(outgoing))
    if step == "text scrubbing":
        crash = next(body for path, _, _, body in answers if path == "/crash")
        assert json.loads(crash)["message"] == "RuntimeError: [unavailable]", crash
    for (path, status, headers, body), (_, plain_status, plain_headers, plain_body) in zip(answers, plain):
        if path in untouched:
            # Additions of the steps that still work are set aside, never those of the step under test.
            if step not in ("request ids", "response headers"):
                headers = tuple((k, v) for k, v in headers if k != "x-request-id")
            if step not in ("request ids", "request id in error bodies", "error response"):
                stripped = _without_request_id(body)
                if stripped != body:
                    body = stripped
                    headers = tuple((k, str(len(body)) if k == "content-length" else v) for k, v in headers)
            assert (status, headers, body) == (plain_status, plain_headers, plain_body), (step, path)
        elif path != "/health/ready":
            # Same answer, plus agentwatch's request id (the 500 is agentwatch's JSON by design).
            assert "x-request-id" in dict(headers) or step == "response headers", (step, path)
            assert status == plain_status, (step, path)
            if path in ("/ok", "/call"):
                assert body == plain_body, (step, path)
        else:
            assert status == 200 and b'"ready"' in body, (step, body)  # agentwatch's probe still answers
    said = [m for m in _diagnostics.messages() if m.startswith(f"web layer: {step} failed")]
    assert len(said) == 1, _diagnostics.messages()  # once, although every probe ran twice
    assert "injected" in said[0]
    if step == "outgoing request ids":
        assert outgoing and not any("x-request-id" in h for h in outgoing[-2:])
    elif step != "request ids":
        assert "x-request-id" in outgoing[-1]
