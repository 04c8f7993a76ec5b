"""collector/prometheus/alerts-agents.yml ships with the other rule files: the generated PrometheusRule and the
kustomization's ConfigMap carry it (the checks every add-on rule file shares: tests/test_collector_rule_files.py)."""

from __future__ import annotations

import yaml
from _collector import COLLECTOR

RULES = yaml.safe_load((COLLECTOR / "prometheus" / "alerts-agents.yml").read_text())


def test_shipped_with_the_other_rule_files():
    import sys

    sys.path.insert(0, str(COLLECTOR / "tools"))
    try:
        import gen_prometheusrule
    finally:
        sys.path.remove(str(COLLECTOR / "tools"))
    assert "alerts-agents.yml" in gen_prometheusrule.RULE_FILES
    rule = yaml.safe_load((COLLECTOR / "k8s" / "prometheusrule.yaml").read_text())
    assert RULES["groups"][0] in rule["spec"]["groups"]
    kustomization = yaml.safe_load((COLLECTOR / "kustomization.yaml").read_text())
    files = next(g["files"] for g in kustomization["configMapGenerator"] if g["name"] == "prometheus-agentwatch-alerts")
    assert "alerts-agents.yml=prometheus/alerts-agents.yml" in files
