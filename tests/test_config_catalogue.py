"""One configuration mechanism: every variable carries its kind (typed default + parser), one reader reads
them all, and the settings sections take their defaults from the catalogue (written once)."""

from __future__ import annotations

import pytest

from agentwatch import _records as records
from agentwatch.distro import environment_variables as ev
from agentwatch.distro import settings as s


@pytest.mark.parametrize("var", ev.VARIABLES, ids=lambda v: v.name)
def test_every_variable_has_a_kind_whose_default_it_parses_back(var: ev.EnvVar) -> None:
    assert isinstance(var.kind, ev.Kind)
    reader = s.Reader({})
    assert reader.read(var.name) == var.default
    assert reader.sources[var.name] == "default"
    if isinstance(var.kind, (ev.Flag, ev.Number, ev.Choice, ev.Port)):  # the shown default is the typed one
        raw = str(var.default).lower() if isinstance(var.kind, ev.Flag) else f"{var.default:g}" if isinstance(var.kind, ev.Number) else str(var.default)
        assert s.Reader({var.name: raw}).read(var.name) == var.default


def test_sections_take_their_defaults_from_the_catalogue() -> None:
    """A default written in a section dataclass would be a second copy; each field's is the catalogue's."""
    sections = {s.WebSettings: s.load_web, s.GenAISettings: s.load_genai, s.AgentSettings: s.load_agent, s.ScrubSettings: s.load_scrub}
    for cls, load in sections.items():
        assert load(s.Reader({})) == cls(), cls.__name__


def test_a_bad_value_warns_once_and_falls_back(capsys: pytest.CaptureFixture[str]) -> None:
    reader = s.Reader({ev.AGENTWATCH_HEALTH_CACHE_TTL: "-1", ev.AGENTWATCH_LOG_FORMAT: "XML"})
    assert reader.read(ev.AGENTWATCH_HEALTH_CACHE_TTL) == 5.0
    assert reader.read(ev.AGENTWATCH_LOG_FORMAT) == "off"
    err = capsys.readouterr().err
    assert "AGENTWATCH_HEALTH_CACHE_TTL='-1' is not a number between 0 and 86400; using 5.0 instead" in err
    assert "AGENTWATCH_LOG_FORMAT='XML' is not one of json, pretty, off; using 'off' instead" in err
    assert reader.sources[ev.AGENTWATCH_LOG_FORMAT].startswith("default (invalid value")


def test_kinds_parse_like_the_table_says() -> None:
    assert ev.Flag().parse("ON") is True and ev.Flag().parse("no") is False
    assert ev.Number(1, 0, 10, whole=True).parse("7") == 7
    with pytest.raises(ev.Invalid):
        ev.Number(1, 0, 10, whole=True).parse("7.5")
    with pytest.raises(ev.Invalid):
        ev.Number(1, 0, 10).parse("nan")
    assert ev.Names(lower=False).parse(" a:B , ,c ") == ("a:B", "c")
    assert ev.Capture().parse("span_only") == "SPAN_ONLY" and ev.Capture().parse("true") == "SPAN_ONLY"
    assert ev.Port().parse("4318") == 4318
    with pytest.raises(ev.Invalid):
        ev.Port().parse("70000")


def test_settings_sections_are_fields_of_the_one_settings_object() -> None:
    fields = set(records.fields(s.Settings))
    assert {"scrub", "web", "genai", "agent"} <= fields


def test_core_settings_defaults_are_the_catalogue_s() -> None:
    """The flat core fields of Settings carry the catalogue's defaults too (not a second copy)."""
    core = {
        "sdk_disabled": ev.OTEL_SDK_DISABLED, "service_version": ev.AGENTWATCH_SERVICE_VERSION,
        "environment": ev.AGENTWATCH_ENVIRONMENT, "export_mode": ev.AGENTWATCH_EXPORT,
        "prometheus_host": ev.OTEL_EXPORTER_PROMETHEUS_HOST, "prometheus_port": ev.OTEL_EXPORTER_PROMETHEUS_PORT,
        "file_dir": ev.AGENTWATCH_FILE_DIR, "endpoint_check": ev.AGENTWATCH_ENDPOINT_CHECK,
        "asgi_message_spans": ev.AGENTWATCH_ASGI_MESSAGE_SPANS, "shutdown_timeout": ev.AGENTWATCH_SHUTDOWN_TIMEOUT,
        "log_format": ev.AGENTWATCH_LOG_FORMAT, "strict": ev.AGENTWATCH_STRICT,
    }
    defaults, loaded = s.Settings(), s.load_settings({}, argv=["app.py"])
    for attribute, name in core.items():
        assert getattr(defaults, attribute) == getattr(loaded, attribute) == ev.BY_NAME[name].default, attribute
    assert defaults.file_max_bytes == loaded.file_max_bytes == ev.BY_NAME[ev.AGENTWATCH_FILE_MAX_MB].default * 1024 * 1024


def test_the_catalogue_compiles_no_source_when_imported() -> None:
    """The catalogue is read before anything else at every start: its kinds are written-out records, not
    frozen dataclasses, whose generated methods Python 3.11 compiles from source at import (~4.5 ms)."""
    import subprocess
    import sys

    probe = (
        "import sys, functools, dataclasses, typing\n"  # the standard library's own generated code comes first
        "compiled = []\n"
        "sys.addaudithook(lambda event, args: compiled.append(args[1]) if event == 'compile' and args[1] == '<string>' else None)\n"
        "import agentwatch.distro.environment_variables as ev\n"
        "assert ev.Number(1, 0, 10, whole=True) == ev.Number(1, 0, 10, whole=True) != ev.Number(2, 0, 10)\n"
        "print(len(compiled))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.strip() == "0", proc.stdout


def test_kinds_and_variables_are_read_only_values() -> None:
    """As the frozen dataclasses they replace: equal and hashed by value, shown with their fields, read-only;
    a variable's section is not part of its identity."""
    number = ev.Number(1, 0, 10, unit="s")
    assert number == ev.Number(1, 0, 10, unit="s") and hash(number) == hash(ev.Number(1, 0, 10, unit="s"))
    assert number != ev.Number(1, 0, 10) and ev.Flag(True) != ev.Text(True)  # type: ignore[arg-type]
    assert repr(number) == "Number(default=1, low=0, high=10, unit='s', whole=False)"
    with pytest.raises(AttributeError, match="read-only"):
        number.low = 5  # type: ignore[misc]
    with pytest.raises(AttributeError, match="read-only"):
        del number.default  # type: ignore[misc]
    var = ev.BY_NAME[ev.AGENTWATCH_SCRUB]
    assert var == ev.EnvVar(var.name, var.kind, var.meaning, var.shown, section="elsewhere")
    assert len({var, ev.EnvVar(var.name, var.kind, var.meaning, var.shown)}) == 1
    assert "section" not in repr(var) and repr(var).startswith("EnvVar(name='AGENTWATCH_SCRUB', kind=Flag(default=True)")
