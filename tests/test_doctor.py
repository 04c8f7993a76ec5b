"""``agentwatch doctor`` reports the effective configuration and catches the classic mistakes."""

from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest

from _service import BIN, free_port

from agentwatch.doctor import run


def test_grpc_exporter_pointed_at_http_port_and_path():
    text = run({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318/v1/traces"}, check_endpoints=False)
    assert "4318 is the OTLP/HTTP port: use port 4317" in text
    assert "gRPC endpoints take no path" in text


def test_http_exporter_pointed_at_grpc_port():
    text = run({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, check_endpoints=False)
    assert "4317 is the OTLP/gRPC port: use port 4318" in text
    assert "http://collector:4317/v1/traces" in text


def test_base_endpoint_with_signal_path_is_flagged():
    text = run({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/v1/traces"}, check_endpoints=False)
    assert "already ends in a signal path" in text


def test_unusable_endpoint_shows_the_fallback_the_exporter_gets():
    text = run({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://collector:4318/v1/traces"},
               check_endpoints=False)
    assert "otlp http/protobuf -> http://collector:4318/v1/traces (from OTEL_EXPORTER_OTLP_ENDPOINT)" in text
    assert "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = ftp://collector:4318/v1/traces  <- ignored (invalid value" in text
    problems = text.split("Problems:", 1)[1]
    assert problems.count("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT='ftp://collector:4318/v1/traces' is not a usable OTLP endpoint") == 1


def test_otlp_exporter_named_by_protocol_shows_its_endpoint():
    """OTEL_TRACES_EXPORTER=otlp_proto_grpc under an http/protobuf default: the gRPC URL the exporter gets."""
    text = run(
        {"OTEL_TRACES_EXPORTER": "otlp_proto_grpc", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4317"},
        check_endpoints=False,
    )
    assert "otlp_proto_grpc grpc -> http://collector:4317 (from OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)" in text, text
    assert "otlp http/protobuf -> http://localhost:4318/v1/logs" in text, text


def _exporters_section(text: str) -> str:
    """The Exporters section alone (its problems are listed again under Problems)."""
    return text.split("\nExporters:\n", 1)[1].split("\nScrubber:\n", 1)[0]


def test_grpc_endpoint_without_scheme_is_said_to_use_tls():
    """A bare host:port makes the gRPC exporter speak TLS: said once per signal, not for http:// or INSECURE=true."""
    base = {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317"}
    text = _exporters_section(run(base, check_endpoints=False))
    assert text.count("gRPC export to collector:4317 (OTEL_EXPORTER_OTLP_ENDPOINT) uses TLS") == 3, text
    for quiet in ({"OTEL_EXPORTER_OTLP_INSECURE": "true"}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"},
                  {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4317"}):
        assert "uses TLS" not in run({**base, **quiet}, check_endpoints=False), quiet
    # a per-signal INSECURE setting covers only its signal
    text = _exporters_section(run({**base, "OTEL_EXPORTER_OTLP_TRACES_INSECURE": "true"}, check_endpoints=False))
    assert text.count("uses TLS") == 2, text


def test_missing_exporter_package_and_sources():
    text = run({"OTEL_TRACES_EXPORTER": "zipkin", "OTEL_SERVICE_NAME": "svc", "OTEL_EXPORTER_OTLP_HEADERS": "api-key=s3cr3t"}, check_endpoints=False)
    assert "exporter 'zipkin' is unavailable" in text
    assert "OTEL_SERVICE_NAME = svc  <- environment" in text
    assert "s3cr3t" not in text and "api-key=[REDACTED]" in text


def test_instrumentors_and_selection_listed():
    text = run({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "system_metrics"}, check_endpoints=False)
    assert "system_metrics   skipped: disabled by OTEL_PYTHON_DISABLED_INSTRUMENTATIONS" in text
    assert "fastapi          loads" in text
    assert "agentwatch (agentwatch" in text  # the distro entry point and its distribution


def test_with_the_sdk_off_the_recording_only_instrumentors_are_listed_as_skipped():
    """The doctor says what the distro does (agentwatch.distro.distro.RECORDING_ONLY): not 'loads'."""
    def statuses(text: str) -> dict[str, str]:
        return {line.split()[0]: line.split(None, 1)[1] for line in text.splitlines()
                if line.startswith("  ") and len(line.split()) > 1 and "[" in line}

    off = statuses(run({"OTEL_SDK_DISABLED": "true"}, check_endpoints=False))
    on = statuses(run({}, check_endpoints=False))
    for name in ("gemini", "agentwatch_intent", "agentwatch_tools"):
        assert off[name].startswith("skipped: OTEL_SDK_DISABLED=true (it only records)"), off[name]
        assert on[name].startswith("loads"), on[name]
    for name in ("agentwatch_web", "fastapi"):
        assert off[name].startswith("loads"), off[name]


def test_unknown_configurator_is_flagged():
    text = run({"OTEL_PYTHON_CONFIGURATOR": "nope"}, check_endpoints=False)
    assert "matches no configurator: no SDK would be set up" in text


def test_endpoint_reachability_is_checked():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    up = listener.getsockname()[1]
    down = free_port()  # bound and released: nothing listens there
    try:
        assert "answers" in run({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{up}/v1/traces"})
        assert "NOT reachable" in run({"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{down}"})
    finally:
        listener.close()


def test_cli_entry_point_runs():
    out = subprocess.run([str(BIN / "agentwatch"), "doctor", "--no-check"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Configuration, values that are set" in out.stdout and "Problems: none found" in out.stdout


@pytest.mark.parametrize(
    "env, line",
    [
        ({}, "on; candidates found by one Hyperscan pass per batch"),
        ({"AGENTWATCH_SCRUB_ENGINE": "re"}, "on; Python re alone (AGENTWATCH_SCRUB_ENGINE=re)"),
        ({"AGENTWATCH_SCRUB": "false"}, "off (AGENTWATCH_SCRUB=false)"),
    ],
)
def test_doctor_says_which_scrubber_engine_runs(env, line):
    text = run(env, check_endpoints=False)
    assert "Scrubber:\n  " + line in text


def test_unset_variables_show_their_documented_default():
    """Each unset variable is shown with the default the configuration table documents, not a Python repr."""
    from agentwatch import doctor
    from agentwatch.distro import environment_variables as ev

    text = doctor.run(environ={}, check_endpoints=False)
    for var in ev.VARIABLES:
        assert f"  {var.name} = {var.default_text.replace('`', '')}  <- default" in text, var.name
    assert " = None  <-" not in text and " = ()  <-" not in text


def _doctor_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_"))}
    full.update(env)
    return subprocess.run([str(BIN / "agentwatch"), "doctor", *args], capture_output=True, text=True, timeout=60, env=full)


@pytest.mark.parametrize("env", [
    {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"},  # the HTTP exporter on the gRPC port
    {"OTEL_TRACES_EXPORTER": "zipkin"},  # an exporter whose package is missing
    {"AGENTWATCH_SHUTDOWN_TIMEOUT": "soon"},  # a bad value
    {"AGENTWATCH_LOG_FORMAT": "xml"},
])
def test_doctor_exits_non_zero_on_each_kind_of_problem(env):
    done = _doctor_cli("--no-check", **env)
    assert done.returncode == 1, (env, done.stdout[-2000:])
    assert "Problems:\n  ! " in done.stdout


def test_doctor_exits_non_zero_when_an_endpoint_is_unreachable():
    down = free_port()
    done = _doctor_cli(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{down}")
    assert done.returncode == 1 and "NOT reachable" in done.stdout


def test_doctor_json_all_and_a_clean_pass():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        port = listener.getsockname()[1]
        done = _doctor_cli("--json", OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}", OTEL_SERVICE_NAME="svc")
    finally:
        listener.close()
    assert done.returncode == 0, done.stdout
    document = json.loads(done.stdout)
    assert document["ok"] is True and document["problems"] == []
    assert {e["name"] for e in document["configuration"]} == {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"}
    everything = json.loads(_doctor_cli("--json", "--all", "--no-check").stdout)
    assert len(everything["configuration"]) > 50


def test_version_bare_command_and_python_m():
    version = subprocess.run([str(BIN / "agentwatch"), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("agentwatch ")
    bare = subprocess.run([str(BIN / "agentwatch")], capture_output=True, text=True, timeout=60)
    assert bare.returncode == 0 and "usage: agentwatch" in bare.stdout and "error" not in bare.stderr
    module = subprocess.run([str(BIN / "python"), "-m", "agentwatch", "--version"], capture_output=True, text=True, timeout=60)
    assert module.returncode == 0 and module.stdout == version.stdout


def test_otel_config_file_is_refused_with_one_line_and_doctor_fails(tmp_path):
    config = tmp_path / "otel.yaml"
    config.write_text("file_format: '1.0'\n")
    done = _doctor_cli("--no-check", OTEL_CONFIG_FILE=str(config))
    assert done.returncode == 1
    assert done.stdout.count(f"OTEL_CONFIG_FILE='{config}' is not applied") == 1, done.stdout
    assert "OTEL_PYTHON_CONFIGURATOR=configurator" in done.stdout
