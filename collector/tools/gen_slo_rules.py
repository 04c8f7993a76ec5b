"""Write collector/prometheus/slo-rules.yml from the objectives in collector/prometheus/slo.yml.

    python collector/tools/gen_slo_rules.py          # rewrite
    python collector/tools/gen_slo_rules.py --check  # exit 1 if it is out of date

Multi-window, multi-burn-rate alerts as in the Google SRE workbook ("Alerting on SLOs"): for
each SLO, recording rules of its error ratio per `job` over every window the alerts use, and
one alert per burn-rate tier that fires when the error ratio over BOTH the long and the short
window is above ``burn_rate * (1 - objective)``. The long window makes it significant, the
short one makes it stop soon after the problem stops.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

COLLECTOR = Path(__file__).resolve().parents[1]
SOURCE = COLLECTOR / "prometheus" / "slo.yml"
TARGET = COLLECTOR / "prometheus" / "slo-rules.yml"

METRIC = "http_server_request_duration_seconds"
# The bucket boundaries agentwatch's server layer (and the FastAPI instrumentation) advise for
# http.server.request.duration: a latency threshold must be one, or no bucket counts it.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
_DURATION = re.compile(r"^(\d+)([mhd])$")
_SECONDS = {"m": 60, "h": 3600, "d": 86400}


def _seconds(window: str) -> int:
    match = _DURATION.match(window)
    if not match:
        raise ValueError(f"window {window!r}: use <n>m, <n>h or <n>d")
    return int(match.group(1)) * _SECONDS[match.group(2)]


def _le_matcher(threshold: float) -> str:
    """The `le` label of a bucket boundary: Python's exporter writes 1.0, the collector's 1."""
    if threshold not in HTTP_BUCKETS:
        raise ValueError(f"latency threshold_seconds {threshold} is not a bucket boundary of {METRIC}: {HTTP_BUCKETS}")
    if float(threshold).is_integer():
        return f'le=~"{int(threshold)}|{int(threshold)}\\\\.0"'
    return f'le="{threshold}"'


def _bad_ratio(slo: str, spec: dict[str, Any], window: str) -> str:
    total = f"sum by (job) (rate({METRIC}_count[{window}]))"
    if slo == "availability":
        return f'sum by (job) (rate({METRIC}_count{{http_response_status_code=~"5.."}}[{window}]))\n  / {total}'
    if slo == "latency":
        return f"1 - (\n  sum by (job) (rate({METRIC}_bucket{{{_le_matcher(spec['threshold_seconds'])}}}[{window}]))\n  / {total}\n)"
    raise ValueError(f"unknown SLO {slo!r}: availability or latency")


def _record(slo: str, window: str) -> str:
    return f"job:agentwatch_slo_{slo}_errors:ratio_rate{window}"


def _describe(slo: str, spec: dict[str, Any]) -> str:
    if slo == "availability":
        return "requests answered without 5xx"
    return f"requests answered within {spec['threshold_seconds']}s"


def build(config: dict[str, Any]) -> dict[str, Any]:
    """The rule file (as a dict) for the objectives in ``config``."""
    period = config["period"]
    tiers = config["burn_rates"]
    windows = sorted({w for tier in tiers for w in (tier["long_window"], tier["short_window"])}, key=_seconds)
    for tier in tiers:
        if _seconds(tier["short_window"]) >= _seconds(tier["long_window"]):
            raise ValueError(f"short window {tier['short_window']} must be shorter than {tier['long_window']}")
        if tier["severity"] not in ("critical", "warning"):
            raise ValueError("severity: critical (page) or warning (ticket)")
    groups = []
    for slo, spec in config["slos"].items():
        objective = float(spec["objective"])
        if not 0 < objective < 1:
            raise ValueError(f"{slo}: objective {objective} must be between 0 and 1")
        budget = 1 - objective
        rules: list[dict[str, Any]] = [{"record": _record(slo, w), "expr": _bad_ratio(slo, spec, w) + "\n"} for w in windows]
        name = f"Agentwatch{slo.capitalize()}BudgetBurn"
        for tier in tiers:
            threshold = round(tier["burn_rate"] * budget, 10)
            long_w, short_w = tier["long_window"], tier["short_window"]
            page = tier["severity"] == "critical"
            rules.append({
                "alert": name,
                "expr": f"{_record(slo, long_w)} > {threshold}\nand\n{_record(slo, short_w)} > {threshold}\n",
                "for": tier["for"],
                "labels": {"severity": tier["severity"], "slo": slo, "long_window": long_w, "short_window": short_w},
                "annotations": {
                    "summary": f"{{{{ $labels.job }}}}: {slo} error budget burning {tier['burn_rate']}x too fast ({long_w}/{short_w})",
                    "description": (
                        f"The {slo} SLO of {{{{ $labels.job }}}} ({objective:.2%} of {_describe(slo, spec)} over {period}) "
                        f"has failed for {{{{ $value | humanizePercentage }}}} of requests over the last {long_w} and still over "
                        f"the last {short_w}: more than {tier['burn_rate']} times the budget's pace ({threshold:.2%})"
                        + ("; at this rate the budget is gone in " + _exhaustion(period, tier["burn_rate"]) + "." if page else ".")
                    ),
                    "runbook_url": f"collector/README.md#{name.lower()}",
                },
            })
        groups.append({"name": f"agentwatch-slo-{slo}", "rules": rules})
    return {"groups": groups}


def _exhaustion(period: str, burn_rate: float) -> str:
    hours = _seconds(period) / 3600 / burn_rate
    return f"{hours:.0f} hours" if hours < 48 else f"{hours / 24:.0f} days"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the expressions) as literal blocks, as a person writes them."""


_Dumper.add_representer(str, lambda dumper, data: dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None))


def render() -> str:
    header = (
        "# GENERATED from collector/prometheus/slo.yml by collector/tools/gen_slo_rules.py; do not edit.\n"
        "# Tested by slo-rules.test.yml (promtool test rules) through tests/test_collector_slo.py.\n"
    )
    return header + yaml.dump(build(yaml.safe_load(SOURCE.read_text())), Dumper=_Dumper, sort_keys=False, width=1000)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET} is out of date: run python collector/tools/gen_slo_rules.py")
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
