"""collector/grafana/dashboards/*.json: well-formed dashboards whose every panel query is
valid PromQL (promtool) and reads only metrics agentwatch really exposes to Prometheus."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from _collector import COLLECTOR_METRICS, DASHBOARDS, dashboard_queries, grafana_substitute, promql_metric_names, require_tool
from _exposed_metrics import exposed_samples

from _collector import SINGLE_ENV

pytestmark = SINGLE_ENV

def test_the_dashboards():
    assert [p.stem for p in DASHBOARDS] == ["agent-pipeline", "genai", "health", "resilience", "service-overview"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_structure(path):
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] == f"agentwatch-{ {'service-overview': 'service', 'agent-pipeline': 'agent'}.get(path.stem, path.stem)}"
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["title"].startswith("agentwatch / ")
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "job"}
    for panel in dashboard["panels"]:
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"} and all(isinstance(v, int) for v in panel["gridPos"].values())
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] == "row":  # a section header: no query of its own
            assert not panel.get("targets"), panel["title"]
            continue
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs))
    for panel, expr in dashboard_queries(dashboard):
        assert 'job=~"$job"' in expr, panel["title"]  # every query follows the service selector


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_query_reads_existing_metrics(path):
    known = exposed_samples() | COLLECTOR_METRICS
    for panel, expr in dashboard_queries(json.loads(path.read_text())):
        names, regexes = promql_metric_names(grafana_substitute(expr))
        assert names and not regexes, panel["title"]
        assert names <= known, (panel["title"], sorted(names - known))


def test_every_query_is_valid_promql(tmp_path):
    """promtool parses each query (wrapped as a recording rule)."""
    promtool = require_tool("promtool")
    rules = []
    for path in DASHBOARDS:
        for index, (_panel, expr) in enumerate(dashboard_queries(json.loads(path.read_text()))):
            rules.append({"record": f"dashboard:{re.sub(r'[^a-z]', '_', path.stem)}:q{index}", "expr": grafana_substitute(expr)})
    file = tmp_path / "dashboard-queries.yml"
    file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    proc = subprocess.run([promtool, "check", "rules", str(file)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules)} rules found" in proc.stdout
