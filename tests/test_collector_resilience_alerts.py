"""collector/prometheus/alerts-resilience.yml (retries, circuit breakers, Gemini rate limits): promtool accepts
it and its unit tests pass, every rule is tested firing and quiet, has a runbook, and reads only metrics
agentwatch really exposes; the local Prometheus config loads it next to alerts.yml."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from _collector import COLLECTOR, promql_metric_names, require_tool
from _exposed_metrics import exposed_samples

from _collector import SINGLE_ENV

pytestmark = SINGLE_ENV

PROM = COLLECTOR / "prometheus"
RULES = yaml.safe_load((PROM / "alerts-resilience.yml").read_text())
ALERTS = [rule for group in RULES["groups"] for rule in group["rules"]]


def test_promtool_checks_and_unit_tests_pass():
    promtool = require_tool("promtool")
    for command in (["check", "rules", "alerts-resilience.yml"], ["test", "rules", "alerts-resilience.test.yml"]):
        proc = subprocess.run([promtool, *command], cwd=PROM, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_loaded_by_the_local_prometheus_next_to_alerts_yml():
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    assert config["rule_files"][0] == "alerts.yml" and "alerts-resilience.yml" in config["rule_files"]
    names = {g["name"] for g in RULES["groups"]}
    assert names == {"agentwatch-resilience"}
    assert not names & {g["name"] for g in yaml.safe_load((PROM / "alerts.yml").read_text())["groups"]}


def test_every_alert_is_tested_firing_and_quiet():
    tests = yaml.safe_load((PROM / "alerts-resilience.test.yml").read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    for alert in ALERTS:
        firing = [c for c in cases if c["alertname"] == alert["alert"] and c.get("exp_alerts")]
        quiet = [c for c in cases if c["alertname"] == alert["alert"] and not c.get("exp_alerts")]
        assert firing and quiet, alert["alert"]


@pytest.mark.parametrize("alert", ALERTS, ids=lambda a: a["alert"])
def test_alert_has_a_runbook_and_reads_only_metrics_that_exist(alert):
    assert alert["labels"]["severity"] in ("critical", "warning", "info")
    path, _, anchor = alert["annotations"]["runbook_url"].partition("#")
    assert path == "collector/README.md" and anchor == alert["alert"].lower()
    assert re.search(rf"^#+ .*{alert['alert']}\b", (COLLECTOR / "README.md").read_text(), re.M)
    names, regexes = promql_metric_names(alert["expr"])
    assert names and not regexes
    assert names <= exposed_samples(), sorted(names - exposed_samples())
