"""Fault injection into agentwatch itself (issue 8, item 2).

The demo service runs once without agentwatch and then under ``opentelemetry-instrument`` with every
wrapper, extractor, scrubber or exporter of ours forced to raise on every call
(``tests/_agentwatch_faults.py``, imported by a launcher script after the instrumentation is set up and
before the app is imported; production code has no test hook). The same fixed request sequence gets
byte-identical responses (status, body, headers but the date and agentwatch's own request/session id
headers), no traceback, and each fault is reported once, not once per call: the warning lines after the
sequence ran twice are the same as after it ran once.
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

from _service import APP_DIR, clean_env, start_service  # noqa: E402
from fake_gemini import start_fake_gemini  # noqa: E402
from otlp_receiver import OTLPReceiver  # noqa: E402
from run_demo import AGENT_TARGETS  # noqa: E402

pytestmark = [pytest.mark.faults, pytest.mark.slow]

TESTS = Path(__file__).resolve().parent
KINDS = ("wrappers", "extractors", "scrubber", "exporters")
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
IGNORED_HEADERS = {"date", "x-request-id", "x-session-id"}


@pytest.fixture(scope="module")
def gemini():
    server, url = start_fake_gemini(api_key="test-key")
    yield url
    server.shutdown()


def _drive(port: int) -> list[tuple]:
    out = []
    for method, path, body in SEQUENCE:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
            resp = conn.getresponse()
            headers = [(k.lower(), v) for k, v in resp.getheaders() if k.lower() not in IGNORED_HEADERS]
            payload = resp.read()
            stripped = _without_request_id(payload)
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


def _run(tmp_path: Path, gemini: str, faults: str | None, rx: OTLPReceiver | None = None) -> tuple[list[tuple], list[tuple], str]:
    """Start the service (uninstrumented when ``faults`` is None), drive the sequence twice, stop it."""
    app_env = {"GEMINI_BASE_URL": gemini, "GEMINI_API_KEY": "test-key", "PYTHONUNBUFFERED": "1"}
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
            OTEL_BSP_SCHEDULE_DELAY="100",
            OTEL_BLRP_SCHEDULE_DELAY="100",
            OTEL_METRIC_EXPORT_INTERVAL="300",
            OTEL_EXPORTER_OTLP_TIMEOUT="1",
            OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="SPAN_ONLY",
            AGENTWATCH_SHUTDOWN_TIMEOUT="2",
        )
        service = start_service(run_dir, env, command=["python", str(launcher), "--port", "{port}"])
    try:
        first = _drive(service.port)
        time.sleep(0.8)  # batches and a metric export run (and fault) in between
        second = _drive(service.port)
        time.sleep(0.5)
    finally:
        service.terminate()
    return first, second, service.stderr()


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, gemini):
    first, second, stderr = _run(tmp_path_factory.mktemp("baseline"), gemini, None)
    assert first == second, "the demo must answer the fixed sequence deterministically"
    assert "Traceback" not in stderr, stderr
    return first


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("agentwatch ")]


@pytest.mark.parametrize("faults", [*KINDS, ",".join(KINDS)])
def test_agentwatch_faults_never_change_the_apps_responses(tmp_path, gemini, baseline, faults):
    with OTLPReceiver(protocol="http") as rx:
        first, second, stderr = _run(tmp_path, gemini, faults, rx)
    assert first == baseline, faults
    assert second == baseline, faults
    assert "Traceback" not in stderr, stderr
    lines = _warnings(stderr)
    fault_lines = [l for l in lines if "injected" in l]
    # The receiver is healthy: no fault of ours but a crashing exporter counts as undelivered.
    assert "exporters" in faults or not [l for l in lines if "cannot export" in l or "not been delivered" in l], stderr
    if "," not in faults:  # (together, a failing wrapper hides the extractors it would have called)
        assert [l for l in fault_lines if f"injected {faults.rstrip('s')} fault" in l], stderr
    if faults == "scrubber":
        # What could not be scrubbed is dropped, never exported as is; each signal says so once.
        assert not rx.spans(), "unscrubbed spans reached the receiver"
        assert len([l for l in fault_lines if l.split(": ", 1)[1].startswith("scrubbing ")]) == 3, fault_lines
    if faults == "wrappers":
        assert rx.spans(), "the rest of the telemetry (HTTP server spans) still flows"
    # Once per kind and place, not per call: no line repeats, and the second pass added none.
    assert len(fault_lines) == len(set(fault_lines)), stderr
    assert len(fault_lines) <= 12, fault_lines
