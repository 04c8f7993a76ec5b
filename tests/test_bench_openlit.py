"""The `openlit` mode of benchmarks/overhead.py: OpenLIT runs from its own venv (.venv-openlit, synced from
benchmarks/requirements-openlit.lock by the Makefile), with the demo app on that venv's python, exporting
to the harness's sink; without the venv the mode says how to make it. No venv is built here and nothing
leaves the machine: the venvs are fake directories, the sink is the harness's own on loopback."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from argparse import Namespace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


overhead = _load("overhead")
otlp_sink = _load("otlp_sink")


def _fake_venv(path: Path, *, stamp: bool = True, scripts: tuple[str, ...] = ("python", "openlit-instrument")) -> Path:
    (path / "bin").mkdir(parents=True)
    for name in scripts:
        (path / "bin" / name).write_text("#!/bin/sh\n")
    if stamp:
        (path / overhead.OPENLIT_STAMP).touch()
    return path


# ----------------------------------------------------------------------------- unavailable_reason
def test_missing_venv_says_how_to_make_it(tmp_path):
    reason = overhead.unavailable_reason("openlit", tmp_path / ".venv-openlit")
    assert reason is not None
    assert reason.startswith("not installed")
    assert "make .venv-openlit/.openlit-installed" in reason
    assert str(tmp_path / ".venv-openlit") in reason


def test_half_synced_venv_is_not_used(tmp_path):
    """A venv without the Makefile's stamp (sync interrupted, or made by hand) does not count."""
    venv = _fake_venv(tmp_path / "v", stamp=False)
    reason = overhead.unavailable_reason("openlit", venv)
    assert reason is not None and "not completely synced" in reason


@pytest.mark.parametrize("missing", ["python", "openlit-instrument"])
def test_venv_without_its_scripts_is_not_runnable(tmp_path, missing):
    scripts = tuple(s for s in ("python", "openlit-instrument") if s != missing)
    reason = overhead.unavailable_reason("openlit", _fake_venv(tmp_path / "v", scripts=scripts))
    assert reason is not None and reason.startswith("not runnable") and f"bin/{missing}" in reason


def test_complete_venv_is_available(tmp_path):
    assert overhead.unavailable_reason("openlit", _fake_venv(tmp_path / "v")) is None


def test_only_openlit_is_optional(tmp_path):
    for mode in overhead.MODES:
        if mode != "openlit":
            assert overhead.unavailable_reason(mode, tmp_path / "absent") is None


def test_the_harness_looks_where_the_makefile_builds():
    """overhead.py's venv path and stamp are the Makefile's; `make bench` builds the venv, `make test` does not."""
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^OPENLIT_VENV := \.venv-openlit$", makefile, re.M)
    assert re.search(r"^OPENLIT_STAMP := \$\(OPENLIT_VENV\)/" + re.escape(overhead.OPENLIT_STAMP) + "$", makefile, re.M)
    assert re.search(r"^OPENLIT_LOCK := benchmarks/requirements-openlit\.lock$", makefile, re.M)
    assert overhead.OPENLIT_VENV == ROOT / ".venv-openlit"
    bench = re.search(r"^bench: (.*)$", makefile, re.M)
    test = re.search(r"^test: (.*)$", makefile, re.M)
    assert bench and "$(OPENLIT_STAMP)" in bench.group(1)
    assert test and "OPENLIT" not in test.group(1)
    lock_rule = makefile.split("\nlock:", 1)[1].split("\n\n", 1)[0]
    assert "benchmarks/requirements-openlit.in" in lock_rule and "-c requirements.lock" in lock_rule


# ----------------------------------------------------------------------------- command and environment
def _args(**kw) -> Namespace:
    return Namespace(metric_interval_ms=kw.get("metric_interval_ms", 0))


def test_openlit_runs_the_app_on_its_own_venv(tmp_path):
    venv = _fake_venv(tmp_path / "venv")
    work = tmp_path / "run"
    work.mkdir()
    base = {"PATH": "/usr/bin", "GEMINI_BASE_URL": "http://127.0.0.1:1", "PYTHONPATH": str(ROOT)}
    command, env = overhead.mode_command_and_env(
        "openlit", base, "http://127.0.0.1:4318", _args(metric_interval_ms=500), work, venv,
    )
    assert command == [str(venv / "bin" / "openlit-instrument"), str(venv / "bin" / "python"), str(overhead.APP)]
    assert sys.executable not in command  # the main venv (with agentwatch) must not run the app
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4318"  # OpenLIT's otlp_endpoint
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    assert env["OTEL_SERVICE_NAME"] == "agent-service"
    assert env["OTEL_METRIC_EXPORT_INTERVAL"] == "500"
    assert env["GEMINI_BASE_URL"] == "http://127.0.0.1:1"
    assert not any(k.startswith("AGENTWATCH_") for k in env)
    assert "PYTHONPATH" not in env  # an inherited path to the repo would let the app import agentwatch
    # OpenLIT's defaults: neither the stock distro's settings nor per-signal exporters are imposed
    for key in ("OTEL_PYTHON_DISTRO", "OTEL_PYTHON_CONFIGURATOR", "OTEL_TRACES_EXPORTER", "OTEL_LOGS_EXPORTER",
                "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "OPENLIT_DISABLED_INSTRUMENTORS"):
        assert key not in env
    assert base["PYTHONPATH"] == str(ROOT)  # not modified in place


def test_openlit_prices_come_from_a_local_file(tmp_path):
    """OpenLIT would fetch its price table from GitHub at start-up; the harness gives it agentwatch's prices."""
    work = tmp_path / "run"
    work.mkdir()
    _, env = overhead.mode_command_and_env("openlit", {}, "http://127.0.0.1:4318", _args(), work, _fake_venv(tmp_path / "v"))
    path = Path(env["OPENLIT_PRICING_JSON"])
    assert path.parent == work
    table = json.loads(path.read_text())
    bundled = json.loads(overhead.GEMINI_PRICES.read_text())["models"]
    flash = table["chat"]["gemini-2.5-flash"]  # the demo's model (examples/agent_service/app.py)
    # USD per 1M tokens -> OpenLIT's USD per 1K tokens
    assert flash["promptPrice"] == pytest.approx(bundled["gemini-2.5-flash"]["input"] / 1000)
    assert flash["completionPrice"] == pytest.approx(bundled["gemini-2.5-flash"]["output"] / 1000)
    assert set(table["chat"]) == {name for name in bundled if not name.startswith("_")}


def test_openlit_needs_a_workdir(tmp_path):
    with pytest.raises(ValueError, match="workdir"):
        overhead.mode_command_and_env("openlit", {}, "http://127.0.0.1:4318", _args(), None, _fake_venv(tmp_path / "v"))


def test_other_modes_keep_the_main_venv(tmp_path):
    for mode in ("uninstrumented", "otel-distro", "agentwatch"):
        command, env = overhead.mode_command_and_env(mode, {}, "http://127.0.0.1:4318", _args(), tmp_path)
        assert str(overhead.OPENLIT_VENV) not in " ".join(command)
        assert "OPENLIT_PRICING_JSON" not in env


# ----------------------------------------------------------------------------- the lock
def _pins(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+)", path.read_text(), re.M))


def test_openlit_lock_is_the_apps_stack_plus_openlit_without_agentwatch():
    openlit_pins = _pins(ROOT / "benchmarks" / "requirements-openlit.lock")
    main_pins = _pins(ROOT / "requirements.lock")
    assert "openlit" in openlit_pins and "agentwatch" not in openlit_pins
    for name in ("fastapi", "uvicorn", "google-genai", "httpx", "pydantic", "aiobreaker", "opentelemetry-sdk"):
        assert name in openlit_pins, name
    # compiled with -c requirements.lock: what both have is pinned alike, so the app stack is comparable
    shared = set(openlit_pins) & set(main_pins)
    assert {n: openlit_pins[n] for n in shared} == {n: main_pins[n] for n in shared}


# ----------------------------------------------------------------------------- the sink tells OpenLIT apart
def test_sink_counts_telemetry_sdk_name():
    """OpenLIT's resource says telemetry.sdk.name=openlit (and no telemetry.distro.name): the sink reports it,
    so the harness can fail an `openlit` run where OpenLIT did not set up tracing."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    server, url = otlp_sink.start_sink(0)
    try:
        for sdk in ("openlit", "opentelemetry"):
            provider = TracerProvider(resource=Resource.create({"telemetry.sdk.name": sdk, "service.name": "s"}))
            provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces")))
            provider.get_tracer("t").start_span("x").end()
            provider.shutdown()
        stats = overhead.http_get_json(f"{url}/stats")
    finally:
        server.shutdown()
        server.server_close()
    assert stats["sdks"] == {"openlit": 1, "opentelemetry": 1}
    assert stats["distros"] == {}
    assert stats["traces"]["items"] == 2


@pytest.mark.parametrize(
    ("mode", "distros", "sdks", "wrong"),
    [
        ("openlit", "", "openlit", None),
        ("openlit", "", "opentelemetry", "OpenLIT did not set up tracing"),  # e.g. the stock distro ran instead
        ("openlit", "agentwatch", "openlit", "agentwatch distro ran"),  # agentwatch leaked into OpenLIT's venv
        ("otel-distro", "", "opentelemetry", None),
        ("otel-distro", "", "openlit", "OpenLIT ran"),
        ("agentwatch", "agentwatch", "opentelemetry", None),
        ("agentwatch", "", "opentelemetry", "agentwatch distro did not run"),
    ],
)
def test_each_mode_is_what_it_claims(mode, distros, sdks, wrong):
    found = overhead.identity_error(mode, distros, sdks)
    assert (found is None) if wrong is None else (found is not None and wrong in found)
