"""The example agent service, unchanged, under ``opentelemetry-instrument`` with agentwatch,
exporting to a real local OTLP receiver (gRPC and HTTP), decoded with opentelemetry-proto."""

from __future__ import annotations

import time
import urllib.request

import pytest

from _service import FAST_EXPORT, clean_env, free_port, start_service
from otlp_receiver import OTLPReceiver

pytestmark = pytest.mark.slow

MESSAGES = [
    "I was charged twice on my invoice, can I get a refund?",
    "The app crashes with an error when I sync",
    "How do I reset my password and login?",
]


def _fast_export_env(**extra: str) -> dict[str, str]:
    return {
        **FAST_EXPORT,
        "OTEL_SERVICE_NAME": "agent-service",
        "OTEL_RESOURCE_ATTRIBUTES": "service.version=1.2.3",
        "AGENTWATCH_ENVIRONMENT": "test",
        **extra,
    }


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_service_exports_traces_metrics_logs(tmp_path, fake_gemini, protocol):
    with OTLPReceiver(protocol=protocol) as rx:
        env = clean_env(**rx.env(), **_fast_export_env(**fake_gemini.env()))
        service = start_service(tmp_path, env)
        try:
            for message in MESSAGES:
                status, body = service.request("POST", "/chat", {"message": message, "session_id": "s-1"})
                assert status == 200, body
            assert service.request("GET", "/documents/nope")[0] == 404
        finally:
            code = service.terminate()
        stderr = service.stderr()
        assert code in (0, -15, 143), stderr
        # Everything was flushed on SIGTERM: no waiting needed after exit.
        spans = rx.spans()
        server_spans = [s for s in spans if s["kind"] == "SERVER"]
        assert {s["name"] for s in server_spans} >= {"POST /chat", "GET /documents/{doc_id}"}, [s["name"] for s in spans]
        assert not [s for s in spans if s["name"].endswith(("http send", "http receive"))]

        chat = next(s for s in server_spans if s["name"] == "POST /chat")
        by_id = {s["span_id"]: s for s in spans}

        def descends_from(span, ancestor) -> bool:
            while span and span["parent_span_id"]:
                if span["parent_span_id"] == ancestor["span_id"]:
                    return True
                span = by_id.get(span["parent_span_id"])
            return False

        in_trace = [s for s in spans if s["trace_id"] == chat["trace_id"] and s is not chat]
        db = [s for s in in_trace if s["attributes"].get("db.system") == "sqlite" or s["attributes"].get("db.system.name") == "sqlite"]
        client = [s for s in in_trace if s["kind"] == "CLIENT" and "url.full" in s["attributes"]]
        assert db and all(descends_from(s, chat) for s in db), in_trace
        assert client and all(descends_from(s, chat) for s in client), in_trace
        assert "key=" not in client[0]["attributes"]["url.full"]
        assert chat["attributes"]["http.route"] == "/chat"
        assert chat["attributes"]["http.response.status_code"] == 200

        durations = [m for m in rx.metrics() if m["name"] == "http.server.request.duration"]
        assert durations, sorted({m["name"] for m in rx.metrics()})
        assert durations[-1]["unit"] == "s"
        points = durations[-1]["data_points"]
        chat_points = [p for p in points if p["attributes"].get("http.route") == "/chat"]
        assert chat_points and chat_points[0]["attributes"]["http.response.status_code"] == 200
        assert sum(p["count"] for p in chat_points) == len(MESSAGES)
        assert not [m for m in rx.metrics() if m["name"] == "http.server.duration"]  # old semconv is off

        logs = rx.logs()
        agent_logs = [r for r in logs if r["scope"] == "agent" and "chat answered" in str(r["body"])]
        assert agent_logs, [r["scope"] for r in logs]
        server_trace_ids = {s["trace_id"] for s in server_spans}
        assert len(agent_logs) == len(MESSAGES)
        assert all(r["trace_id"] in server_trace_ids and r["span_id"] for r in agent_logs)
        assert any(r["scope"].startswith("uvicorn") for r in logs), "uvicorn's own log lines are exported too"
        bodies = [str(r["body"]) for r in logs]
        assert len(bodies) == len(set(zip(bodies, [r["time_unix_nano"] for r in logs]))), "no record exported twice"

        resource = chat["resource"]
        assert resource["telemetry.distro.name"] == "agentwatch"
        assert resource["telemetry.distro.version"]
        assert resource["service.name"] == "agent-service"
        assert resource["service.version"] == "1.2.3"
        assert resource["deployment.environment.name"] == "test"
        assert resource["host.name"] and resource["process.pid"] == service.process.pid
        assert "process.command_line" not in resource
        assert "agentwatch WARNING" not in stderr, stderr


def test_prometheus_endpoint_shows_http_duration_histogram(tmp_path, fake_gemini):
    prom_port = free_port()
    env = clean_env(
        OTEL_TRACES_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_METRICS_EXPORTER="prometheus",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(prom_port),
        **fake_gemini.env(),
    )
    service = start_service(tmp_path, env)
    try:
        for message in MESSAGES:
            assert service.request("POST", "/chat", {"message": message, "session_id": "s"})[0] == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    finally:
        service.terminate()
    assert "# TYPE http_server_request_duration_seconds histogram" in text
    count_lines = [l for l in text.splitlines() if l.startswith("http_server_request_duration_seconds_count") and 'http_route="/chat"' in l]
    assert count_lines and sum(float(l.rsplit(" ", 1)[1]) for l in count_lines) == len(MESSAGES), text[:3000]
    assert 'telemetry_distro_name="agentwatch"' in text  # target_info carries the resource


def test_file_exporter_output_is_rendered_by_report(tmp_path, fake_gemini):
    out = tmp_path / "telemetry"
    env = clean_env(
        AGENTWATCH_EXPORT="local",
        AGENTWATCH_FILE_DIR=str(out),
        OTEL_EXPORTER_PROMETHEUS_PORT=str(free_port()),
        **fake_gemini.env(),
        **_fast_export_env(),
    )
    service = start_service(tmp_path, env)
    try:
        for message in MESSAGES:
            assert service.request("POST", "/chat", {"message": message, "session_id": "s"})[0] == 200
    finally:
        service.terminate()
    assert (out / "traces.jsonl").stat().st_size > 0
    from agentwatch.cli import main

    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["report", str(out)]) == 0
    report = buffer.getvalue()
    assert "POST /chat" in report and "agent-service" in report
    assert "p99" in report.lower()


def test_collector_down_requests_succeed_with_one_warning_and_fast_exit(tmp_path, fake_gemini):
    closed = free_port()  # nothing listens here
    env = clean_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{closed}",
        **fake_gemini.env(),
        **_fast_export_env(),
    )
    service = start_service(tmp_path, env)
    try:
        for _ in range(3):
            for message in MESSAGES:
                assert service.request("POST", "/chat", {"message": message, "session_id": "s"})[0] == 200
        time.sleep(1.0)  # let a few export attempts fail
    finally:
        service.terminate()
    stderr = service.stderr()
    warnings = [l for l in stderr.splitlines() if "cannot export" in l]
    assert len(warnings) == 1, stderr
    assert f"http://127.0.0.1:{closed}" in warnings[0] and "OTEL_EXPORTER_OTLP_ENDPOINT" in warnings[0]
    assert "Transient error" not in stderr and "Traceback" not in stderr, stderr
    # Stock opentelemetry-instrument takes 8-14 s to exit here; generous bound, not a benchmark.
    assert service.exit_seconds is not None and service.exit_seconds < 5, service.exit_seconds


WORKER_COMMANDS = {
    "uvicorn --workers 2": (["uvicorn", "app:app", "--port", "{port}", "--workers", "2"], 2),
    "gunicorn -w 2 (forked workers)": (
        ["gunicorn", "-k", "uvicorn.workers.UvicornWorker", "-w", "2", "-b", "127.0.0.1:{port}", "--no-control-socket", "app:app"],
        2,
    ),
    "uvicorn --reload": (["uvicorn", "app:app", "--port", "{port}", "--reload", "--reload-dir", "{reload_dir}"], 1),
}


@pytest.mark.single_env(
    reason="several workers start at once: timing-sensitive while the two resolutions share the 2 cores")
@pytest.mark.parametrize("mode", list(WORKER_COMMANDS))
def test_each_worker_exports_its_own_telemetry(tmp_path, fake_gemini, mode):
    command, expected = WORKER_COMMANDS[mode]
    command = [arg.replace("{reload_dir}", str(tmp_path)) for arg in command]
    with OTLPReceiver(protocol="http") as rx:
        env = clean_env(**rx.env(), **_fast_export_env(**fake_gemini.env()))
        service = start_service(tmp_path, env, command=command)
        try:
            pids: set = set()
            deadline = time.monotonic() + 30
            while len(pids) < expected and time.monotonic() < deadline:
                for _ in range(20):
                    service.request("GET", "/documents/kb-001")
                time.sleep(0.5)
                pids = {s["resource"].get("process.pid") for s in rx.spans() if s["kind"] == "SERVER"}
        finally:
            service.terminate()
        server_spans = [s for s in rx.spans() if s["kind"] == "SERVER"]
        assert len(pids) == expected, (pids, service.stderr())
        assert service.process.pid not in pids  # the workers, not the supervisor/master, serve
        instance_ids = {s["resource"].get("service.instance.id") for s in server_spans}
        assert len(instance_ids) == expected, "ids are unique per worker"
        assert {s["resource"]["service.name"] for s in server_spans} == {"agent-service"}
        assert len({s["span_id"] for s in server_spans}) == len(server_spans)
        assert "Traceback" not in service.stderr(), service.stderr()
