"""agentwatch's distro and configurator run under a bare ``opentelemetry-instrument``,
whatever the install order of opentelemetry-distro, in fresh virtual environments.

The venvs are built on tmpfs when available, where ``os.listdir`` returns files in
creation order, so the two install orders really put the two ``opentelemetry_distro``
entry points in opposite orders (asserted, so the test cannot pass vacuously).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UV = Path(sys.executable).parent / "uv"

pytestmark = [pytest.mark.slow, pytest.mark.single_env(
    reason="builds its own venvs from requirements.lock: does not use the running venv's packages"
)]

APP = """
import logging
from opentelemetry import trace
with trace.get_tracer("probe").start_as_current_span("probe-span"):
    logging.getLogger("probe").warning("probe log")
from opentelemetry.util._importlib_metadata import entry_points
print("DISTROS=" + ",".join(ep.name for ep in entry_points(group="opentelemetry_distro")))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([str(UV), "build", "--wheel", "-q", "-o", str(out), str(ROOT)], check=True, timeout=300)
    (found,) = out.glob("agentwatch-*.whl")
    return found


def _base_dir(tmp_path: Path) -> Path:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        base = shm / f"agentwatch-test-{os.getpid()}-{tmp_path.name}"
        base.mkdir(parents=True, exist_ok=True)
        return base
    return tmp_path


def _venv(base: Path, name: str, installs: list[list[str]]) -> Path:
    venv = base / name
    subprocess.run([str(UV), "venv", "-q", "--python", sys.executable, str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    for packages in installs:
        subprocess.run(
            [str(UV), "pip", "install", "-q", "--python", str(python), "-c", str(ROOT / "requirements.lock"), *packages],
            check=True,
            timeout=600,
        )
    return venv


def _run(venv: Path, tmp_path: Path, extra_env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, list[dict]]:
    app = tmp_path / "probe_app.py"
    app.write_text(APP)
    out_dir = tmp_path / f"out-{venv.name}-{len(list(tmp_path.iterdir()))}"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_", "VIRTUAL_ENV", "PYTHONPATH"))
    }
    env.update(
        PATH=f"{venv / 'bin'}:{env.get('PATH', '')}",
        OTEL_TRACES_EXPORTER="agentwatch_file",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="agentwatch_file",
        AGENTWATCH_FILE_DIR=str(out_dir),
        **(extra_env or {}),
    )
    proc = subprocess.run(
        [str(venv / "bin" / "opentelemetry-instrument"), "python", str(app)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    resources = []
    traces = out_dir / "traces.jsonl"
    if traces.exists():
        for line in traces.read_text().splitlines():
            for rs in json.loads(line)["resourceSpans"]:
                resources.append({a["key"]: next(iter(a["value"].values())) for a in rs["resource"]["attributes"]})
    return proc, resources


@pytest.fixture(scope="module")
def venvs(wheel, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("venvs")
    base = _base_dir(tmp)
    deps = [str(wheel)]
    made = {
        "distro_first": _venv(base, "distro_first", [["opentelemetry-distro"], deps]),
        "agentwatch_first": _venv(base, "agentwatch_first", [deps, ["--reinstall-package", "opentelemetry-distro", "opentelemetry-distro"]]),
    }
    yield made
    if str(base).startswith("/dev/shm"):
        subprocess.run(["rm", "-rf", str(base)], check=False)


@pytest.mark.parametrize("order", ["distro_first", "agentwatch_first"])
def test_agentwatch_wins_in_both_install_orders(venvs, tmp_path, order):
    proc, resources = _run(venvs[order], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert resources, f"nothing exported; stderr:\n{proc.stderr}"
    assert {r.get("telemetry.distro.name") for r in resources} == {"agentwatch"}
    assert "not loaded" not in proc.stderr, proc.stderr  # no noise about the skipped stock configurator
    assert "agentwatch:" not in proc.stderr, proc.stderr  # no selection complaint


def test_the_two_orders_really_differ(venvs, tmp_path):
    """Guard against a vacuous pass: the entry-point order must differ between the two venvs."""
    orders = {}
    for name, venv in venvs.items():
        proc, _ = _run(venv, tmp_path)
        line = next(l for l in proc.stdout.splitlines() if l.startswith("DISTROS="))
        orders[name] = line.removeprefix("DISTROS=").split(",")
    assert sorted(orders["distro_first"]) == sorted(orders["agentwatch_first"]) == ["agentwatch", "distro"]
    if not str(next(iter(venvs.values()))).startswith("/dev/shm"):
        pytest.skip("no tmpfs: directory order is a hash, install order cannot be forced")
    assert orders["distro_first"] != orders["agentwatch_first"], orders


def test_explicit_other_distro_is_respected_with_one_line_and_the_fix(venvs, tmp_path):
    proc, resources = _run(venvs["distro_first"], tmp_path, {"OTEL_PYTHON_DISTRO": "distro", "OTEL_PYTHON_CONFIGURATOR": "configurator"})
    assert proc.returncode == 0, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.startswith("agentwatch:")]
    assert len(lines) == 1, proc.stderr
    assert "opentelemetry.distro.OpenTelemetryDistro" in lines[0]
    assert "OTEL_PYTHON_DISTRO=agentwatch OTEL_PYTHON_CONFIGURATOR=agentwatch" in lines[0]
    assert all(r.get("telemetry.distro.name") != "agentwatch" for r in resources)


def test_selector_pth_is_inert_outside_opentelemetry_instrument(venvs):
    venv = venvs["distro_first"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTHONPATH"))}
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import os; print(os.environ.get('OTEL_PYTHON_DISTRO'))"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )
    assert out.stdout.strip() == "None"


def test_the_wheel_ships_its_license_and_type_marker(wheel):
    """Packaging (issue 17, item 6): the licence text, `py.typed` (agentwatch's annotations are for type
    checkers too) and the classifiers saying what is supported."""
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "agentwatch/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    assert "License-Expression: Apache-2.0" in metadata
    for classifier in ("Typing :: Typed", "Operating System :: POSIX :: Linux", "Programming Language :: Python :: 3.11"):
        assert f"Classifier: {classifier}" in metadata


@pytest.mark.parametrize("environ", [
    {},
    {"PYTHONPATH": "/x/site-packages/opentelemetry/instrumentation/auto_instrumentation"},
    {"PYTHONPATH": "/x/opentelemetry/instrumentation/auto_instrumentation", "OTEL_PYTHON_DISTRO": "distro"},
    {"PYTHONPATH": "/somewhere/else"},
])
def test_the_start_file_selects_like_the_pth_line(wheel, environ, monkeypatch):
    """PEP 829: `agentwatch-select.start` (beside the .pth, read from Python 3.15) names a callable that does
    exactly what the .pth's import line does."""
    import pkgutil
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        start = archive.read("agentwatch-select.start").decode()
        pth = archive.read("agentwatch-select.pth").decode()
    (entry,) = [line for line in start.splitlines() if line.strip() and not line.startswith("#")]
    results = []
    for run in ("pth", "start"):
        for name in ("PYTHONPATH", "OTEL_PYTHON_DISTRO"):
            monkeypatch.delenv(name, raising=False)
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        if run == "pth":
            exec(pth)  # noqa: S102 - what site.py does with the import line
        else:
            pkgutil.resolve_name(entry)()
        results.append(os.environ.get("OTEL_PYTHON_DISTRO"))
    assert results[0] == results[1]
