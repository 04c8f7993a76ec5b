"""The add-on alert rule files next to alerts.yml (resilience, caches and queues, agents and tools): promtool
accepts each and its unit tests pass, the local Prometheus loads it in its own group, every rule is tested
firing and quiet, has a runbook in collector/README.md and reads only metric names agentwatch really exposes
(tests/_exposed_metrics.py: the real OpenTelemetry Prometheus exporter). What is particular to one file stays
in its own module (tests/test_collector_agents_alerts.py: where alerts-agents.yml ships)."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml
from _collector import COLLECTOR, SINGLE_ENV, promql_metric_names, require_tool
from _exposed_metrics import exposed_samples

pytestmark = SINGLE_ENV

PROM = COLLECTOR / "prometheus"
#: Each add-on rule file and the one group it holds.
RULE_FILES = {
    "alerts-resilience.yml": "agentwatch-resilience",
    "alerts-caches-queues.yml": "agentwatch-caches-queues",
    "alerts-agents.yml": "agentwatch-agents",
}


def _rules(name: str) -> dict:
    return yaml.safe_load((PROM / name).read_text())


def _alerts(name: str) -> list[dict]:
    return [rule for group in _rules(name)["groups"] for rule in group["rules"]]


ALERTS = [(name, alert) for name in RULE_FILES for alert in _alerts(name)]


@pytest.mark.parametrize("name", RULE_FILES)
def test_promtool_checks_and_unit_tests_pass(name):
    promtool = require_tool("promtool")
    proc = subprocess.run([promtool, "check", "rules", name], cwd=PROM, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and f"SUCCESS: {len(_alerts(name))} rules found" in proc.stdout, proc.stdout + proc.stderr
    tests = name.replace(".yml", ".test.yml")
    proc = subprocess.run([promtool, "test", "rules", tests], cwd=PROM, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", RULE_FILES)
def test_loaded_by_the_local_prometheus_next_to_alerts_yml_in_its_own_group(name):
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    assert config["rule_files"][0] == "alerts.yml" and name in config["rule_files"]
    groups = {group["name"] for group in _rules(name)["groups"]}
    assert groups == {RULE_FILES[name]}
    assert not groups & {group["name"] for group in _rules("alerts.yml")["groups"]}


@pytest.mark.parametrize("name", RULE_FILES)
def test_every_alert_is_tested_firing_and_quiet(name):
    tests = yaml.safe_load((PROM / name.replace(".yml", ".test.yml")).read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    for alert in _alerts(name):
        assert [c for c in cases if c["alertname"] == alert["alert"] and c.get("exp_alerts")], alert["alert"]
        assert [c for c in cases if c["alertname"] == alert["alert"] and not c.get("exp_alerts")], alert["alert"]


@pytest.mark.parametrize(("name", "alert"), ALERTS, ids=lambda value: value["alert"] if isinstance(value, dict) else value)
def test_alert_has_a_runbook_and_reads_only_metrics_that_exist(name, alert):
    assert alert["labels"]["severity"] in ("critical", "warning", "info")
    path, _, anchor = alert["annotations"]["runbook_url"].partition("#")
    assert path == "collector/README.md" and anchor == alert["alert"].lower()
    assert re.search(rf"^#+ {alert['alert']}\b", (COLLECTOR / "README.md").read_text(), re.M)
    names, regexes = promql_metric_names(alert["expr"])
    assert names and not regexes
    assert names <= exposed_samples(), sorted(names - exposed_samples())
