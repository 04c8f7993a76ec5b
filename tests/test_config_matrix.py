"""Bad configuration matrix (issue 8, item 3), generated from the catalogue.

Every variable of ``agentwatch.distro.environment_variables.VARIABLES`` is set, one at a time, to an
empty value, garbage, and out-of-range numbers, and read in-process by every reader agentwatch has
(distro settings, web/health settings, GenAI capture settings, price table, agent roles). Nothing
raises; an empty value is treated as unset (no warning); a value that is not understood gives exactly
one warning naming the variable. A new variable in the catalogue is covered automatically: unless it is
listed below as free text, garbage must warn. The OTLP endpoints get their own matrix (no scheme, bad
scheme, bad and out-of-range ports, no host, conflicting values) and a check, with the real exporters and
a local receiver, that the fallback is what the exporter actually uses.

``test_all_garbage_at_once_still_serves`` then starts the real service with every variable garbled at
once and checks it starts and serves.
"""

from __future__ import annotations

import logging
import os
from unittest import mock

import pytest

from agentwatch.distro import _diagnostics
from agentwatch.distro.environment_variables import VARIABLES
from otlp_receiver import OTLPReceiver

NAMES = [var.name for var in VARIABLES]

# Free text by nature (names, paths, prefixes, lists of user names, URL regexes): any value is taken as
# given, so garbage gives no warning. Each entry says why.
FREE_TEXT = {
    "OTEL_PYTHON_DISTRO": "read by opentelemetry-instrument itself (covered by the subprocess run)",
    "OTEL_PYTHON_CONFIGURATOR": "read by opentelemetry-instrument itself (covered by the subprocess run)",
    "OTEL_SERVICE_NAME": "a name",
    "AGENTWATCH_SERVICE_VERSION": "a name",
    "AGENTWATCH_ENVIRONMENT": "a name",
    "OTEL_EXPORTER_PROMETHEUS_HOST": "a host name, checked when the endpoint binds",
    "AGENTWATCH_FILE_DIR": "a path, checked when the file exporter writes",
    "OTEL_SEMCONV_STABILITY_OPT_IN": "an upstream list of opt-ins; unknown ones are ignored upstream",
    "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "a list of names; unknown names disable nothing",
    "AGENTWATCH_SCRUB_EXTRA_KEYS": "a list of key names",
    "AGENTWATCH_HEALTH_PREFIX": "a path prefix",
    "AGENTWATCH_HEALTH_CRITICAL": "a list of check names",
    "AGENTWATCH_HEALTH_SQLITE_PATH": "a path, reported by the check itself",
    "AGENTWATCH_HEALTH_DISK_PATH": "a path, reported by the check itself",
    "AGENTWATCH_HEALTH_GEMINI_MODEL": "a model name",
    "AGENTWATCH_HEALTH_CHROMA_URL": "a URL, reported by the check itself",
    "OTEL_PYTHON_FASTAPI_EXCLUDED_URLS": "regexes, read upstream",
    "OTEL_PYTHON_EXCLUDED_URLS": "regexes, read upstream",
    "OTEL_EXPORTER_OTLP_TIMEOUT": "read by the upstream exporters",
    "OTEL_EXPORTER_OTLP_INSECURE": "read by the upstream exporters; agentwatch only checks that it is set",
    "OTEL_PYTHON_LOG_FORMAT": "a %-style format, read by the logging instrumentation",
    "OTEL_PYTHON_LOG_LEVEL": "read by the logging instrumentation (an unknown name is INFO there)",
    "AGENTWATCH_BAGGAGE_KEYS": "a list of baggage key names",
    "AGENTWATCH_HEALTH_TOKEN": "a secret, any text",
    "OTEL_CONFIG_FILE": "a path; any set value is refused with its own line (tests/test_doctor.py)",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST": "header names or regexes, read by the upstream helper",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE": "header names or regexes, read by the upstream helper",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS": "header names or regexes, read by the upstream helper",
    "OTEL_PYTHON_INSTRUMENTATION_HTTP_CAPTURE_ALL_METHODS": "any set value switches it on (upstream semantics)",
    "AGENTWATCH_SECURITY_CSP": "a Content-Security-Policy, sent as the app wrote it (only control characters are refused)",
    "AGENTWATCH_SECURITY_HSTS": "a Strict-Transport-Security value, sent as written (only control characters are refused)",
}
# Typed variables that accept anything today, without a warning. Listed so a gap is visible;
# remove an entry when its reader learns to warn (the test then holds it to one warning).
KNOWN_SILENT: dict[str, str] = {}

GARBAGE = "\u00bfgarbage value?"  # not a number, boolean, choice, exporter, target, pattern entry or URL
GARBAGE_FOR = {"AGENTWATCH_SCRUB_EXTRA_PATTERNS": "bad=(unclosed"}  # any other text is a valid regex
OUT_OF_RANGE = ("-1", "1e12", "nan")


def read_everything() -> None:
    """Every reader agentwatch has, on ``os.environ`` (never raising is part of the contract)."""
    from agentwatch.distro import settings as distro_settings
    from agentwatch.distro import genai_choice
    from agentwatch.instrumentors import _genai_common as g, intent, planner, rag
    from agentwatch.web import config as web_config

    from agentwatch.distro import exporters

    loaded = distro_settings.load_settings(argv=["app.py"])
    for signal in ("traces", "metrics", "logs"):
        exporters.resolve_names(signal, loaded)
    web_config.load()
    g.capture_settings()
    g.PriceTable.load()
    genai_choice.instrumentation_choice()
    for role in (intent.IntentRole(), rag.RetrievalRole(), planner.PlannerRole(), planner.CriticRole()):
        role.default_extractor()
    from agentwatch.instrumentors._agents.settings import capture_content, clip
    from agentwatch.instrumentors._agents.targets import parse_targets

    capture_content()
    clip("x" * 10)
    for variable in ("AGENTWATCH_INTENT_TARGETS", "AGENTWATCH_RAG_TARGETS", "AGENTWATCH_PLANNER_TARGETS",
                     "AGENTWATCH_CRITIC_TARGETS", "AGENTWATCH_CACHE_TARGETS", "AGENTWATCH_QUEUE_TARGETS",
                     "AGENTWATCH_RETRY_TARGETS", "AGENTWATCH_TOOL_TARGETS",
                     "AGENTWATCH_AGENT_TARGETS"):
        parse_targets(variable)
    from agentwatch.instrumentors import breakers, chromadb  # importable without chromadb / breaker libraries

    chromadb.collection_limit()
    breakers.max_names()



def _read(name: str, value: str) -> list[str]:
    """The agentwatch messages naming ``name`` after reading everything with ``name=value``."""
    _diagnostics.reset()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_"))}
    with mock.patch.dict(os.environ, {**clean, name: value}, clear=True):
        read_everything()
    return [m for m in _diagnostics.messages() if name in m]


@pytest.mark.parametrize("name", NAMES)
def test_empty_value_is_unset(name):
    assert _read(name, "") == []
    assert _read(name, "   ") == []


@pytest.mark.parametrize("name", NAMES)
def test_garbage_warns_exactly_once_naming_the_variable(name):
    messages = _read(name, GARBAGE_FOR.get(name, GARBAGE))
    if name in FREE_TEXT or name in KNOWN_SILENT:
        assert len(messages) <= 1, messages
        return
    assert len(messages) == 1, f"{name}={GARBAGE!r} gave {messages!r}"
    assert messages[0].startswith(name) or f"{name}=" in messages[0] or f"{name}:" in messages[0], messages


@pytest.mark.parametrize("name", NAMES)
def test_out_of_range_numbers_warn_at_most_once(name):
    for value in OUT_OF_RANGE:
        assert len(_read(name, value)) <= 1, (name, value)


def test_free_text_and_known_silent_lists_name_real_variables():
    assert set(FREE_TEXT) | set(KNOWN_SILENT) <= set(NAMES)


@pytest.mark.slow
def test_all_garbage_at_once_still_serves(tmp_path):
    """One subprocess with every catalogue variable garbled: it starts, serves, and warns once per typed variable."""
    from _service import clean_env, start_service

    # A foreign OTEL_PYTHON_DISTRO/CONFIGURATOR is respected by design (tests/test_distro_selection.py):
    # garbling them would skip agentwatch and hide the rest of this run.
    values = {name: GARBAGE_FOR.get(name, GARBAGE) for name in NAMES if name not in FREE_TEXT or "PYTHON_" not in name
              or name.startswith(("OTEL_PYTHON_DISABLED", "OTEL_PYTHON_FASTAPI", "OTEL_PYTHON_EXCLUDED"))}
    assert "OTEL_PYTHON_DISTRO" not in values and "OTEL_SERVICE_NAME" in values
    values["AGENTWATCH_FILE_DIR"] = str(tmp_path / GARBAGE)  # garbage, but not inside the repository
    values["AGENTWATCH_HEALTH_DISK_PATH"] = str(tmp_path / GARBAGE)
    service = start_service(tmp_path, clean_env(**values))
    try:
        status, body = service.request("GET", "/documents/kb-001")
        assert status == 200, body
    finally:
        service.terminate()
    stderr = service.stderr()
    assert "Traceback" not in stderr and "Failed to auto initialize" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("agentwatch WARNING: ")]
    for name in NAMES:
        if name in FREE_TEXT or name in KNOWN_SILENT:
            continue
        naming = [line for line in lines if f" {name}=" in line or f" {name}:" in line]
        assert len(naming) <= 1, (name, naming)
    warned = " ".join(lines)
    for name in ("OTEL_SDK_DISABLED", "OTEL_EXPORTER_OTLP_PROTOCOL", "AGENTWATCH_SHUTDOWN_TIMEOUT", "AGENTWATCH_SCRUB",
                 "OTEL_TRACES_EXPORTER", "AGENTWATCH_HEALTH_ENABLED", "AGENTWATCH_INTENT_MAX_DISTINCT"):
        assert f" {name}=" in warned, (name, stderr)  # the pipeline, web and agent readers all ran


# --- OTLP endpoints --------------------------------------------------------------------------------------
ENDPOINT_VARS = ["OTEL_EXPORTER_OTLP_ENDPOINT"] + [
    f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT" for signal in ("TRACES", "METRICS", "LOGS")
]
# value -> (what the warning says, whether the value is unusable: True -> fallback, False -> completed)
BAD_ENDPOINTS = {
    GARBAGE: ("contains spaces", True),
    "ftp://collector:4318": ("scheme 'ftp'", True),
    "grpc://collector:4317": ("scheme 'grpc'", True),
    "http://collector:99999": ("port is not a number from 1 to 65535", True),
    "http://collector:0": ("port is not a number from 1 to 65535", True),
    "http://collector:http": ("port is not a number from 1 to 65535", True),
    "http://:4318": ("no valid host name", True),
    "collector:4318": ("has no scheme", False),
}


def _endpoint_settings(env: dict[str, str]):
    from agentwatch.distro.settings import load_settings

    _diagnostics.reset()
    return load_settings(env, argv=["app.py"])


@pytest.mark.parametrize("value", list(BAD_ENDPOINTS))
@pytest.mark.parametrize("name", ENDPOINT_VARS)
def test_bad_endpoint_warns_once_and_falls_back(name, value):
    said, unusable = BAD_ENDPOINTS[value]
    base = "http://base.example:4318"
    env = {name: value}
    if name != "OTEL_EXPORTER_OTLP_ENDPOINT":
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = base  # a bad per-signal URL falls back to what the base gives
    loaded = _endpoint_settings(env)
    messages = [m for m in _diagnostics.messages() if name in m]
    assert len(messages) == 1, messages
    assert messages[0].startswith(f"{name}={value!r} ") and said in messages[0], messages
    if name == "OTEL_EXPORTER_OTLP_ENDPOINT":
        used = "http://localhost:4318" if unusable else "http://" + value  # the default, or the value completed
        expected = {s: f"{used}/v1/{s}" for s in ("traces", "metrics", "logs")}
    else:
        signal = name.split("_")[3].lower()
        expected = {s: f"{base}/v1/{s}" for s in ("traces", "metrics", "logs")}
        used = expected[signal] if unusable else "http://" + value
        expected[signal] = used
    assert messages[0].endswith(f"; using {used!r} instead"), messages
    assert loaded.otlp_endpoints == expected  # what the exporters are given
    assert ("ignored" in loaded.sources[name]) is unusable, loaded.sources[name]


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
@pytest.mark.parametrize("name", ENDPOINT_VARS)
def test_empty_or_good_endpoint_is_silent(name, protocol):
    for value in ("", "  ", "http://collector:4318", "https://user:pw@collector.example/otlp", "http://[::1]:4318"):
        _endpoint_settings({name: value, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol})
        assert [m for m in _diagnostics.messages() if name in m] == [], (name, value)


def test_grpc_takes_host_port_and_unix_targets_as_they_are():
    loaded = _endpoint_settings({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317",
                                 "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "unix:///run/otel.sock"})
    assert loaded.otlp_endpoints == {"traces": "collector:4317", "metrics": "collector:4317",
                                     "logs": "unix:///run/otel.sock"}
    assert _diagnostics.messages() == []


def test_conflicting_endpoint_values():
    # Mixed protocols: the base gets a signal path only for the HTTP signal.
    loaded = _endpoint_settings({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
                                 "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"})
    assert loaded.otlp_endpoints["traces"] == "http://collector:4317"
    assert loaded.otlp_endpoints["metrics"] == "http://collector:4317/v1/metrics"
    # Both bad: each variable warns once, and the per-signal one says it fell back to the default.
    loaded = _endpoint_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "nope://x", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x:1e3"})
    messages = _diagnostics.messages()
    assert len([m for m in messages if m.startswith("OTEL_EXPORTER_OTLP_ENDPOINT=")]) == 1, messages
    assert len([m for m in messages if m.startswith("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=")]) == 1, messages
    assert loaded.otlp_endpoints["traces"] == "http://localhost:4318/v1/traces"
    assert "using 'http://localhost:4318/v1/traces' instead" in " ".join(messages)
    # A good per-signal URL wins over a bad base, for its signal only.
    loaded = _endpoint_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "nope://x",
                                 "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://logs.example:4318/v1/logs"})
    assert loaded.otlp_endpoints["logs"] == "http://logs.example:4318/v1/logs"
    assert loaded.otlp_endpoints["traces"] == "http://localhost:4318/v1/traces"


def _export_one_span(env: dict[str, str]) -> None:
    """Build the traces exporters as the configurator does, with ``env`` as the process environment (the
    upstream exporters read it too), and export one span through them."""
    from opentelemetry.sdk.trace import TracerProvider

    from agentwatch.distro import exporters
    from agentwatch.distro.settings import load_settings

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_"))}
    with mock.patch.dict(os.environ, {**clean, **env, "OTEL_EXPORTER_OTLP_TIMEOUT": "3"}, clear=True):
        _diagnostics.reset()
        loaded = load_settings(argv=["app.py"])
        built = exporters.build_exporters("traces", loaded, os.environ)
    span = TracerProvider().get_tracer("matrix").start_span("fallback")
    span.end()
    for exporter in built:
        exporter.export([span])
        exporter.shutdown()


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_spans_reach_the_base_endpoint_when_the_signal_endpoint_is_bad(protocol, caplog):
    """Without the validated endpoint handed over, the upstream exporter would read the bad variable itself."""
    caplog.set_level(logging.CRITICAL)
    with OTLPReceiver(protocol=protocol) as rx:
        _export_one_span({**rx.env(), "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://" + rx.endpoint.split("://")[1]})
        assert [s["name"] for s in rx.spans()] == ["fallback"]
    assert any(m.startswith("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT='ftp://") for m in _diagnostics.messages())


@pytest.mark.parametrize("protocol", ["grpc", "http"])
@pytest.mark.parametrize("bad", ["", "http://localhost:65536", "\u00bfgarbage value?"])
def test_spans_reach_the_default_endpoint_when_the_base_endpoint_is_bad(protocol, bad, caplog):
    """An empty or unusable OTEL_EXPORTER_OTLP_ENDPOINT means the default (localhost:4317 / 4318); the gRPC
    exporter, left alone, would dial an empty target."""
    caplog.set_level(logging.CRITICAL)
    port = 4317 if protocol == "grpc" else 4318
    try:
        rx = OTLPReceiver(protocol=protocol, port=port).start()
    except OSError:
        pytest.skip(f"port {port} is in use on this machine")
    try:
        env = {"OTEL_EXPORTER_OTLP_PROTOCOL": rx.env()["OTEL_EXPORTER_OTLP_PROTOCOL"], "OTEL_EXPORTER_OTLP_ENDPOINT": bad}
        _export_one_span(env)
        assert [s["name"] for s in rx.spans()] == ["fallback"]
    finally:
        rx.stop()


def test_grpc_endpoint_without_scheme_warns_about_tls_once_at_start_up(monkeypatch):
    """Shared by the three signals, the TLS hint is one line at start-up, not one per signal."""
    from agentwatch.distro import configurator

    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317",
           "AGENTWATCH_ENDPOINT_CHECK": "false", "AGENTWATCH_EXPORT": "otlp"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    loaded = _endpoint_settings(env)
    configurator._check_endpoints(loaded)
    tls = [m for m in _diagnostics.messages() if "uses TLS" in m]
    assert len(tls) == 1 and "OTEL_EXPORTER_OTLP_INSECURE=true" in tls[0], _diagnostics.messages()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
    _diagnostics.reset()
    configurator._check_endpoints(_endpoint_settings({**env, "OTEL_EXPORTER_OTLP_INSECURE": "true"}))
    assert not [m for m in _diagnostics.messages() if "uses TLS" in m]
