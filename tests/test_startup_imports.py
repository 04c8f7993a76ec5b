"""What agentwatch costs a start-up it does not run in (issue 14: start-up at most the distro's).

``opentelemetry-instrument`` runs agentwatch's ``opentelemetry_pre_instrument`` selection guard
whatever distro won. The guard must still say, in one line, that agentwatch's pipeline is not active,
but without importing that pipeline (configurator, exporters, scrubber: ~30 modules, ~60-100 ms
before any request). Checked on real ``opentelemetry-instrument`` runs, by the modules loaded.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import subprocess
import sys

import pytest
from _service import BIN, clean_env

#: Prints the agentwatch modules the process holds once the app runs (after every start-up hook).
SCRIPT = "import json, sys; print('MODULES=' + json.dumps(sorted(m for m in sys.modules if m.startswith('agentwatch'))))"
#: Modules of the pipeline agentwatch sets up: none may be loaded where it does not run.
PIPELINE = (
    "agentwatch.distro.configurator", "agentwatch.distro.distro", "agentwatch.distro.exporters",
    "agentwatch.distro.settings", "agentwatch.distro.scrub", "agentwatch.distro.logs", "agentwatch.distro.tracing",
)


def _ours() -> str:
    """agentwatch's instrumentors, switched off as the stock-distro run of benchmarks/overhead.py does."""
    return ",".join(ep.name for ep in md.entry_points(group="opentelemetry_instrumentor")
                    if ep.dist is not None and (ep.dist.metadata["Name"] or "").lower() == "agentwatch")


def _run(tmp_path, **env: str) -> tuple[list[str], str]:
    full_env = clean_env(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
                         AGENTWATCH_ENDPOINT_CHECK="false", OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=_ours(), **env)
    done = subprocess.run([str(BIN / "opentelemetry-instrument"), sys.executable, "-c", SCRIPT], env=full_env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("MODULES="))
    return json.loads(line.removeprefix("MODULES=")), done.stderr


def test_the_stock_distro_runs_without_importing_agentwatchs_pipeline(tmp_path):
    modules, stderr = _run(tmp_path, OTEL_PYTHON_DISTRO="distro", OTEL_PYTHON_CONFIGURATOR="configurator")
    # The guard still speaks (one line, on stderr)...
    assert stderr.count("agentwatch: the distro that ran is not agentwatch's") == 1, stderr
    assert "opentelemetry.distro.OpenTelemetryDistro" in stderr
    # ... without loading what it reports as not running.
    loaded = [m for m in modules if m.startswith(PIPELINE)]
    assert not loaded, loaded
    assert "agentwatch.distro.selection" in modules  # (the guard did run here)


@pytest.mark.parametrize(("env", "what"), [
    ({"OTEL_PYTHON_DISTRO": "agentwatch", "OTEL_PYTHON_CONFIGURATOR": "configurator"}, "configurator"),
    ({"OTEL_PYTHON_DISTRO": "distro", "OTEL_PYTHON_CONFIGURATOR": "agentwatch"}, "distro"),
])
def test_half_a_selection_is_still_reported(tmp_path, env, what):
    """agentwatch's distro without its configurator, or the reverse: its pipeline is not active, said once."""
    _, stderr = _run(tmp_path, **env)
    assert stderr.count(f"agentwatch: the {what} that ran is not agentwatch's") == 1, stderr


def test_agentwatch_selected_is_not_reported(tmp_path):
    modules, stderr = _run(tmp_path)
    assert "agentwatch:" not in stderr, stderr
    assert "agentwatch.distro.configurator" in modules
