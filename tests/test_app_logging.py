"""The app's logging stays the app's (issue 16, items 1-2).

Real apps under ``opentelemetry-instrument`` (and one configured from code), exporting to a real OTLP
receiver: whatever ``AGENTWATCH_LOG_FORMAT`` says, the level the app configures decides what is printed
and exported; the upstream logging variables mean what they mean upstream; ``AGENTWATCH_LOG_EXPORT_LEVEL``
exports below or above the console's level; the app's console output is scrubbed unless switched off.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from _service import BIN, FAST_EXPORT, clean_env
from otlp_receiver import OTLPReceiver

STYLES = {
    "basicConfig": "logging.basicConfig(level=logging.INFO, format='APP %(levelname)s %(name)s %(message)s')",
    "dictConfig": textwrap.dedent("""\
        logging.config.dictConfig({
            "version": 1, "disable_existing_loggers": False,
            "formatters": {"plain": {"format": "APP %(levelname)s %(name)s %(message)s"}},
            "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stdout"}},
            "root": {"level": "INFO", "handlers": ["console"]},
        })"""),
    "never": "",
}

SCRIPT = """\
import logging, logging.config
{configure}
log = logging.getLogger("shop.orders")
log.debug("debug line")
log.info("info line for alice@example.com")
log.warning("warning line")
"""


def _run(tmp_path: Path, script: str, **env: str) -> tuple[str, list[dict]]:
    path = tmp_path / "app_logging.py"
    path.write_text(script)
    with OTLPReceiver(protocol="http") as receiver:
        full_env = clean_env(**receiver.env(), **FAST_EXPORT, OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none",
                             AGENTWATCH_ENDPOINT_CHECK="false", **env)
        done = subprocess.run([str(BIN / "opentelemetry-instrument"), "python", str(path)], env=full_env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        records = [r for r in receiver.logs() if r.get("scope") == "shop.orders"]
    return done.stdout + done.stderr, records


def _bodies(records: list[dict]) -> list[str]:
    return [str(r["body"]) for r in records]


@pytest.mark.parametrize("log_format", ["off", "json", "pretty"])
@pytest.mark.parametrize("style", ["basicConfig", "dictConfig"])
def test_an_app_configured_at_info_prints_and_exports_info(tmp_path, log_format, style):
    console, records = _run(tmp_path, SCRIPT.format(configure=STYLES[style]), AGENTWATCH_LOG_FORMAT=log_format)
    assert _bodies(records) == ["info line for [REDACTED:email]", "warning line"]
    assert "info line for [REDACTED:email]" in console and "warning line" in console
    assert "debug line" not in console and "alice@example.com" not in console
    if log_format == "off":
        assert "APP INFO shop.orders info line for [REDACTED:email]" in console  # the app's own format
    elif log_format == "json":
        lines = [json.loads(line) for line in console.splitlines() if line.startswith("{")]
        assert [(line["level"], line["message"]) for line in lines] == [
            ("INFO", "info line for [REDACTED:email]"), ("WARNING", "warning line")]
    else:
        assert "APP " not in console and " INFO     shop.orders  info line for [REDACTED:email]" in console


@pytest.mark.parametrize("log_format", ["off", "json"])
def test_an_app_that_never_configures_logging_keeps_pythons_defaults(tmp_path, log_format):
    console, records = _run(tmp_path, SCRIPT.format(configure=STYLES["never"]), AGENTWATCH_LOG_FORMAT=log_format)
    assert _bodies(records) == ["warning line"]  # the root logger's default level, WARNING, as without agentwatch
    assert "warning line" in console and "info line" not in console
    if log_format == "off":
        assert "warning line\n" in console and "WARNING" not in console  # Python's last resort: the message only
    if log_format == "json":
        assert json.loads(next(line for line in console.splitlines() if line.startswith("{")))["message"] == "warning line"


def test_logging_configured_before_agentwatch_is_set_up_from_code(tmp_path):
    script = SCRIPT.format(configure=STYLES["basicConfig"] + "\nimport agentwatch; agentwatch.configure()")
    path = tmp_path / "from_code.py"
    path.write_text(script.replace('log.info("info line', 'log.info("info line').replace(
        'log = logging.getLogger("shop.orders")', 'log = logging.getLogger("shop.orders")'))
    with OTLPReceiver(protocol="http") as receiver:
        env = clean_env(**receiver.env(), **FAST_EXPORT, OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none",
                        AGENTWATCH_ENDPOINT_CHECK="false", AGENTWATCH_LOG_FORMAT="json")
        done = subprocess.run([str(BIN / "python"), str(path)], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        records = [r for r in receiver.logs() if r.get("scope") == "shop.orders"]
    assert _bodies(records) == ["info line for [REDACTED:email]", "warning line"]
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert [line["message"] for line in lines] == ["info line for [REDACTED:email]", "warning line"]


def test_the_sdks_own_handler_when_asked_for(tmp_path):
    console, records = _run(tmp_path, SCRIPT.format(configure=STYLES["basicConfig"]),
                            OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED="true")
    assert _bodies(records) == ["info line for [REDACTED:email]", "warning line"]  # each once


def test_upstream_correlation_format_and_level(tmp_path):
    script = SCRIPT.format(configure="from opentelemetry import trace\nspan = trace.get_tracer('t').start_span('s')\n"
                                     "ctx = trace.use_span(span); ctx.__enter__()")
    console, records = _run(tmp_path, script, OTEL_PYTHON_LOG_CORRELATION="true", OTEL_PYTHON_LOG_LEVEL="debug",
                            OTEL_PYTHON_LOG_FORMAT="CORR trace=%(otelTraceID)s %(levelname)s %(message)s")
    assert _bodies(records) == ["debug line", "info line for [REDACTED:email]", "warning line"]
    traced = [line for line in console.splitlines() if line.startswith("CORR trace=") and " line" in line]
    assert [line.split(" ", 2)[2] for line in traced] == [
        "DEBUG debug line", "INFO info line for [REDACTED:email]", "WARNING warning line"], console
    assert all(len(line.split()[1]) == len("trace=") + 32 for line in traced), console


def test_export_level_below_the_console(tmp_path):
    script = SCRIPT.format(configure="logging.basicConfig(level=logging.WARNING, format='APP %(levelname)s %(message)s')")
    console, records = _run(tmp_path, script, AGENTWATCH_LOG_EXPORT_LEVEL="info")
    assert _bodies(records) == ["info line for [REDACTED:email]", "warning line"]
    assert "APP WARNING warning line" in console and "info line" not in console  # the console as the app set it


def test_export_level_above_the_console(tmp_path):
    console, records = _run(tmp_path, SCRIPT.format(configure=STYLES["basicConfig"]), AGENTWATCH_LOG_EXPORT_LEVEL="warning")
    assert _bodies(records) == ["warning line"]
    assert "APP INFO shop.orders info line for [REDACTED:email]" in console


def test_a_child_loggers_own_handler_prints_once(tmp_path):
    script = SCRIPT.format(configure="h = logging.StreamHandler(); h.setFormatter(logging.Formatter('OWN %(message)s'))\n"
                                     "logging.getLogger('shop').addHandler(h)")
    for log_format in ("off", "json"):
        console, _ = _run(tmp_path, script, AGENTWATCH_LOG_FORMAT=log_format)
        assert console.count("warning line") == 1, console


def test_console_scrubbing_can_be_switched_off(tmp_path):
    console, records = _run(tmp_path, SCRIPT.format(configure=STYLES["basicConfig"]), AGENTWATCH_LOG_SCRUB_CONSOLE="false")
    assert "APP INFO shop.orders info line for alice@example.com" in console
    assert _bodies(records) == ["info line for [REDACTED:email]", "warning line"]  # the export is scrubbed regardless
