"""Helpers of the collector/ bundle tests (a test helper, not a test file).

System tools (Debian `prometheus` for promtool, `golang-go` for Go's regexp,
`prometheus-alertmanager` for amtool and alertmanager) are
installed by `make test` (Makefile: $(TOOLS_STAMP)). A test that needs one FAILS when it
is missing under CI (CI=true) and is skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COLLECTOR = ROOT / "collector"
sys.path.insert(0, str(COLLECTOR / "tools"))

import otelcol_check  # noqa: E402

APT_PACKAGE = {"promtool": "prometheus", "go": "golang-go", "prometheus": "prometheus", "amtool": "prometheus-alertmanager", "prometheus-alertmanager": "prometheus-alertmanager"}


def require_tool(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None)
    if path:
        return path
    reason = f"{name} is not installed (Debian package {APT_PACKAGE.get(name, name)}; `make test` installs it)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason + " -- required under CI")
    pytest.skip(reason)
    raise AssertionError("unreachable")


COLLECTOR_BINARY = COLLECTOR / "distribution" / "build" / "otelcol-agentwatch"


# The collector tests run once, in the main venv, after the two resolutions' runs (`make test`).
SINGLE_ENV = pytest.mark.single_env(
    reason="the collector bundle (its binary, configs, rules, dashboards; end to end with the demo service): checked once; "
    "agentwatch's own export at both resolutions is tested by test_end_to_end.py"
)


def collector_binary() -> str:
    """The collector distribution built by ``make collector`` (``make test`` builds it when missing).

    Missing: the test FAILS under CI (CI=true) and is skipped with the reason otherwise.
    """
    if os.access(COLLECTOR_BINARY, os.X_OK):
        return str(COLLECTOR_BINARY)
    reason = f"{COLLECTOR_BINARY.relative_to(ROOT)} is not built (`make collector`; `make test` builds it)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason + " -- required under CI")
    pytest.skip(reason)
    raise AssertionError("unreachable")


__all__ = ["COLLECTOR", "COLLECTOR_BINARY", "ROOT", "SINGLE_ENV", "collector_binary", "otelcol_check", "require_tool"]


# --- Grafana dashboards ----------------------------------------------------------------------
DASHBOARDS = sorted((COLLECTOR / "grafana" / "dashboards").glob("*.json"))


def dashboard_queries(dashboard: dict) -> list[tuple[dict, str]]:
    """``(panel, PromQL expression)`` of every target of every panel of a dashboard."""
    return [(panel, target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]


def grafana_substitute(expr: str, window: str = "5m") -> str:
    """Grafana variables -> plain PromQL, as Grafana does before sending the query.

    ``$__rate_interval`` and ``$__interval`` become ``window``, ``$__range`` 5m, ``$job`` any job.
    """
    for variable, value in (("$__rate_interval", window), ("$__interval", window), ("$__range", "5m"), ("$job", ".+")):
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unsubstituted Grafana variable in {expr}"
    return expr


# --- PromQL metric names ---------------------------------------------------------------------
import re  # noqa: E402

# Self-metrics of the collector 0.161 (its Prometheus reader; with or without the _total
# suffix depending on `without_type_suffix`), and the span_metrics connector's RED metrics
# as the gateway config names them (namespace traces.span.metrics, unit s).
COLLECTOR_METRICS = frozenset(
    [f"otelcol_receiver_{kind}_{item}{suffix}" for kind in ("accepted", "refused") for item in ("spans", "metric_points", "log_records") for suffix in ("", "_total")]
    + [f"otelcol_exporter_{kind}_{item}{suffix}" for kind in ("sent", "send_failed", "enqueue_failed") for item in ("spans", "metric_points", "log_records") for suffix in ("", "_total")]
    + ["otelcol_exporter_queue_size", "otelcol_exporter_queue_capacity", "up"]
    + ["traces_span_metrics_calls_total"] + [f"traces_span_metrics_duration_seconds_{s}" for s in ("bucket", "count", "sum")]
)
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan"}


def promql_metric_names(expr: str) -> tuple[set[str], list[str]]:
    """(metric names used by a PromQL expression, regexes used in {__name__=~"..."} selectors)."""
    name_regexes = re.findall(r'__name__\s*=~\s*"([^"]*)"', expr)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\boffset\s+-?(?:\d+(?:ms|[smhdwy]))+", " ", text)  # `offset 1h`: a duration, not a name
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        token = match.group(0)
        rest = text[match.end():].lstrip()
        if token.lower() in _KEYWORDS or rest.startswith("("):
            continue
        if re.fullmatch(r"\d+[smhdwy]", token):
            continue
        names.add(token)
    return names, name_regexes
