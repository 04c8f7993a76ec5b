"""Settings: defaults, sources, and one clear warning per bad value (which costs only that value)."""

from __future__ import annotations

import os
from unittest import mock

import pytest

from agentwatch.distro import _diagnostics
from agentwatch.distro.exporters import resolve_names
from agentwatch.distro.settings import default_service_name, load_settings, parse_resource_attributes


def test_defaults_are_otlp_http_for_all_signals():
    s = load_settings({}, argv=["app.py"])
    assert s.exporters == {"traces": ["otlp"], "metrics": ["otlp"], "logs": ["otlp"]}
    assert s.protocols == {"traces": "http/protobuf", "metrics": "http/protobuf", "logs": "http/protobuf"}
    assert s.service_name == "app"
    assert (s.prometheus_port, s.shutdown_timeout, s.asgi_message_spans) == (9464, 1.5, False)
    assert _diagnostics.messages() == []


def test_local_mode_is_the_embedded_default_but_explicit_exporters_win():
    s = load_settings({"AGENTWATCH_EXPORT": "local", "OTEL_LOGS_EXPORTER": "console"})
    assert s.exporters == {
        "traces": ["agentwatch_file"],
        "metrics": ["agentwatch_file", "prometheus"],
        "logs": ["console"],
    }
    assert s.sources["OTEL_LOGS_EXPORTER"] == "environment"


@pytest.mark.parametrize(
    ("env", "expected_fragment", "check"),
    [
        (
            {"OTEL_EXPORTER_PROMETHEUS_PORT": "abc"},
            "OTEL_EXPORTER_PROMETHEUS_PORT='abc' is not a port number (1-65535); using 9464 instead",
            lambda s: s.prometheus_port == 9464,
        ),
        (
            {"OTEL_EXPORTER_PROMETHEUS_PORT": "70000"},
            "OTEL_EXPORTER_PROMETHEUS_PORT='70000' is not a port number",
            lambda s: s.prometheus_port == 9464,
        ),
        (
            {"AGENTWATCH_ASGI_MESSAGE_SPANS": "maybe"},
            "AGENTWATCH_ASGI_MESSAGE_SPANS='maybe' is not a boolean (true/false); using False instead",
            lambda s: s.asgi_message_spans is False,
        ),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "bogus"},
            "OTEL_EXPORTER_OTLP_PROTOCOL='bogus' is not one of grpc, http/protobuf; using 'http/protobuf' instead",
            lambda s: s.protocols["traces"] == "http/protobuf",
        ),
        (
            {"AGENTWATCH_SHUTDOWN_TIMEOUT": "-3"},
            "AGENTWATCH_SHUTDOWN_TIMEOUT='-3' is not a number between 0 and 300; using 1.5 instead",
            lambda s: s.shutdown_timeout == 1.5,
        ),
        (
            {"AGENTWATCH_FILE_MAX_MB": "lots"},
            "AGENTWATCH_FILE_MAX_MB='lots' is not a number",
            lambda s: s.file_max_bytes == 64 * 1024 * 1024,
        ),
        (
            {"AGENTWATCH_EXPORT": "cloud"},
            "AGENTWATCH_EXPORT='cloud' is not one of otlp, local; using 'otlp' instead",
            lambda s: s.exporters["traces"] == ["otlp"],
        ),
        (
            {"OTEL_RESOURCE_ATTRIBUTES": "team=search,garbage,region=eu%2Dwest"},
            "OTEL_RESOURCE_ATTRIBUTES='team=search,garbage,region=eu%2Dwest' has unparsable items ['garbage']",
            lambda s: s.resource_attributes == {"team": "search", "region": "eu-west"},
        ),
    ],
)
def test_bad_value_warns_once_naming_variable_value_and_fallback(env, expected_fragment, check):
    settings = load_settings(env)
    messages = _diagnostics.messages()
    assert len(messages) == 1, messages
    assert expected_fragment in messages[0]
    assert check(settings)
    load_settings(env)  # a second read does not repeat the warning
    assert len(_diagnostics.messages()) == 1


def test_unknown_exporter_costs_only_that_exporter():
    settings = load_settings({"OTEL_TRACES_EXPORTER": "console,nosuch"})
    names = resolve_names("traces", settings)
    assert [n for n, _ in names] == ["console"]
    (message,) = _diagnostics.messages()
    assert "OTEL_TRACES_EXPORTER='console,nosuch': exporter 'nosuch' is unavailable" in message
    assert "using 'console' instead" in message


def test_otlp_resolves_by_protocol_per_signal():
    settings = load_settings({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/protobuf"})
    assert resolve_names("traces", settings) == [("otlp", "otlp_proto_grpc")]
    assert resolve_names("logs", settings) == [("otlp", "otlp_proto_http")]


def test_none_with_others_means_none_and_says_so():
    settings = load_settings({"OTEL_METRICS_EXPORTER": "none,otlp"})
    assert resolve_names("metrics", settings) == []
    assert "mixes 'none'" in _diagnostics.messages()[0]


def test_service_name_precedence():
    assert load_settings({"OTEL_SERVICE_NAME": "svc", "OTEL_RESOURCE_ATTRIBUTES": "service.name=other"}).service_name == "svc"
    assert load_settings({"OTEL_RESOURCE_ATTRIBUTES": "service.name=other"}).service_name == "other"
    s = load_settings({"OTEL_RESOURCE_ATTRIBUTES": "service.version=2.1,deployment.environment.name=prod"})
    assert (s.service_version, s.environment) == ("2.1", "prod")


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["/srv/app.py"], "app"),
        (["/venv/bin/uvicorn", "main:app", "--workers", "2"], "main"),
        (["/venv/bin/gunicorn", "-k", "uvicorn.workers.UvicornWorker", "svc.api:app"], "api"),
        (["/venv/bin/fastapi", "run", "serve.py"], "serve"),
        (["/pkg/agent/__main__.py"], "agent"),
        (["-c"], "unknown_service:python"),
    ],
)
def test_default_service_name_from_program(argv, name):
    assert default_service_name(argv) == name


def test_parse_resource_attributes_decodes_values():
    assert parse_resource_attributes("a=1, b = x%20y ,,c") == ({"a": "1", "b": "x y"}, ["c"])


def test_disabled_instrumentations_star_means_all():
    """One reading of OTEL_PYTHON_DISABLED_INSTRUMENTATIONS for the distro, doctor, the Gemini choice and
    the agent roles; `*` disables everything, as upstream's loader reads it."""
    from agentwatch.distro.settings import disabled_instrumentations, is_instrumentation_disabled
    from agentwatch.instrumentors._agents.settings import telemetry_disabled

    assert disabled_instrumentations({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": " rag, ,gemini "}) == {"rag", "gemini"}
    assert is_instrumentation_disabled("agentwatch_intent", {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "*"})
    assert not is_instrumentation_disabled("agentwatch_intent", {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "rag"})
    with mock.patch.dict(os.environ, {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "*"}):
        assert telemetry_disabled("agentwatch_intent")
