"""User health checks declared through the ``agentwatch_health_checks`` entry-point group
(a real dist-info on sys.path, read by importlib.metadata in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from _service import clean_env

PLUGIN = textwrap.dedent(
    """
    CALLS = []

    def queue_ok():
        CALLS.append(1)

    def broken_check():
        raise RuntimeError("queue backlog too high")
    """
)

PROBE = textwrap.dedent(
    """
    import asyncio, json
    from agentwatch.web import checks
    checks.load_entry_points()
    checks.load_entry_points()  # once only
    found = checks.declared()
    runner = checks.Runner()
    results = asyncio.run(runner.run_many([found["queue"], found["backlog"]]))
    print(json.dumps({
        "names": sorted(n for n in found if n in ("queue", "backlog", "missing")),
        "status": {r.name: r.status for r, _ in results},
    }))
    """
)


def test_entry_point_checks_are_registered_and_run(tmp_path):
    site = tmp_path / "site"
    dist = site / "acme_checks-1.0.dist-info"
    dist.mkdir(parents=True)
    (site / "acme_checks.py").write_text(PLUGIN)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-checks\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[agentwatch_health_checks]\n"
        "queue = acme_checks:queue_ok\n"
        "backlog = acme_checks:broken_check\n"
        "missing = acme_checks:does_not_exist\n"
    )
    env = clean_env(PYTHONPATH=str(site))
    proc = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["names"] == ["backlog", "queue"]
    assert result["status"] == {"queue": "healthy", "backlog": "unhealthy"}
    warnings = [line for line in proc.stderr.splitlines() if "entry point 'missing'" in line]
    assert len(warnings) == 1, proc.stderr


def test_loading_the_checks_does_not_scan_every_distribution_again(monkeypatch):
    """``opentelemetry-instrument`` has read every entry point by the time the web layer loads the checks:
    they come from OpenTelemetry's cached view, not from another scan of each installed distribution's
    entry_points.txt (~8 ms of every start-up)."""
    import importlib.metadata

    from opentelemetry.util._importlib_metadata import entry_points

    from agentwatch.web import checks

    entry_points(group="opentelemetry_instrumentor")  # what opentelemetry-instrument did at start-up
    scans: list[int] = []
    real = importlib.metadata.distributions
    monkeypatch.setattr(importlib.metadata, "distributions", lambda **kw: (scans.append(1), real(**kw))[1])
    monkeypatch.setattr(checks, "_entry_points_loaded", False)
    checks.load_entry_points()
    assert scans == []
