"""Each bad value: one clear warning naming the variable, the value and the fallback; the app still serves
and is still instrumented (a bad value costs only that value)."""

from __future__ import annotations

import pytest

from _service import FAST_EXPORT, clean_env, free_port, start_service

pytestmark = pytest.mark.slow

CASES = {
    "unknown exporter": (
        {"OTEL_TRACES_EXPORTER": "otlp_json_file,bogus"},
        "OTEL_TRACES_EXPORTER='otlp_json_file,bogus': exporter 'bogus' is unavailable",
    ),
    "non-numeric port": (
        {"OTEL_METRICS_EXPORTER": "prometheus", "OTEL_EXPORTER_PROMETHEUS_PORT": "nine"},
        "OTEL_EXPORTER_PROMETHEUS_PORT='nine' is not a port number (1-65535); using 9464 instead",
    ),
    "bad boolean": (
        {"AGENTWATCH_ASGI_MESSAGE_SPANS": "sometimes"},
        "AGENTWATCH_ASGI_MESSAGE_SPANS='sometimes' is not a boolean (true/false); using False instead",
    ),
    "unparsable resource attributes": (
        {"OTEL_RESOURCE_ATTRIBUTES": "team=agents,oops"},
        "OTEL_RESOURCE_ATTRIBUTES='team=agents,oops' has unparsable items ['oops']",
    ),
    "bad protocol (aborts the stock configurator)": (
        {"OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon", "OTEL_TRACES_EXPORTER": "otlp_json_file"},
        "OTEL_EXPORTER_OTLP_PROTOCOL='carrier-pigeon' is not one of grpc, http/protobuf; using 'http/protobuf' instead",
    ),
    "grpc exporter pointed at the HTTP port": (
        {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "otlp_json_file,otlp"},
        "4318 is the OTLP/HTTP port: use port 4317, or set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_value_warns_once_and_app_still_serves_instrumented(tmp_path, case):
    env_values, expected = CASES[case]
    out = tmp_path / "telemetry"
    values = {
        "OTEL_TRACES_EXPORTER": "otlp_json_file",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "AGENTWATCH_FILE_DIR": str(out),
        "AGENTWATCH_ENDPOINT_CHECK": "false",
        **FAST_EXPORT,
        "GEMINI_BASE_URL": f"http://127.0.0.1:{free_port()}",
    }
    values.update(env_values)
    env = clean_env(**values)
    service = start_service(tmp_path, env)
    try:
        status, body = service.request("GET", "/documents/kb-001")
        assert status == 200, body
    finally:
        service.terminate()
    stderr = service.stderr()
    lines = [line for line in stderr.splitlines() if expected in line]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("agentwatch WARNING: ")
    assert "Traceback" not in stderr and "Failed to auto initialize" not in stderr, stderr
    # Still instrumented: the request's server span reached the file exporter.
    traces = (out / "traces.jsonl").read_text()
    assert '"name":"GET /documents/{doc_id}"' in traces
