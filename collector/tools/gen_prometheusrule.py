"""Write collector/k8s/prometheusrule.yaml (Prometheus Operator) from collector/prometheus/alerts.yml,
alerts-resilience.yml, alerts-caches-queues.yml, alerts-agents.yml
and the SLO rules generated into collector/prometheus/slo-rules.yml (gen_slo_rules.py).

    python collector/tools/gen_prometheusrule.py          # rewrite
    python collector/tools/gen_prometheusrule.py --check  # exit 1 if it is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

COLLECTOR = Path(__file__).resolve().parents[1]
TARGET = COLLECTOR / "k8s" / "prometheusrule.yaml"
RULE_FILES = ("alerts.yml", "alerts-resilience.yml", "alerts-caches-queues.yml", "alerts-agents.yml", "slo-rules.yml")


def render() -> str:
    rules = {"groups": [group for name in RULE_FILES for group in yaml.safe_load((COLLECTOR / "prometheus" / name).read_text())["groups"]]}
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "agentwatch", "labels": {"app.kubernetes.io/part-of": "agentwatch", "role": "alert-rules"}},
        "spec": rules,
    }
    header = "# GENERATED from collector/prometheus/alerts.yml, alerts-resilience.yml, alerts-caches-queues.yml, alerts-agents.yml and slo-rules.yml by collector/tools/gen_prometheusrule.py; do not edit.\n"
    return header + yaml.safe_dump(doc, sort_keys=False, width=1000)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if TARGET.read_text() != text:
            print(f"{TARGET} is out of date: run python collector/tools/gen_prometheusrule.py")
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
