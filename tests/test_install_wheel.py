"""agentwatch as a service owner installs it: the built wheel into a fresh venv that already has the
newest OpenTelemetry SDK and FastAPI. Nothing may be downgraded, ``uv pip check`` must be clean, and a
small FastAPI app under ``opentelemetry-instrument`` must send its telemetry.

Everything comes from the package registry through uv (and its cache): the wheel is built with
``uv build``, the venv made with ``uv venv``. The service's packages are pinned to the newest releases
this test was written against (OpenTelemetry 1.45.2 / 0.66b2), which the lagging contrib packages
(opentelemetry-instrumentation-sqlite3 and -aiohttp-client, at 0.66b1) do not admit: they are extras,
and agentwatch's sqlite3 instrumentor is a no-op without them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from _service import BIN, ROOT, free_port

pytestmark = [pytest.mark.slow, pytest.mark.single_env(
    reason="builds its own venvs with the newest OpenTelemetry pinned: does not use the running venv's packages"
)]

UV = BIN / "uv"
# What the service had before agentwatch: the newest OpenTelemetry SDK, a contrib instrumentation of
# the same release, FastAPI and uvicorn.
SERVICE = (
    "opentelemetry-api==1.45.2",
    "opentelemetry-sdk==1.45.2",
    "opentelemetry-instrumentation-fastapi==0.66b2",
    "fastapi==0.165.0",
    "uvicorn==0.54.0",
)

APP = '''
import sqlite3
from fastapi import FastAPI

app = FastAPI()
db = sqlite3.connect(":memory:", check_same_thread=False)


@app.get("/hello/{name}")
def hello(name: str):
    (row,) = db.execute("SELECT upper(?)", (name,)).fetchall()
    return {"hello": row[0]}
'''

SQLITE3_NO_OP = '''
import json, sqlite3
from opentelemetry.instrumentation.dependencies import get_dependency_conflicts
from agentwatch.instrumentors.sqlite3 import AgentwatchSQLite3Instrumentor
instrumentor = AgentwatchSQLite3Instrumentor()
deps = instrumentor.instrumentation_dependencies()
print(json.dumps({"conflict": str(get_dependency_conflicts(deps)), "result": instrumentor.instrument(),
                  "connect": sqlite3.connect.__module__}))
'''


def _uv(*args: str, timeout: float = 600, stdout_only: bool = False) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH") and not k.startswith("UV_PYTHON")}
    proc = subprocess.run([str(UV), *args], capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"uv {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout if stdout_only else proc.stdout + proc.stderr


def _versions(python: Path) -> dict[str, str]:
    listed = json.loads(_uv("pip", "list", "--python", str(python), "--format", "json", stdout_only=True))
    return {entry["name"].lower(): entry["version"] for entry in listed}


@pytest.fixture(scope="module")
def service_venv(tmp_path_factory) -> tuple[Path, dict[str, str], dict[str, str]]:
    """(the venv's python, versions before agentwatch, versions after)."""
    base = tmp_path_factory.mktemp("install-wheel")
    _uv("build", "--wheel", "--quiet", "--out-dir", str(base / "dist"), str(ROOT))
    (wheel,) = (base / "dist").glob("agentwatch-*.whl")
    venv = base / "venv"
    _uv("venv", "--quiet", "--python", sys.executable, str(venv))
    python = venv / "bin" / "python"
    _uv("pip", "install", "--quiet", "--python", str(python), *SERVICE)
    before = _versions(python)
    _uv("pip", "install", "--quiet", "--python", str(python), str(wheel))
    return python, before, _versions(python)


def test_nothing_downgraded_and_pip_check_clean(service_venv):
    python, before, after = service_venv
    changed = {name: (version, after.get(name)) for name, version in before.items() if after.get(name) != version}
    assert changed == {}, "installing agentwatch changed what the service had"
    assert after["opentelemetry-sdk"] == "1.45.2" and after["opentelemetry-instrumentation"] == "0.66b2"
    assert "agentwatch" in after
    # the lagging contrib packages are extras: not pulled in
    assert "opentelemetry-instrumentation-sqlite3" not in after
    assert "opentelemetry-instrumentation-aiohttp-client" not in after
    assert "All installed packages are compatible" in _uv("pip", "check", "--python", str(python))


def test_sqlite3_instrumentor_is_a_no_op_without_the_extra(service_venv):
    python = service_venv[0]
    proc = subprocess.run([str(python), "-c", SQLITE3_NO_OP], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "opentelemetry-instrumentation-sqlite3" in out["conflict"], "the missing package is named"
    assert out["result"] is None and out["connect"] == "_sqlite3", "sqlite3.connect left alone"


def test_fastapi_app_sends_telemetry(service_venv, tmp_path):
    python = service_venv[0]
    (tmp_path / "app.py").write_text(APP)
    out = tmp_path / "agentwatch-data"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_", "PYTHONPATH", "VIRTUAL_ENV"))}
    env.update(AGENTWATCH_EXPORT="local", AGENTWATCH_FILE_DIR=str(out), OTEL_SERVICE_NAME="installed-app",
               OTEL_BSP_SCHEDULE_DELAY="100", OTEL_METRIC_EXPORT_INTERVAL="300", PATH=f"{python.parent}:{env.get('PATH', '')}")
    command = [str(python.parent / "opentelemetry-instrument"), str(python.parent / "uvicorn"), "app:app", "--port", str(port)]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        body = None
        while body is None and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()[1]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/hello/ada", timeout=2) as response:
                    body = json.loads(response.read())
            except OSError:
                time.sleep(0.2)
        assert body == {"hello": "ADA"}
        traces = out / "traces.jsonl"
        while time.monotonic() < deadline and "/hello/{name}" not in (traces.read_text() if traces.exists() else ""):
            time.sleep(0.2)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    spans = [
        (span["name"], {a["key"] for a in span.get("attributes", [])}, rs["resource"])
        for line in traces.read_text().splitlines()
        for rs in json.loads(line)["resourceSpans"]
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    ]
    server = [s for s in spans if s[0] == "GET /hello/{name}"]
    assert server, f"no server span for the request: {[s[0] for s in spans]}\n{stderr}"
    resource = {a["key"]: a["value"] for a in server[0][2]["attributes"]}
    assert resource["service.name"] == {"stringValue": "installed-app"}
    assert "agentwatch" in json.dumps(resource), "the agentwatch distro set the pipeline up"
    assert (out / "metrics.jsonl").exists(), "metrics flow too"
    assert "Traceback" not in stderr, stderr
