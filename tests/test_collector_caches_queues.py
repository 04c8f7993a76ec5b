"""collector/prometheus/alerts-caches-queues.yml: promtool accepts it and its unit tests pass, every rule is
tested firing and quiet, documented with a runbook, and reads only metric names the caches / queues
instrumentors really expose to Prometheus (through the real OpenTelemetry Prometheus exporter)."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from _collector import COLLECTOR, promql_metric_names, require_tool

from _collector import SINGLE_ENV

pytestmark = SINGLE_ENV

PROM = COLLECTOR / "prometheus"
RULES_FILE, TESTS_FILE = "alerts-caches-queues.yml", "alerts-caches-queues.test.yml"
ALERTS = [rule for group in yaml.safe_load((PROM / RULES_FILE).read_text())["groups"] for rule in group["rules"]]


def _exposed() -> set[str]:
    """Sample names of every cache / queue metric, as the Prometheus exporter writes them."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.metrics import Observation
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import CollectorRegistry, generate_latest

    from agentwatch import semconv as sc

    registry = CollectorRegistry(auto_describe=True)
    provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])  # pyright: ignore[reportCallIssue]
    meter = provider.get_meter("t")
    for metric in sc.CACHE_QUEUE_METRICS:
        metric.create(meter, [lambda options, m=metric: [Observation(1, {key: "x" for key in m.attributes})]])
    text = generate_latest(registry).decode()
    provider.shutdown()
    return {re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0) for line in text.splitlines()  # pyright: ignore[reportOptionalMemberAccess]
            if line and not line.startswith("#")}


def test_promtool_check_and_test_rules():
    promtool = require_tool("promtool")
    proc = subprocess.run([promtool, "check", "rules", RULES_FILE], cwd=PROM, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and f"SUCCESS: {len(ALERTS)} rules found" in proc.stdout, proc.stdout + proc.stderr
    proc = subprocess.run([promtool, "test", "rules", TESTS_FILE], cwd=PROM, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout, proc.stdout + proc.stderr


def test_the_local_prometheus_loads_these_rules():
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    assert RULES_FILE in config["rule_files"]


def test_every_alert_is_tested_firing_and_quiet():
    cases = [case for test in yaml.safe_load((PROM / TESTS_FILE).read_text())["tests"] for case in test["alert_rule_test"]]
    for alert in ALERTS:
        name = alert["alert"]
        assert [c for c in cases if c["alertname"] == name and c.get("exp_alerts")], name
        assert [c for c in cases if c["alertname"] == name and not c.get("exp_alerts")], name


@pytest.mark.parametrize("alert", ALERTS, ids=lambda a: a["alert"])
def test_alert_is_complete_with_a_runbook_and_real_metric_names(alert):
    assert alert["labels"]["severity"] in ("critical", "warning", "info")
    path, _, anchor = alert["annotations"]["runbook_url"].partition("#")
    assert path == "collector/README.md" and anchor == alert["alert"].lower()
    assert re.search(rf"^#+ {alert['alert']}\b", (COLLECTOR / "README.md").read_text(), re.M)
    names, regexes = promql_metric_names(alert["expr"])
    assert names and not regexes
    assert names <= _exposed(), sorted(names - _exposed())
