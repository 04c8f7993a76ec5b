"""The deployment end to end: demo service -> agent collector -> two gateways -> Prometheus.

The demo service (examples/agent_service, under ``opentelemetry-instrument``) sends OTLP/HTTP
to an agent collector (collector/otelcol/agent.yaml) whose load_balancing exporter routes by
trace id to two gateway collectors (collector/otelcol/gateway.yaml: span metrics, tail
sampling, prometheus exporter); traces land in a ``file`` exporter per gateway and a real
Prometheus (Debian's) scrapes the gateways and the collectors' own metrics. The collectors
are the distribution built from collector/distribution/ (``make collector``); the configs run
unchanged, with a small loopback overlay (collector/tools/local_stack.py says what it changes).

One run (about a minute), in phases:

1. traffic of every kind (errors included); then: every trace is on one gateway only and both
   gateways got traces; every error trace is kept, and the configured share of the others;
   span metrics count every server span (before sampling); every dashboard panel (the
   ``requires: otelcol`` ones too) and the metric names of the alert rules have data in
   Prometheus; a secret that agentwatch's scrubber was told to keep (a keep-list entry) is
   masked by the collector's redaction, and what agentwatch scrubbed arrives scrubbed;
2. a gateway is killed (SIGKILL) while error traces for it are queued in the agent, the
   agent is killed too (so only its file_storage queue holds them) and both restart: every
   trace arrives, on the gateway its trace id belongs to;
3. a burst far over the agent's memory limit: the memory_limiter refuses data (HTTP 503/429
   back to the sender, ``otelcol_receiver_refused_*``), the agent stays up and healthy, and
   accepts data again afterwards.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
import yaml
from _collector import (
    COLLECTOR,
    DASHBOARDS,
    collector_binary,
    dashboard_queries,
    grafana_substitute,
    promql_metric_names,
    require_tool,
)
from _service import BIN, FAST_EXPORT, clean_env, free_port, start_service
from test_collector_dashboards_e2e import (
    CHATS,
    DOCUMENTS,
    HEALTH,
    MCP_APP,
    MCP_CLIENT,
    TARGETS,
    TOOL_CHATS,
    _stop,
    _wait_listening,
)

sys.path.insert(0, str(COLLECTOR / "tools"))
from local_stack import LocalStack

from _collector import SINGLE_ENV

pytestmark = [pytest.mark.slow, SINGLE_ENV]

SAMPLING_PERCENTAGE = 30  # OTELCOL_SAMPLING_PERCENTAGE of the gateways (the share of non-error traces kept)
WINDOW = "10s"  # $__rate_interval of the dashboard queries (1 s scrapes)
PLANTED = "alice.ops@example.com"  # in a resource attribute that agentwatch's keep list lets through
AGENT_MEMORY_LIMIT_MIB = 200
AGENT_MEMORY_SPIKE_MIB = 40
ERROR = 2  # OTLP status code


# --- reading what the gateways wrote --------------------------------------------------------
def _attrs(items) -> dict:
    return {a["key"]: next(iter(a["value"].values()), None) if a.get("value") else None for a in items or []}


def gateway_spans(path: Path) -> list[dict]:
    """Spans of a file exporter's OTLP/JSON lines, each with ``resource`` and ``attrs`` dicts."""
    spans = []
    if not path.exists():
        return spans
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        for rs in json.loads(line).get("resourceSpans", []):
            resource = _attrs(rs.get("resource", {}).get("attributes"))
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    span["resource"] = resource
                    span["attrs"] = _attrs(span.get("attributes"))
                    spans.append(span)
    return spans


def _is_root(span: dict) -> bool:
    return not span.get("parentSpanId")


# --- traffic --------------------------------------------------------------------------------
class Traffic(threading.Thread):
    """The demo's kinds of requests in rounds until stopped, counting what was answered 5xx."""

    def __init__(self, service, email_path: str):
        super().__init__(name="collector-e2e-traffic", daemon=True)
        self.service = service
        self.email_path = email_path
        self.stop_event = threading.Event()
        self.sent = Counter()  # "ok" | "error" (5xx)
        self.unexpected: list[str] = []
        self.rounds = 0

    def _one(self, method: str, path: str, body: dict | None, expected: int) -> None:
        status, answer = self.service.request(method, path, body)
        # Health probes make no trace (agentwatch's default OTEL_PYTHON_FASTAPI_EXCLUDED_URLS).
        self.sent["health" if path.startswith("/health") else "error" if status >= 500 else "ok"] += 1
        if status != expected:
            self.unexpected.append(f"{method} {path} {body}: HTTP {status} != {expected} {str(answer)[:200]}")

    def run(self) -> None:
        while not self.stop_event.is_set() and self.rounds < 500:  # bounded
            for index, (message, expected) in enumerate(CHATS):
                self._one("POST", "/chat", {"message": message, "session_id": f"s-{index % 3}"}, expected)
            for message in TOOL_CHATS:  # the function-calling loop: a tool run, then an undeclared tool
                self._one("POST", "/chat/tools", {"message": message, "session_id": "tools"}, 200)
            for doc_id, expected in DOCUMENTS:
                self._one("GET", f"/documents/{doc_id}", None, expected)
            # A 404 trace is kept by the gateways' 30 % baseline only: once a round, six rounds missed all of
            # them one run in eight (0.7^6) and the redaction check below had no span to read; four a round,
            # one in 5000.
            for _ in range(4):
                self._one("GET", self.email_path, None, 404)
            for path in HEALTH:
                self._one("GET", path, None, 200)
            self.rounds += 1
            self.stop_event.wait(0.1)


# --- OTLP/HTTP probes sent straight to the agent ---------------------------------------------
def _post(url: str, body: bytes, timeout: float = 10.0) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/x-protobuf"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def probe_traces(count: int, service: str) -> tuple[bytes, list[str]]:
    """One OTLP request with ``count`` one-span ERROR traces (tail sampling keeps them all)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=service)))
    ss = rs.scope_spans.add()
    now = time.time_ns()
    ids = []
    for _ in range(count):
        trace_id = random.randbytes(16)
        ids.append(trace_id.hex())
        ss.spans.append(Span(trace_id=trace_id, span_id=random.randbytes(8), name="probe", kind=Span.SPAN_KIND_SERVER,
                             start_time_unix_nano=now, end_time_unix_nano=now + 1_000_000, status=Status(code=Status.STATUS_CODE_ERROR)))
    return request.SerializeToString(), ids


def burst_logs(records: int, values: int) -> bytes:
    """One OTLP logs request: ``records`` records whose body is an array of ``values`` integers.

    Integers take memory once decoded (an AnyValue each) but give the redaction and transform
    processors no text to scan, so the burst costs the agent memory, not CPU.
    """
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="burst")))
    sl = rl.scope_logs.add()
    template = sl.log_records.add()
    template.time_unix_nano = time.time_ns()
    template.body.array_value.values.extend(AnyValue(int_value=i) for i in range(values))
    for _ in range(records - 1):
        sl.log_records.add().CopyFrom(template)
    return request.SerializeToString()


# --- the test --------------------------------------------------------------------------------
def _wait(condition, timeout: float, what: str, step: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def _has_data(data: dict) -> bool:
    result = data.get("result")
    if data.get("resultType") == "scalar":
        result = [{"value": result}]
    return bool(result) and any(math.isfinite(float(sample["value"][1])) for sample in result)


def _alert_metric_selectors() -> list[str]:
    """A PromQL selector per metric name (or ``__name__`` regex) the alert rules read."""
    rules = yaml.safe_load((COLLECTOR / "prometheus" / "alerts.yml").read_text())
    selectors: set[str] = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "expr" not in rule:
                continue
            names, regexes = promql_metric_names(str(rule["expr"]))
            selectors |= {f'{{__name__="{name}"}}' for name in names}
            selectors |= {f'{{__name__=~"{regex}"}}' for regex in regexes}
    return sorted(selectors)


# Counters that exist only once what they count has happened (a collector failing to send or
# refusing data, a retrieval with no document: none in this traffic), queue gauges of exporters
# this run does not have, and recording-rule outputs (a ``:`` in the name): absent is expected.
ABSENT_OK = ("send_failed", "enqueue_failed", "refused", "queue_size", "queue_capacity", "retrieval_empty", ":")


def test_demo_through_agent_and_two_gateways(tmp_path, fake_gemini):
    collector_binary()
    prometheus = require_tool("prometheus")
    stack = LocalStack(
        tmp_path / "stack",
        gateways=2,
        sampling_percentage=SAMPLING_PERCENTAGE,
        decision_wait="2s",
        agent_memory_limit_mib=AGENT_MEMORY_LIMIT_MIB,
        agent_memory_spike_mib=AGENT_MEMORY_SPIKE_MIB,
        prometheus_binary=prometheus,
    )
    service = traffic = None
    mcp: list[subprocess.Popen] = []
    try:
        stack.start()
        assert stack.agent is not None
        env = clean_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=stack.otlp_http,
            OTEL_SERVICE_NAME="agent-service",
            # The planted secret: agentwatch's keep list is told not to look for e-mail
            # addresses in this resource attribute, so only the collector can catch it.
            OTEL_RESOURCE_ATTRIBUTES=f"deployment.owner={PLANTED}",
            AGENTWATCH_SCRUB_KEEP_ATTRIBUTES="deployment.owner=email",
            **FAST_EXPORT,
            **fake_gemini.env(),
            PYTHONUNBUFFERED="1",
            # the demo's "gemini" breaker opens after three model failures in a row: closed again by the
            # next chat, so the traffic's expected statuses hold (as in test_collector_dashboards_e2e.py)
            AGENT_BREAKER_RESET_S="0.1",
            **TARGETS,
        )
        service = start_service(tmp_path, env)
        # The "Agents & tools" row's MCP panels: an MCP server and a client calling its tools, each under
        # opentelemetry-instrument, their metrics through the same collectors (traces off: the trace checks
        # below are about the demo service's traces).
        mcp_port = free_port()
        for job, command in (("mcp-server", [str(MCP_APP / "server.py"), "http", str(mcp_port)]),
                             ("mcp-client", ["-c", MCP_CLIENT, f"http://127.0.0.1:{mcp_port}/mcp"])):
            mcp_env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=stack.otlp_http, OTEL_SERVICE_NAME=job,
                                OTEL_TRACES_EXPORTER="none", OTEL_LOGS_EXPORTER="none", **FAST_EXPORT)
            mcp.append(subprocess.Popen([str(BIN / "opentelemetry-instrument"), "python", *command], env=mcp_env,
                                        stdout=subprocess.DEVNULL, stderr=(tmp_path / f"{job}.err").open("w"),
                                        stdin=subprocess.DEVNULL))
            if job == "mcp-server":  # listening before the client connects
                _wait_listening(mcp[0], mcp_port, tmp_path / f"{job}.err")
        traffic = Traffic(service, "/documents/bob.builder@example.org")

        # ---- phase 1: traffic, then what arrived -------------------------------------------
        traffic.start()
        _wait(lambda: traffic.rounds >= 6, 90, "six rounds of traffic")
        failures = _dashboard_failures(stack, deadline_s=30)
        alert_missing = _alert_names_missing(stack, deadline_s=10)
        traffic.stop_event.set()
        traffic.join(30)
        assert not traffic.unexpected, "the service misbehaved:\n" + "\n".join(traffic.unexpected[:20])
        assert not failures, f"{len(failures)} dashboard queries have no data through the collectors:\n" + "\n".join(failures)
        assert not alert_missing, f"metrics the alert rules read are not in Prometheus: {alert_missing}"

        files = [g.workdir / g.name / "traces.jsonl" for g in stack.gateway]
        sent = dict(traffic.sent)
        # Tail sampling decides decision_wait (2 s) after a trace's first span; the batch and file flush follow.
        service_spans = lambda: [[s for s in gateway_spans(f) if s["resource"].get("service.name") == "agent-service"] for f in files]  # noqa: E731
        roots = lambda spans: [s for s in spans if _is_root(s) and "http.response.status_code" in s["attrs"]]  # noqa: E731

        def all_errors_in() -> list[list[dict]] | None:
            per_gateway = service_spans()
            errors = sum(1 for spans in per_gateway for s in roots(spans) if int(s["attrs"]["http.response.status_code"]) >= 500)
            return per_gateway if errors >= sent["error"] else None

        per_gateway = _wait(all_errors_in, 30, f"{sent['error']} error traces in the gateways' files")
        time.sleep(4)  # the non-error traces decided with the last errors
        per_gateway = service_spans()

        trace_gateways: dict[str, set[int]] = {}
        for index, spans in enumerate(per_gateway):
            for span in spans:
                trace_gateways.setdefault(span["traceId"], set()).add(index)
        split = {tid: where for tid, where in trace_gateways.items() if len(where) > 1}
        assert not split, f"{len(split)} traces have spans on both gateways"
        assert all(spans for spans in per_gateway), "one gateway got no trace: the load is not balanced"

        all_spans = [s for spans in per_gateway for s in spans]
        root_spans = roots(all_spans)
        kept_errors = [s for s in root_spans if int(s["attrs"]["http.response.status_code"]) >= 500]
        kept_ok = {s["traceId"] for s in root_spans if int(s["attrs"]["http.response.status_code"]) < 500}
        assert len({s["traceId"] for s in kept_errors}) == sent["error"], (len(kept_errors), sent)
        share = 100 * len(kept_ok) / sent["ok"]
        # Binomial: at least 6 rounds of 12 traced non-error requests (usually more) at 30 %:
        # the bounds are more than 3 standard deviations away.
        assert SAMPLING_PERCENTAGE * 0.4 <= share <= SAMPLING_PERCENTAGE * 1.7, (share, len(kept_ok), sent)
        by_trace: dict[str, list[dict]] = {}
        for span in all_spans:
            by_trace.setdefault(span["traceId"], []).append(span)
        partial = [tid for tid, spans in by_trace.items() if sum(map(_is_root, spans)) != 1]
        assert not partial, f"{len(partial)} kept traces are not whole (no or several roots)"
        assert any(len(spans) >= 4 for spans in by_trace.values()), "no multi-span trace kept"

        # Span metrics count every server span, kept or not (made before sampling).
        traced = sent["ok"] + sent["error"]
        _wait(lambda: _server_calls(stack) >= traced, 30,
              f"span metrics counting all {traced} traced requests: {stack.query('traces_span_metrics_calls_total').get('result', [])[:3]}")

        # Redaction, both layers.
        text = "\n".join(f.read_text() for f in files)
        assert PLANTED not in text and "alice.ops" not in text
        owners = {s["resource"].get("deployment.owner") for s in all_spans}
        assert owners == {"****"}, owners  # the collector's mask; agentwatch's would read [REDACTED:email]
        paths = {s["attrs"].get("url.path") for s in all_spans if "url.path" in s["attrs"]}
        assert "/documents/[REDACTED:email]" in paths, paths  # agentwatch scrubbed it before export
        assert "bob.builder" not in text

        # ---- phase 2: a gateway and the agent die; the agent's persistent queue delivers -----
        service.terminate()
        service = None
        gone = stack.gateway[1]
        gone.kill()
        body, probe_ids = probe_traces(60, "queue-probe")
        assert _post(f"{stack.otlp_http}/v1/traces", body) == 200
        probes_on = lambda index: {s["traceId"] for s in gateway_spans(files[index]) if s["resource"].get("service.name") == "queue-probe"}  # noqa: E731
        first = _wait(lambda: probes_on(0), 30, "the live gateway's share of the probes")
        assert len(first) < len(probe_ids), "every probe went to the live gateway: nothing to queue"
        time.sleep(2)  # the dead gateway's share is in the agent's queue, being retried
        stack.agent.kill()  # nothing in memory survives: only the file_storage queue
        gone.start()
        stack.agent.start()
        _wait(lambda: probes_on(0) | probes_on(1) >= set(probe_ids), 60,
              "every probe trace after the restarts (the agent's queue replayed)")
        assert not probes_on(0) & probes_on(1), "a probe trace reached both gateways"
        assert probes_on(1) - first, "the restarted gateway got nothing"

        # ---- phase 3: a burst over the agent's memory limit ---------------------------------
        _burst_is_refused_and_survived(stack)
    finally:
        if traffic is not None:
            traffic.stop_event.set()
            traffic.join(30)
        for process in mcp:
            _stop(process)
        if service is not None:
            service.terminate()
        stack.stop()


def _dashboard_failures(stack: LocalStack, deadline_s: float) -> list[str]:
    """Every dashboard panel query (``requires: otelcol`` ones too) until it has data: what never did."""
    checks = [(path.name, panel["title"], expr) for path in DASHBOARDS for panel, expr in dashboard_queries(json.loads(path.read_text()))]
    assert len(checks) >= 20
    failures = {check: "not queried" for check in checks}
    deadline = time.monotonic() + deadline_s
    while failures and time.monotonic() < deadline:
        for check in list(failures):
            data = stack.query(grafana_substitute(check[2], WINDOW))
            if "error" in data:
                failures[check] = data["error"]
            elif _has_data(data):
                del failures[check]
            else:
                failures[check] = "no finite value"
        if failures:
            time.sleep(1)
    return [f"  {d} / {t!r}: {e}\n      -> {why}" for (d, t, e), why in failures.items()]


def _alert_names_missing(stack: LocalStack, deadline_s: float) -> list[str]:
    missing = [s for s in _alert_metric_selectors() if not any(word in s for word in ABSENT_OK)]
    deadline = time.monotonic() + deadline_s
    while missing and time.monotonic() < deadline:
        missing = [s for s in missing if not stack.query(f"count({s})").get("result")]
        if missing:
            time.sleep(1)
    return missing


def _server_calls(stack: LocalStack) -> float:
    data = stack.query('sum(traces_span_metrics_calls_total{service_name="agent-service", span_kind="SPAN_KIND_SERVER"})')
    result = data.get("result") or []
    return float(result[0]["value"][1]) if result else 0.0


def _vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _burst_is_refused_and_survived(stack: LocalStack) -> None:
    agent = stack.agent
    assert agent is not None and agent.process is not None
    body = burst_logs(records=2000, values=500)  # ~3 MB per request, 1 M values decoded
    statuses: Counter = Counter()
    lock = threading.Lock()
    stop_at = time.monotonic() + 6.0

    def sender() -> None:
        for _ in range(40):  # bounded
            if time.monotonic() > stop_at:
                return
            status = _post(f"{stack.otlp_http}/v1/logs", body, timeout=30)
            with lock:
                statuses[status] += 1

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    refused = statuses[503] + statuses[429]
    assert refused > 0, f"the memory limiter refused nothing: {dict(statuses)}\n{agent.tail()}"
    assert agent.alive(), f"the agent died under the burst:\n{agent.tail()}"
    metrics = agent.own_metrics()
    assert any(v > 0 for k, v in metrics.items() if k.startswith("otelcol_receiver_refused_log_records")), {
        k: v for k, v in metrics.items() if "refused" in k}
    peak = _vm_hwm_mib(agent.process.pid)
    print(f"burst: {dict(statuses)}; agent peak RSS {peak:.0f} MiB (limit_mib {AGENT_MEMORY_LIMIT_MIB})")
    small = burst_logs(records=1, values=1)
    _wait(lambda: _post(f"{stack.otlp_http}/v1/logs", small) == 200, 30, "the agent accepting data again after the burst")
    assert urllib.request.urlopen(agent.health_url, timeout=5).status == 200
    assert os.path.exists(f"/proc/{agent.process.pid}")
