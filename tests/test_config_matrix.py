"""Bad configuration matrix (issue 8, item 3), generated from the catalogue.

Every variable of ``agentwatch.distro.environment_variables.VARIABLES`` is set, one at a time, to an
empty value, garbage, and out-of-range numbers, and read in-process by every reader agentwatch has
(distro settings, web/health settings, GenAI capture settings, price table, agent roles). Nothing
raises; an empty value is treated as unset (no warning); a value that is not understood gives exactly
one warning naming the variable. A new variable in the catalogue is covered automatically: unless it is
listed below as free text, garbage must warn.

``test_all_garbage_at_once_still_serves`` then starts the real service with every variable garbled at
once and checks it starts and serves.
"""

from __future__ import annotations

import os
from unittest import mock

import pytest

from agentwatch.distro import _diagnostics
from agentwatch.distro.environment_variables import VARIABLES

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
}
# Typed variables that accept anything today, without a warning. Listed so the gap is visible;
# remove an entry when its reader learns to warn (the test then holds it to one warning).
KNOWN_SILENT = {
    "OTEL_EXPORTER_OTLP_ENDPOINT": "endpoint mistakes are checked by the configurator (endpoints.py), not by settings",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "as above",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "as above",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "as above",
}

GARBAGE = "\u00bfgarbage value?"  # not a number, boolean, choice, exporter, target, pattern entry or URL
GARBAGE_FOR = {"AGENTWATCH_SCRUB_EXTRA_PATTERNS": "bad=(unclosed"}  # any other text is a valid regex
OUT_OF_RANGE = ("-1", "1e12", "nan")


def read_everything() -> None:
    """Every reader agentwatch has, on ``os.environ`` (never raising is part of the contract)."""
    from agentwatch.distro import settings as distro_settings
    from agentwatch.instrumentors import _genai_common as g, intent, planner, rag
    from agentwatch.web import config as web_config

    from agentwatch.distro import exporters

    loaded = distro_settings.load_settings(argv=["app.py"])
    for signal in ("traces", "metrics", "logs"):
        exporters.resolve_names(signal, loaded)
    web_config.load()
    g.capture_settings()
    g.cost_enabled()
    g.PriceTable.load()
    g.instrumentation_choice()
    for role in (intent.IntentRole(), rag.RetrievalRole(), planner.PlannerRole(), planner.CriticRole()):
        role.default_extractor()
    from agentwatch.instrumentors import _wrapping as w

    w.capture_content()
    w.clip("x" * 10)
    for variable in ("AGENTWATCH_INTENT_TARGETS", "AGENTWATCH_RAG_TARGETS", "AGENTWATCH_PLANNER_TARGETS",
                     "AGENTWATCH_CRITIC_TARGETS"):
        w.parse_targets(variable)



def _read(name: str, value: str) -> list[str]:
    """The agentwatch messages naming ``name`` after reading everything with ``name=value``."""
    _diagnostics.reset()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_"))}
    with mock.patch.dict(os.environ, {**clean, name: value}, clear=True):
        try:
            read_everything()
        except ImportError:
            pass
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
