"""The alert and SLO rules read series a real run really has, labels included.

The offline tests prove every metric NAME a rule reads is exposed; this one proves the rules'
label matchers and groupings (``http_response_status_code``, ``error_type``, ``server_address``,
``db_system_name``, ``state``, ``device``, ``le="2.5"``...) meet real series. As in
test_collector_dashboards_e2e.py, a REAL Prometheus (Debian ``prometheus``, loopback) scrapes the
demo service (under ``opentelemetry-instrument``, system metrics included) every second while it
serves every kind of traffic, here with Gemini 429s too. Then, for every rule of alerts.yml and
every recording rule of slo-rules.yml that does not need the collector, the rule's expression
without its final threshold, with its range windows shortened to 10s, must return a finite value:
the quantity the alert compares is there. The service-down rule for OTLP-only services
(``AgentwatchServiceSilent``) must find the live service's heartbeat growing, and so not fire.
"""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
import yaml
from _collector import COLLECTOR, COLLECTOR_METRICS, SINGLE_ENV, promql_metric_names, require_tool
from _service import free_port, start_service
from test_collector_dashboards_e2e import (
    CHATS,
    SCRAPE_INTERVAL_S,
    Traffic,
    _has_data,
    _query,
    _start_prometheus,
    _stop,
    _wait_prometheus_scraping,
    scraped_demo_env,
)

pytestmark = [pytest.mark.slow, SINGLE_ENV]

WARMUP_S = 12.0
QUERY_DEADLINE_S = 20.0
NEEDS_COLLECTOR = {"up"} ^ COLLECTOR_METRICS  # otelcol_* and span metrics; `up` exists without a collector


class _QuotaErrors(threading.Thread):
    """A chat that makes the fake Gemini answer 429 (RESOURCE_EXHAUSTED), every half second."""

    def __init__(self, service) -> None:
        super().__init__(name="quota-errors", daemon=True)
        self.service = service
        self.stop_event = threading.Event()
        self.unexpected: list[str] = []

    def run(self) -> None:
        for _ in range(2000):  # bounded
            if self.stop_event.wait(0.5):
                return
            status, body = self.service.request("POST", "/chat", {"message": "Summarise my boards #fail-429", "session_id": "q"})
            # still limited after the SDK's retries: the demo answers 429; 503 while the main traffic has the
            # demo's "gemini" breaker open (its #fail-503 chats)
            if status not in (429, 503):
                self.unexpected.append(f"#fail-429: HTTP {status} not in (429, 503) {str(body)[:200]}")


def _signal(expr: str) -> str:
    """The compared quantity of a rule: without its final threshold, windows of 10s."""
    expr = re.sub(r"\s*(>|<|==|!=|>=|<=)\s*[0-9.e+]+\s*$", "", expr.strip())
    return re.sub(r"\[\d+[smhd]\]", "[10s]", expr)


def _checks() -> dict[str, str]:
    checks = {}
    alerts = yaml.safe_load((COLLECTOR / "prometheus" / "alerts.yml").read_text())
    for rule in (r for g in alerts["groups"] for r in g["rules"]):
        names, regexes = promql_metric_names(rule["expr"])
        if regexes or names & NEEDS_COLLECTOR:
            continue
        if rule["alert"] == "AgentwatchServiceSilent":  # A unless B: B is the live heartbeat
            checks[rule["alert"] + " heartbeat"] = _signal(rule["expr"].split("unless", 1)[1])
            continue
        checks[f"{rule['alert']} ({rule['labels']['severity']})"] = _signal(rule["expr"])
    slo = yaml.safe_load((COLLECTOR / "prometheus" / "slo-rules.yml").read_text())
    for rule in (r for g in slo["groups"] for r in g["rules"] if "record" in r):
        checks[rule["record"]] = _signal(rule["expr"])
    return checks


def test_every_rule_reads_real_series(tmp_path, fake_gemini):
    prometheus = require_tool("prometheus")
    checks = _checks()
    assert len(checks) >= 30, sorted(checks)
    silent = next(r for g in yaml.safe_load((COLLECTOR / "prometheus" / "alerts.yml").read_text())["groups"] for r in g["rules"] if r["alert"] == "AgentwatchServiceSilent")

    service = prom = traffic = None
    try:
        metrics_port = free_port()
        env = scraped_demo_env(tmp_path, fake_gemini, metrics_port)
        service = start_service(tmp_path, env)
        prom, base, log = _start_prometheus(prometheus, tmp_path, metrics_port)
        _wait_prometheus_scraping(prom, base, log)

        # The 429 thread above runs beside the main traffic: a 429 between the three #fail-503 chats counts as a
        # success for the demo's aiobreaker (rate limits are excluded errors), so the breaker may not open and
        # "Is the model back?" may be answered. The breaker itself is tested by test_collector_dashboards_e2e.py.
        traffic = Traffic(service, [(m, (200, 503) if m == "Is the model back?" else e) for m, e in CHATS])
        quota = _QuotaErrors(service)  # Gemini's 429, answered 502 by the demo like any model failure
        try:
            traffic.start()
            quota.start()
            time.sleep(WARMUP_S)

            failures = dict.fromkeys(checks, "not queried")
            deadline = time.monotonic() + QUERY_DEADLINE_S
            while failures and time.monotonic() < deadline:
                for name in list(failures):
                    data = _query(base, checks[name])
                    if "error" in data:
                        failures[name] = data["error"]
                    elif _has_data(data):
                        del failures[name]
                    else:
                        failures[name] = f"no finite value: {json.dumps(data.get('result'))[:200]}"
                if failures:
                    time.sleep(SCRAPE_INTERVAL_S)
            alive = _query(base, re.sub(r"\[5m\]", "[10s]", silent["expr"]))
        finally:
            for thread in (traffic, quota):
                thread.stop_event.set()
                thread.join(30)
        assert not traffic.unexpected and not quota.unexpected, "the service misbehaved:\n" + "\n".join((traffic.unexpected + quota.unexpected)[:20])
        assert not failures, f"{len(failures)} of {len(checks)} rules read nothing real:\n" + "\n".join(
            f"  {name}: {checks[name]}\n      -> {why}" for name, why in failures.items()
        )
        assert alive.get("result") == [], f"AgentwatchServiceSilent would fire for a live service: {alive}"
    finally:
        if traffic is not None:
            traffic.stop_event.set()
        _stop(prom)
        if service is not None:
            service.terminate()
