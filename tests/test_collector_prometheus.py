"""collector/prometheus/alerts.yml: promtool accepts it, its unit tests pass, every rule is
documented and tested firing and not firing, and every metric it reads is one agentwatch
(or the collector) really exposes to Prometheus."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from _collector import COLLECTOR, COLLECTOR_METRICS, promql_metric_names, require_tool
from _exposed_metrics import exposed_samples

from _collector import SINGLE_ENV

pytestmark = SINGLE_ENV

PROM = COLLECTOR / "prometheus"
RULES = yaml.safe_load((PROM / "alerts.yml").read_text())
ALERTS = [rule for group in RULES["groups"] for rule in group["rules"]]


def test_promtool_check_rules():
    promtool = require_tool("promtool")
    proc = subprocess.run([promtool, "check", "rules", "alerts.yml"], cwd=PROM, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in proc.stdout


def test_promtool_test_rules():
    promtool = require_tool("promtool")
    proc = subprocess.run([promtool, "test", "rules", "alerts.test.yml"], cwd=PROM, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_alert_is_tested_firing_and_quiet():
    """Each rule (alert name and severity tier) fires in some case and is expected quiet in another."""
    tests = yaml.safe_load((PROM / "alerts.test.yml").read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    for alert in ALERTS:
        name, severity = alert["alert"], alert["labels"]["severity"]
        firing = [e for c in cases if c["alertname"] == name for e in c.get("exp_alerts") or [] if e["exp_labels"]["severity"] == severity]
        quiet = [c for c in cases if c["alertname"] == name and not c.get("exp_alerts")]
        assert firing and quiet, (name, severity)
        for expected in firing:
            assert set(expected["exp_annotations"]) == {"summary", "description", "runbook_url"}, name


def test_tiers_of_one_alert_differ_only_in_threshold_and_severity():
    """Warning and critical rules of one alert share their grouping, so Alertmanager's inhibition
    (equal: alertname, job) silences the warning while the critical fires."""
    by_name: dict[str, list[dict]] = {}
    for alert in ALERTS:
        by_name.setdefault(alert["alert"], []).append(alert)
    tiered = {name: rules for name, rules in by_name.items() if len(rules) > 1}
    assert {"AgentwatchHighErrorRatio", "AgentwatchHighLatencyP99"} <= set(tiered)
    for name, rules in tiered.items():
        assert sorted(r["labels"]["severity"] for r in rules) == ["critical", "warning"], name
        shapes = {re.sub(r"[\d.]+\s*$", "N", r["expr"].strip()) for r in rules}
        assert len(shapes) == 1, f"{name}: the tiers must be one expression with two thresholds"


@pytest.mark.parametrize("alert", ALERTS, ids=lambda a: a["alert"])
def test_alert_is_complete_and_has_a_runbook(alert):
    assert alert["labels"]["severity"] in ("critical", "warning", "info")
    assert re.fullmatch(r"\d+[mh]", alert["for"])
    annotations = alert["annotations"]
    assert annotations["summary"] and annotations["description"]
    path, _, anchor = annotations["runbook_url"].partition("#")
    assert path == "collector/README.md" and anchor == alert["alert"].lower()
    readme = (COLLECTOR / "README.md").read_text()
    assert re.search(rf"^#+ .*{alert['alert']}\b", readme, re.M), f"no runbook section for {alert['alert']}"


@pytest.mark.parametrize("alert", ALERTS, ids=lambda a: a["alert"])
def test_alert_reads_only_metrics_that_exist(alert):
    names, name_regexes = promql_metric_names(alert["expr"])
    known = exposed_samples() | COLLECTOR_METRICS
    assert names or name_regexes, alert["expr"]
    assert names <= known, sorted(names - known)
    for pattern in name_regexes:
        assert [m for m in COLLECTOR_METRICS if re.fullmatch(pattern, m)], pattern


def test_local_prometheus_config():
    promtool = require_tool("promtool")
    proc = subprocess.run([promtool, "check", "config", "prometheus.yml"], cwd=PROM, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_operations_doc_lists_every_alert_with_its_severity_and_for():
    """docs/operations.md's alert table: one row per rule of alerts.yml and slo-rules.yml, with
    the rule's severity and `for:` (and burn-rate windows), and nothing else."""
    slo = yaml.safe_load((PROM / "slo-rules.yml").read_text())
    rules = ALERTS + [r for g in slo["groups"] for r in g["rules"] if "alert" in r]
    text = (COLLECTOR.parent / "docs" / "operations.md").read_text()
    rows = re.findall(r"^\| `(Agentwatch\w+)` \| (\w+) \| (.*) \|$", text, re.M)
    assert len(rows) == len(rules)
    for rule in rules:
        labels = rule["labels"]
        matching = [
            row for row in rows
            if row[0] == rule["alert"] and row[1] == labels["severity"] and row[2].endswith(f"(for {rule['for']})")
            and ("long_window" not in labels or f"over {labels['long_window']}/{labels['short_window']}" in row[2])
        ]
        assert len(matching) == 1, (rule["alert"], labels["severity"], rule["for"])


@pytest.mark.parametrize("alert", [a for a in ALERTS if re.search(r"\b(system|process)_", a["expr"])], ids=lambda a: a["alert"])
def test_system_metric_labels_are_the_instrumentations(alert):
    """The labels a saturation/heartbeat rule matches on (state, device, cpu...) are on the series the
    real opentelemetry-instrumentation-system-metrics instrumentor exports."""
    from _exposed_metrics import exposed_labels

    for metric, matchers in re.findall(r"\b((?:system|process)_[a-z_]+)\{([^}]*)\}", alert["expr"]):
        used = set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
        assert used <= exposed_labels(metric), (metric, sorted(used - exposed_labels(metric)))
    for metric in re.findall(r"\b((?:system|process)_[a-z_]+)\b", alert["expr"]):
        assert exposed_labels(metric), f"{metric}: not exported by the system-metrics instrumentor"
