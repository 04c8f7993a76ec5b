"""collector/prometheus/slo.yml -> slo-rules.yml: the objectives live in one file, the rules are
generated from it (and a stale copy fails), promtool accepts and unit-tests them (every burn-rate
tier of both SLOs fires, and stays quiet where it must), and they read only exposed metrics."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from _collector import COLLECTOR, COLLECTOR_METRICS, promql_metric_names, require_tool
from _exposed_metrics import exposed_samples

PROM = COLLECTOR / "prometheus"
TOOLS = COLLECTOR / "tools"
sys.path.insert(0, str(TOOLS))

import gen_slo_rules  # noqa: E402

from _collector import SINGLE_ENV

pytestmark = SINGLE_ENV

RULES = yaml.safe_load((PROM / "slo-rules.yml").read_text())
ALL = [rule for group in RULES["groups"] for rule in group["rules"]]
ALERTS = [rule for rule in ALL if "alert" in rule]


def test_regenerating_gives_the_committed_file():
    proc = subprocess.run([sys.executable, str(TOOLS / "gen_slo_rules.py"), "--check"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (PROM / "slo-rules.yml").read_text() == gen_slo_rules.render()


def test_objectives_come_from_slo_yml_only():
    """Change an objective in the settings and the alert thresholds follow."""
    config = yaml.safe_load((PROM / "slo.yml").read_text())
    config["slos"]["availability"]["objective"] = 0.999
    rules = [r for g in gen_slo_rules.build(config)["groups"] for r in g["rules"] if r.get("alert") == "AgentwatchAvailabilityBudgetBurn"]
    page = next(r for r in rules if r["labels"]["long_window"] == "1h")
    assert "> 0.0144\n" in page["expr"]  # 14.4 * (1 - 0.999)
    assert {r["labels"]["long_window"]: r["labels"]["short_window"] for r in rules} == {"1h": "5m", "6h": "30m", "1d": "2h", "3d": "6h"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["slos"]["latency"].update(threshold_seconds=2), "not a bucket boundary"),
        (lambda c: c["slos"]["availability"].update(objective=1.0), "between 0 and 1"),
        (lambda c: c["burn_rates"][0].update(short_window="2h"), "must be shorter"),
        (lambda c: c["burn_rates"][0].update(long_window="1w"), "use <n>m"),
        (lambda c: c["burn_rates"][0].update(severity="page"), "severity"),
    ],
)
def test_bad_settings_are_refused(change, message):
    config = yaml.safe_load((PROM / "slo.yml").read_text())
    change(config)
    with pytest.raises(ValueError, match=message):
        gen_slo_rules.build(config)


def test_integer_threshold_matches_both_le_spellings():
    """Python's exporter writes le="1.0", the collector's le="1": an integer threshold matches both."""
    assert gen_slo_rules._le_matcher(1) == 'le=~"1|1\\\\.0"'
    assert gen_slo_rules._le_matcher(2.5) == 'le="2.5"'


def test_promtool_check_and_test_rules():
    promtool = require_tool("promtool")
    check = subprocess.run([promtool, "check", "rules", "slo-rules.yml"], cwd=PROM, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(ALL)} rules found" in check.stdout
    test = subprocess.run([promtool, "test", "rules", "slo-rules.test.yml"], cwd=PROM, capture_output=True, text=True, timeout=120)
    assert test.returncode == 0, test.stdout + test.stderr


def test_every_tier_fires_somewhere_and_every_alert_is_quiet_somewhere():
    cases = [c for t in yaml.safe_load((PROM / "slo-rules.test.yml").read_text())["tests"] for c in t["alert_rule_test"]]
    for alert in ALERTS:
        labels = alert["labels"]
        fired = [e for c in cases if c["alertname"] == alert["alert"] for e in c["exp_alerts"] if all(e["exp_labels"].get(k) == v for k, v in labels.items())]
        assert fired, (alert["alert"], labels)
        quiet = [c for c in cases if c["alertname"] == alert["alert"] and not c["exp_alerts"]]
        assert quiet, alert["alert"]
        # a job burning slowly never pages
        pages = [e for c in cases if c["alertname"] == alert["alert"] for e in c["exp_alerts"] if e["exp_labels"]["severity"] == "critical"]
        assert all(e["exp_labels"]["job"] == "outage" for e in pages)


@pytest.mark.parametrize("rule", ALL, ids=lambda r: r.get("record") or f"{r['alert']}-{r['labels']['long_window']}")
def test_rules_read_only_exposed_metrics(rule):
    names, regexes = promql_metric_names(rule["expr"])
    recorded = {r["record"] for r in ALL if "record" in r}
    assert not regexes and names
    assert names <= exposed_samples() | COLLECTOR_METRICS | recorded, sorted(names - exposed_samples() - recorded)


@pytest.mark.parametrize("name", sorted({a["alert"] for a in ALERTS}))
def test_runbook_section(name):
    readme = (COLLECTOR / "README.md").read_text()
    assert f"\n### {name}\n" in readme
    assert all(a["annotations"]["runbook_url"] == f"collector/README.md#{name.lower()}" for a in ALERTS if a["alert"] == name)
