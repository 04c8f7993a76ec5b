"""AGENTWATCH_LOG_FORMAT lines when something cannot be scrubbed, printed or formatted.

Nothing is printed unscrubbed and no record is lost: a value that cannot be scrubbed becomes
``[REDACTED:error]``, one whose ``__str__`` raises ``<unprintable TYPE>``, a record that cannot be
formatted at all is printed with its level and logger only. Each kind is said once on stderr (one
agentwatch warning per kind, however many records), so the redaction is visible, not silent.
"""

from __future__ import annotations

import io
import json
import logging

import pytest

from agentwatch.distro import _diagnostics, logs, scrub
from agentwatch.distro.logs import JSONFormatter, PrettyFormatter


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")

    __repr__ = __str__


def _record(message: str = "paid by %s", args: tuple = ("alice@example.com",), **extra) -> logging.LogRecord:
    record = logging.LogRecord("shop.orders", logging.INFO, __file__, 10, message, args, None)
    record.__dict__.update(extra)
    return record


def _said(kind_words: str) -> list[str]:
    return [m for m in _diagnostics.messages() if m.startswith("stdout logs (AGENTWATCH_LOG_FORMAT)") and kind_words in m]


def _line(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    return formatter.format(record)


FORMATTERS = {"json": JSONFormatter, "pretty": lambda: PrettyFormatter(color=False)}


@pytest.mark.parametrize("fmt", list(FORMATTERS))
def test_a_value_that_cannot_be_scrubbed_is_redacted_and_said_once(monkeypatch, fmt):
    real = scrub.Scrubber.scrub_value

    def flaky(self, value, key=None):
        if value == "poison":
            raise ValueError("cannot scrub poison (secret inside)")
        return real(self, value, key)

    monkeypatch.setattr(scrub.Scrubber, "scrub_value", flaky)
    formatter = FORMATTERS[fmt]()
    lines = [_line(formatter, _record(note="poison", order=7)) for _ in range(3)]
    for line in lines:
        assert "poison" not in line and "alice@example.com" not in line
        assert "[REDACTED:error]" in line and "[REDACTED:email]" in line  # only the bad field is lost
    if fmt == "json":
        data = json.loads(lines[0])
        assert data["note"] == "[REDACTED:error]" and data["order"] == 7
    said = _said("scrubbing a log field failed (ValueError)")
    assert len(said) == 1, _diagnostics.messages()
    assert "[REDACTED:error]" in said[0] and "ValueError" in said[0]
    assert "secret inside" not in said[0]  # the error's message may hold the value itself


@pytest.mark.parametrize("fmt", list(FORMATTERS))
def test_an_unprintable_value_or_key_is_marked_and_said_once(fmt):
    formatter = FORMATTERS[fmt]()
    for _ in range(3):
        line = _line(formatter, _record(thing=Unprintable(), mapping={Unprintable(): 1, "ok": 2}))
        assert "<unprintable Unprintable>" in line and "[REDACTED:email]" in line
    assert len(_said("turning a log field into text (its __str__) failed")) == 1, _diagnostics.messages()


@pytest.mark.parametrize("fmt", list(FORMATTERS))
def test_without_a_scrubber_nothing_is_printed_unscrubbed(monkeypatch, fmt):
    def broken():
        raise RuntimeError("settings unreadable")

    monkeypatch.setattr(scrub, "default_scrubber", broken)
    formatter = FORMATTERS[fmt]()
    lines = [_line(formatter, _record(customer="bob@example.com")) for _ in range(3)]
    for line in lines:
        assert "alice@" not in line and "bob@" not in line
        assert "[REDACTED:error]" in line
    if fmt == "json":
        data = json.loads(lines[0])
        assert data["message"] == data["customer"] == "[REDACTED:error]"
        assert data["request_id"] is None and data["level"] == "INFO"  # absent fields stay null
    assert len(_said("setting up the scrubber failed")) == 1, _diagnostics.messages()


@pytest.mark.parametrize("fmt", list(FORMATTERS))
def test_a_record_that_cannot_be_formatted_is_printed_reduced(monkeypatch, fmt):
    def broken(_record):
        raise KeyError("trace context")

    monkeypatch.setattr(logs, "_trace_ids", broken)
    formatter = FORMATTERS[fmt]()
    lines = [_line(formatter, _record()) for _ in range(3)]
    for line in lines:
        assert "INFO" in line and "shop.orders" in line and "[REDACTED:error]" in line
        assert "alice@" not in line
    assert len(_said("formatting a log record failed")) == 1, _diagnostics.messages()


def test_a_bad_format_string_keeps_the_line_and_is_said_once():
    formatter = JSONFormatter()
    for _ in range(3):
        data = json.loads(_line(formatter, _record("%d items for %s", ("many",))))
        assert data["message"].startswith("%d items for %s (message could not be formatted: TypeError")
    assert len(_said("formatting a log message with its arguments failed")) == 1, _diagnostics.messages()


def test_through_logging_no_record_is_lost_and_no_logging_error(monkeypatch, capsys):
    """Via a real handler: every record gives a line, none goes to logging's 'Logging error' path."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    logger = logging.getLogger("agentwatch.tests.logfaults.app")
    logger.propagate = False
    logger.addHandler(handler)
    monkeypatch.setattr(logs, "_trace_ids", lambda _r: (_ for _ in ()).throw(KeyError("x")))
    try:
        for i in range(5):
            logger.warning("order %s", i, extra={"thing": Unprintable()})
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5 and all(json.loads(l)["level"] == "WARNING" for l in lines)
    assert "Logging error" not in capsys.readouterr().err
