"""Options of benchmarks/overhead.py: ``--variant`` (also instructions.py), a mode run again with more variables,
reported under its own label, to measure what one part costs (e.g. agentwatch-ai with every exporter
off: what recording alone costs, the floor of any out-of-process export), and the app's bytecode cache.
No app is started here."""

from __future__ import annotations

import importlib.util
import sys
from argparse import Namespace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_variants_{name}", ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


overhead = _load("overhead")


def test_a_variant_is_parsed_into_label_mode_and_variables():
    spec = "ai-noexport=agentwatch-ai:OTEL_TRACES_EXPORTER=none;OTEL_METRICS_EXPORTER=none;A=x=y"
    assert overhead.parse_variant(spec) == (
        "ai-noexport", "agentwatch-ai", {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "A": "x=y"},
    )


@pytest.mark.parametrize("spec", ["", "label", "label=mode", "label=mode:", "=mode:A=1", "l=:A=1", "l=m:A", "l=m:=1", "l=m:A=1;B"])
def test_a_malformed_variant_is_refused_with_its_text(spec):
    with pytest.raises(ValueError, match="LABEL=MODE:VAR=VALUE"):
        overhead.parse_variant(spec)


@pytest.mark.parametrize("argv, message", [
    (["--variant", "x=no-such-mode:A=1"], "MODE must be one of"),
    (["--variant", "agentwatch=otel-distro:A=1"], "LABEL a new name"),
    (["--variant", "x=agentwatch:A=1", "--variant", "x=agentwatch-ai:A=1"], "LABEL a new name"),
    (["--variant", "x=agentwatch"], "is not LABEL=MODE"),
])
def test_main_refuses_a_bad_variant_before_running_anything(argv, message, capsys, monkeypatch):
    monkeypatch.setattr(overhead, "start_helper", lambda *a, **k: pytest.fail("a helper was started"))
    with pytest.raises(SystemExit) as exit_info:
        overhead.main(["--rounds", "1", "--modes", "uninstrumented"] + argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_variant_run_starts_its_mode_with_its_variables(tmp_path, monkeypatch):
    started = {}

    def fake_start(mode, endpoint, ctx, workdir, args, extra_env=None):
        started.update(mode=mode, extra_env=extra_env)
        raise RuntimeError("stop here")

    monkeypatch.setattr(overhead, "start_app", fake_start)
    monkeypatch.setattr(overhead, "http_get_json", lambda url, timeout=2.0: {})
    ctx = {"tmp": str(tmp_path), "sink_url": "http://127.0.0.1:9", "app_core": None, "helper_pids": [],
           "variants": {"ai-noexport": ("agentwatch-ai", {"OTEL_TRACES_EXPORTER": "none"})}}
    result = overhead.run_mode("ai-noexport", 1, ctx, Namespace())
    assert started == {"mode": "agentwatch-ai", "extra_env": {"OTEL_TRACES_EXPORTER": "none"}}
    assert result.mode == "ai-noexport" and not result.ok and "stop here" in result.error
    overhead.run_mode("agentwatch", 1, ctx, Namespace())  # a plain mode: itself, nothing added
    assert started == {"mode": "agentwatch", "extra_env": {}}


def test_only_a_variant_without_span_export_skips_the_sink_checks():
    assert overhead.exports_no_spans({"OTEL_TRACES_EXPORTER": "none"})
    assert overhead.exports_no_spans({"OTEL_TRACES_EXPORTER": " none "})
    assert not overhead.exports_no_spans({"OTEL_LOGS_EXPORTER": "none"})
    assert not overhead.exports_no_spans({"OTEL_TRACES_EXPORTER": "otlp,none"})
    assert not overhead.exports_no_spans({})
    assert overhead.exports_no_spans({"OTEL_SDK_DISABLED": "True"})  # the SDK's own reading: case-insensitive
    assert not overhead.exports_no_spans({"OTEL_SDK_DISABLED": "false"})


@pytest.mark.parametrize("pycache", [None, "cache"])
def test_the_app_keeps_its_bytecode_in_the_runs_cache(pycache, tmp_path, monkeypatch):
    """A machine without .pyc files (PYTHONDONTWRITEBYTECODE, or a venv installed without compiling) would
    make every start compile every module; the harness gives the app a bytecode cache of the run's own."""
    seen = {}

    class FakePopen:
        def __init__(self, command, env, **kwargs):
            seen.update(env)
            self.pid = 0

    monkeypatch.setattr(overhead.subprocess, "Popen", FakePopen)
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    ctx = {"tmp": str(tmp_path), "fake_url": "http://127.0.0.1:9", "app_core": None,
           "pycache": tmp_path / pycache if pycache else None}
    overhead.start_app("uninstrumented", "http://127.0.0.1:9", ctx, tmp_path, Namespace(metric_interval_ms=0))
    if pycache:
        assert seen["PYTHONPYCACHEPREFIX"] == str(tmp_path / "cache") and "PYTHONDONTWRITEBYTECODE" not in seen
    else:
        assert "PYTHONPYCACHEPREFIX" not in seen and seen["PYTHONDONTWRITEBYTECODE"] == "1"


def test_profile_variants_start_their_mode_with_its_variables_and_the_variant_s(monkeypatch):
    """profile.py --variant: a label that starts a mode of MODES with more variables (agentwatch-agents' targets
    kept under them)."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # what profile.py imports: overhead, run_demo
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    profile = _load("profile")
    monkeypatch.setitem(profile.VARIANTS, "ai-noexport", ("agentwatch-agents", {"OTEL_TRACES_EXPORTER": "none"}))
    mode, env = profile.mode_env("ai-noexport")
    assert mode == "agentwatch" and env["OTEL_TRACES_EXPORTER"] == "none"
    assert {k: v for k, v in env.items() if k != "OTEL_TRACES_EXPORTER"} == dict(profile.AGENT_TARGETS)
    assert profile.mode_env("otel-distro") == ("otel-distro", {})


def test_gc_share_lists_the_most_promoted_types_of_any_mode():
    gc_share = _load("gc_share")
    rows = [{"mode": "otel-distro", "promoted_per_request": {"builtins.dict": 5.5, "_thread.lock": 13.8}},
            {"mode": "agentwatch-ai", "promoted_per_request": {"builtins.dict": 20.7, "x.LeanSpan": 0.8}}]
    table = gc_share.promoted_table(rows, top=2).strip().splitlines()
    assert table[0] == "| promoted to generation 2, per request | otel-distro | agentwatch-ai |"
    assert table[2] == "| **all types** | **19.3** | **21.5** |"
    assert table[3:] == ["| `builtins.dict` | 5.50 | 20.70 |", "| `_thread.lock` | 13.80 | 0.00 |"]
