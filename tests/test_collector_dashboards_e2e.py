"""collector/grafana/dashboards/*.json end to end: every panel query has data.

A REAL Prometheus server (Debian `prometheus`, on loopback) scrapes the demo agent service
(examples/agent_service, unchanged, under ``opentelemetry-instrument`` with the
``prometheus`` metrics exporter and its pipeline named by the ``AGENTWATCH_*_TARGETS``
variables, like examples/run_demo.py) every second while the service serves realistic
traffic in a loop: chats of every intent (some below the low-confidence threshold), a
model failure answered 502, an unhandled exception (``#crash``) answered 500, document
lookups found and not found (404), and the health endpoints (which run the checks and so
record the health metrics), the function-calling loop (``POST /chat/tools``: a tool run, then a call of an
undeclared tool), and an MCP client calling the tools of tests/mcp_app/server.py (one failing) over Streamable
HTTP, both MCP processes scraped too (and the undeclared tool must fire alerts-agents.yml's
``AgentwatchUnknownToolCalls`` on the real series). Then every target ``expr`` of every panel of every dashboard
goes through Prometheus's HTTP API (``/api/v1/query``, evaluated now, while the traffic
still flows) and must return a non-empty result with at least one finite value. All the
failures are reported together (dashboard, panel title, expr).

Grafana variables are replaced by concrete values before the query, as Grafana does:
``$__rate_interval``, ``$__interval`` -> ``5s`` (Grafana's ``$__rate_interval`` is at least
four scrape intervals: 4 s with this 1 s scrape; 5 s keeps >= 4 samples in every window
despite scrape jitter), ``$__range`` -> ``5m``, ``$job`` -> ``.+`` (all scrape jobs).

A panel whose data can only exist when the OpenTelemetry Collector runs (its own
``otelcol_*`` metrics, the gateway's span metrics) is marked by a ``description`` containing
``requires: otelcol``; only those are skipped here, and such a panel may read nothing but
collector metrics (a marker cannot hide an agentwatch metric).
"""

from __future__ import annotations

import json
import math
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from _collector import (
    COLLECTOR,
    COLLECTOR_METRICS,
    DASHBOARDS,
    SINGLE_ENV,
    dashboard_queries,
    grafana_substitute,
    promql_metric_names,
    require_tool,
)
from _service import BIN, clean_env, free_port, start_service

pytestmark = [pytest.mark.slow, SINGLE_ENV]

REQUIRES_COLLECTOR = "requires: otelcol"
WINDOW = "5s"  # $__rate_interval / $__interval (see the module docstring)
SCRAPE_INTERVAL_S = 1
WARMUP_S = 8.0  # traffic flowing before the first query: the window plus a few scrapes
QUERY_DEADLINE_S = 15.0
MCP_APP = Path(__file__).resolve().parent / "mcp_app"  # retries of the failing queries (scrape timing), then report

TARGETS = {  # as examples/run_demo.py
    "AGENTWATCH_INTENT_TARGETS": "intents:classify=keyword",
    "AGENTWATCH_RAG_TARGETS": "knowledge:search=kb",
    "AGENTWATCH_PLANNER_TARGETS": "planner:Planner.plan=support",
    "AGENTWATCH_CRITIC_TARGETS": "planner:Critic.review=reviewer",
    "AGENTWATCH_CACHE_TARGETS": "knowledge:_match_expression=fts-query",
    "AGENTWATCH_TOOL_TARGETS": "order_tools:get_order_status",
    "AGENTWATCH_AGENT_TARGETS": "order_tools:answer_with_tools=order-helper",
}
# The function-calling loop (POST /chat/tools): the model asks for the declared tool, then (fake Gemini's
# "#call-NAME") for one the request did not declare -- the unknown-tool signal.
TOOL_CHATS = ["Where is my order?", "Cancel everything #call-delete_account"]
# The "Agents & tools" row's MCP panels: tests/mcp_app/server.py over Streamable HTTP and this client calling its
# tools in a loop (one that fails with isError), each under opentelemetry-instrument with its own /metrics.
MCP_CLIENT = """
import asyncio, sys
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

async def main(url):
    while True:
        try:
            async with streamable_http_client(url) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    for _ in range(20):
                        await session.call_tool("get_weather", {"city": "Paris"})
                        await session.call_tool("broken", {"city": "Paris"})
                        await asyncio.sleep(0.25)
        except Exception:  # the server went away: try again
            await asyncio.sleep(0.5)

asyncio.run(main(sys.argv[1]))
"""
# One round of traffic: every intent; "Tell me about Orbitly" and "Where is my data stored?"
# have no keyword (intent other, confidence 0.3: low confidence); plans needing one to three
# critique iterations (see test_demo_app.PLANS).
CHATS = [
    ("Hi! How are you today?", 200),
    ("Can I get a refund on my annual subscription?", 200),
    ("Boards are stuck and sync is slow since this morning", 200),
    ("I forgot my password, how do I reset it?", 200),
    ("Tell me about Orbitly", 200),
    ("Where is my data stored?", 200),
    ("What keyboard shortcuts are there?", 200),
    ("Goodbye!", 200),
    ("Can I start a board from a template for sprint planning?", 200),
    ("The desktop app shows an error on sync #fail-503", 502),  # fake Gemini 503 -> 502
    ("Why is the timeline view empty? #crash", 500),  # unhandled exception -> JSON 500
    # Resilience row: a 429 the SDK retries once (then an answer), one still limited after the retries
    # (answered 429), then three model failures in a row open the "gemini" breaker (aiobreaker) and the
    # next chat is refused (503); it lets a trial call through after AGENT_BREAKER_RESET_S (next round).
    ("Is there an API rate limit? #flaky-429-1", 200),
    ("Export every board as PDF #fail-429", 429),
    ("Sync fails again #fail-503", 502),
    ("Sync still fails #fail-503", 502),
    ("Sync keeps failing #fail-503", 502),
    ("Is the model back?", 503),
]
DOCUMENTS = [("kb-001", 200), ("kb-404", 404)]
# The demo's breaker stays open this long (AGENT_BREAKER_RESET_S): long enough that "Is the model back?" finds it
# open however slow the machine, and each round waits it out before the next round's first chat.
BREAKER_RESET_S = 1.0
HEALTH = ["/health/ready", "/health/detailed"]


def _get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _query(base: str, expr: str) -> dict:
    status, body = _get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    data = json.loads(body or b"{}")
    if status != 200 or data.get("status") != "success":
        return {"error": f"HTTP {status}: {data.get('errorType')} {data.get('error')}"}
    return data["data"]


def _has_data(data: dict) -> bool:
    """A non-empty result with at least one finite value (NaN/Inf: Grafana shows no value)."""
    result = data.get("result")
    if data.get("resultType") == "scalar":
        result = [{"value": result}]
    return bool(result) and any(math.isfinite(float(sample["value"][1])) for sample in result)


class Traffic(threading.Thread):
    """Rounds of requests until stopped; records every unexpected answer."""

    def __init__(self, service, chats: list[tuple[str, int | tuple[int, ...]]] | None = None):
        super().__init__(name="dashboard-traffic", daemon=True)
        self.service = service
        self.chats = CHATS if chats is None else chats  # (message, the status or the statuses it may get)
        self.stop_event = threading.Event()
        self.rounds = 0
        self.unexpected: list[str] = []

    def run(self) -> None:
        while not self.stop_event.is_set() and self.rounds < 1000:  # bounded
            for index, (message, expected) in enumerate(self.chats):
                status, body = self.service.request("POST", "/chat", {"message": message, "session_id": f"s-{index % 3}"})
                if status not in (expected if isinstance(expected, tuple) else (expected,)):
                    self.unexpected.append(f"/chat {message!r}: HTTP {status} != {expected} {str(body)[:200]}")
            for message in TOOL_CHATS:
                status, body = self.service.request("POST", "/chat/tools", {"message": message, "session_id": "tools"})
                if status != 200 or not isinstance(body, dict) or body.get("tool_calls") != 1:
                    self.unexpected.append(f"/chat/tools {message!r}: HTTP {status} {str(body)[:200]}")
            for doc_id, expected in DOCUMENTS:
                status, _ = self.service.request("GET", f"/documents/{doc_id}")
                if status != expected:
                    self.unexpected.append(f"/documents/{doc_id}: HTTP {status} != {expected}")
            for path in HEALTH:
                status, body = self.service.request("GET", path)
                if status != 200:
                    self.unexpected.append(f"{path}: HTTP {status} {str(body)[:200]}")
            self.rounds += 1
            self.stop_event.wait(BREAKER_RESET_S + 0.2)


def _start_prometheus(binary: str, tmp: Path, app_metrics_port: int, **more_jobs: int) -> tuple[subprocess.Popen, str, Path]:
    """Prometheus scraping the app (job ``agent-service``) and each of ``more_jobs`` (job name -> port)."""
    port = free_port()
    config = tmp / "prometheus.yml"
    jobs = {"agent-service": app_metrics_port, **{name.replace("_", "-"): p for name, p in more_jobs.items()}}
    config.write_text(
        "global:\n"
        f"  scrape_interval: {SCRAPE_INTERVAL_S}s\n"
        f"  evaluation_interval: {SCRAPE_INTERVAL_S}s\n"
        "scrape_configs:\n"
        + "".join(
            f"  - job_name: {job}\n"
            f"    scrape_interval: {SCRAPE_INTERVAL_S}s\n"
            f"    scrape_timeout: {SCRAPE_INTERVAL_S}s\n"
            "    static_configs:\n"
            f"      - targets: ['127.0.0.1:{job_port}']\n"
            for job, job_port in jobs.items())
    )
    log = tmp / "prometheus.log"
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=tmp,
    )
    return process, f"http://127.0.0.1:{port}", log


def _wait_prometheus_scraping(process: subprocess.Popen, base: str, log: Path, timeout: float = 20.0) -> None:
    """Until Prometheus answers and has scraped the app successfully (up == 1)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited ({process.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
        try:
            data = _query(base, 'up{job="agent-service"} == 1')
            if data.get("result"):
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"prometheus did not scrape the app within {timeout}s:\n{log.read_text(errors='replace')[-3000:]}")


def _wait_listening(process: subprocess.Popen, port: int, log: Path, timeout: float = 60.0) -> None:
    """Until ``process`` accepts TCP connections on ``port`` (a connect only: no request, no MCP session)."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"exited ({process.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {port} after {timeout}s") from None
            time.sleep(0.2)


def scraped_demo_env(tmp_path: Path, fake_gemini, metrics_port: int) -> dict[str, str]:
    """The demo service's environment for a Prometheus scrape: metrics on ``metrics_port``, no traces or logs,
    the AI targets on, and the "gemini" breaker closed again by the next round (see CHATS, Traffic.run)."""
    db = tmp_path / "knowledge.sqlite3"
    return clean_env(
        OTEL_METRICS_EXPORTER="prometheus",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(metrics_port),
        OTEL_TRACES_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_SERVICE_NAME="agent-service",
        **fake_gemini.env(),
        AGENT_DB_PATH=str(db),
        AGENTWATCH_HEALTH_SQLITE_PATH=str(db),
        PYTHONUNBUFFERED="1",
        AGENT_BREAKER_RESET_S=str(BREAKER_RESET_S),
        **TARGETS,
    )


def _stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _panel_checks() -> tuple[list[tuple[str, str, str]], list[str]]:
    """((dashboard, panel title, expr) to check, misuses of the requires-otelcol marker)."""
    checks, misuses = [], []
    for path in DASHBOARDS:
        for panel, expr in dashboard_queries(json.loads(path.read_text())):
            if REQUIRES_COLLECTOR in (panel.get("description") or ""):
                names, _ = promql_metric_names(grafana_substitute(expr, WINDOW))
                if not names <= COLLECTOR_METRICS:
                    misuses.append(f"{path.name} / {panel['title']!r}: marked {REQUIRES_COLLECTOR!r} but reads {sorted(names - COLLECTOR_METRICS)}")
                continue
            checks.append((path.name, panel["title"], expr))
    return checks, misuses


def test_every_dashboard_panel_has_data_from_the_demo(tmp_path, fake_gemini):
    prometheus = require_tool("prometheus")
    checks, misuses = _panel_checks()
    assert not misuses, "\n".join(misuses)
    assert len(checks) >= 25, checks  # the five dashboards' panels, nothing silently skipped

    service = prom = traffic = None
    mcp: list[subprocess.Popen] = []
    try:
        metrics_port = free_port()
        env = scraped_demo_env(tmp_path, fake_gemini, metrics_port)
        service = start_service(tmp_path, env)
        # started once the service answers (three instrumented starts at once are slow on a loaded machine)
        mcp_ports = {"mcp_server": free_port(), "mcp_client": free_port()}
        mcp_port = free_port()
        for job, command in (("mcp_server", [str(MCP_APP / "server.py"), "http", str(mcp_port)]),
                             ("mcp_client", ["-c", MCP_CLIENT, f"http://127.0.0.1:{mcp_port}/mcp"])):
            mcp_env = clean_env(OTEL_METRICS_EXPORTER="prometheus", OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
                                OTEL_EXPORTER_PROMETHEUS_PORT=str(mcp_ports[job]), OTEL_TRACES_EXPORTER="none",
                                OTEL_LOGS_EXPORTER="none", OTEL_SERVICE_NAME=job.replace("_", "-"))
            mcp.append(subprocess.Popen([str(BIN / "opentelemetry-instrument"), "python", *command], env=mcp_env,
                                        stdout=subprocess.DEVNULL, stderr=(tmp_path / f"{job}.err").open("w"),
                                        stdin=subprocess.DEVNULL))
            if job == "mcp_server":  # listening before the client connects (a session whose connect failed waits forever)
                _wait_listening(mcp[0], mcp_port, tmp_path / f"{job}.err")
        prom, base, log = _start_prometheus(prometheus, tmp_path, metrics_port, **mcp_ports)
        _wait_prometheus_scraping(prom, base, log)

        traffic = Traffic(service)
        traffic.start()
        time.sleep(WARMUP_S)

        failures: dict[tuple[str, str, str], str] = {check: "not queried" for check in checks}
        # the undeclared tool the traffic's model calls fires alerts-agents.yml's rule on the real series (labels included)
        rules = yaml.safe_load((COLLECTOR / "prometheus" / "alerts-agents.yml").read_text())["groups"][0]["rules"]
        unknown = next(rule["expr"] for rule in rules if rule["alert"] == "AgentwatchUnknownToolCalls")
        failures[("alerts-agents.yml", "AgentwatchUnknownToolCalls", unknown)] = "not queried"
        deadline = time.monotonic() + QUERY_DEADLINE_S
        while failures and time.monotonic() < deadline:
            for check in list(failures):
                data = _query(base, grafana_substitute(check[2], WINDOW))
                if "error" in data:
                    failures[check] = data["error"]
                elif _has_data(data) and (check[0] != "alerts-agents.yml" or any(
                        sample["metric"].get("gen_ai_tool_name") == "delete_account" for sample in data["result"])):
                    del failures[check]
                else:
                    failures[check] = f"no finite value: {json.dumps(data.get('result'))[:200]}"
            if failures:
                time.sleep(SCRAPE_INTERVAL_S)

        traffic.stop_event.set()
        traffic.join(30)
        assert not traffic.unexpected, "the service misbehaved:\n" + "\n".join(traffic.unexpected[:20])
        assert traffic.rounds >= 2, traffic.rounds
        assert not failures, f"{len(failures)} of {len(checks)} dashboard queries have no data:\n" + "\n".join(
            f"  {dashboard} / {title!r}: {expr}\n      -> {why}" for (dashboard, title, expr), why in failures.items()
        )
    finally:
        if traffic is not None:
            traffic.stop_event.set()
            traffic.join(30)
        _stop(prom)
        for process in mcp:
            _stop(process)
        if service is not None:
            service.terminate()
