"""The scrubber corpus (tests/scrub_corpus/*.jsonl) through every way out of the process, on both engines.

Each entry (format: tests/scrub_corpus/README.md) is placed in a span, log records, a metric point
and stdout log lines, exported through the real exporters behind agentwatch's guards (OTLP gRPC and
HTTP to the local receiver, ``otlp_json_file``, ``console``) and the real stdout handler (JSON and
pretty, with a uvicorn access-log line), under ``AGENTWATCH_SCRUB_ENGINE=auto`` and ``re``. What
comes out is parsed back into one item per entry and signal, and each item is checked: nothing of
``gone``, every ``[REDACTED:<kind>]`` of ``kinds``, all of ``keep``, and ``max_len`` for the cut
attribute. An entry an exporter lost fails too (a dropped item would hide a leak check).
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry import trace
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from agentwatch.distro import configurator, exporters
from agentwatch.distro import logs as stdout_logs
from agentwatch.distro.settings import load_settings, reset_settings
from otlp_receiver import OTLPReceiver

# LoggerProvider(log_record_limits=...) is opentelemetry-sdk 1.45's: on 1.44 (the lowest resolution) the SDK reads
# the length limits from the environment itself and cuts before the scrubber (said by a start-up warning;
# tests/test_lowest_compat.py covers that path).
needs_log_limits = pytest.mark.skipif(
    not configurator._LOGGER_PROVIDER_TAKES_LIMITS,
    reason="opentelemetry-sdk < 1.45 (the lowest resolution) takes no log_record_limits: it cuts log attributes itself",
)

CORPUS = Path(__file__).parent / "scrub_corpus"
SIGNALS = ("spans", "logs", "metrics", "stdout")
ENGINES = ("auto", "re")
_REMOTE = SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, True, TraceFlags(1))


@dataclass
class Entry:
    """One corpus line (see the README for the fields)."""

    id: str
    where: str  # file:line
    text: str
    gone: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)
    as_: str = "value"
    attribute: str | None = None
    signals: tuple[str, ...] = SIGNALS
    span_kind: str | None = None
    limit: int | None = None
    max_len: int | None = None

    def wants(self, signal: str) -> bool:
        if signal not in self.signals:
            return False
        if self.as_ == "tracestate":
            return signal == "spans"
        return True


def _fill(text: str) -> str:
    """The engine corpus's ``{kind}`` placeholders, filled with the fake secrets its own tests use."""
    import random

    import _pii

    keys = _pii.secrets(random.Random(15))
    keys["openai_api_key_body"] = keys["openai_api_key"][3:]
    for kind, value in keys.items():
        text = text.replace("{" + kind + "}", value)
    return text


def load_corpus(directory: Path = CORPUS) -> list[Entry]:
    """Every entry of every ``*.jsonl`` file of ``directory``."""
    entries = []
    for path in sorted(directory.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.startswith("{"):
                continue
            raw = json.loads(line)
            if path.name.startswith("engine_"):  # the engine corpus's format (its README): secrets, placeholders
                raw = {"text": _fill(raw["text"]), "kinds": raw.get("kinds", []),
                       "gone": [_fill(secret) for secret in raw.get("secrets", [])],
                       # a look-alike (no kinds) must come out as it went in
                       **({"keep": [_fill(raw["text"])]} if not raw.get("kinds") else {})}
            unknown = set(raw) - {"text", "gone", "kinds", "keep", "as", "attribute", "signals", "span_kind", "limit",
                                  "pad", "max_len"}
            assert not unknown, f"{path.name}:{number}: unknown fields {unknown}"
            entries.append(
                Entry(
                    id=f"corpus-{len(entries)}",
                    where=f"{path.name}:{number}",
                    text="x" * raw.get("pad", 0) + raw["text"],
                    gone=raw.get("gone", []),
                    kinds=raw.get("kinds", []),
                    keep=raw.get("keep", []),
                    as_=raw.get("as", "value"),
                    attribute=raw.get("attribute"),
                    signals=tuple(raw.get("signals", SIGNALS)),
                    span_kind=raw.get("span_kind"),
                    limit=raw.get("limit"),
                    max_len=raw.get("max_len"),
                )
            )
    return entries


ENTRIES = load_corpus()


def test_the_corpus_loads_and_covers_every_class():
    files = {entry.where.split(":")[0] for entry in ENTRIES}
    assert {"paths_keys.jsonl", "paths_keep.jsonl", "paths_tracestate.jsonl", "paths_truncation.jsonl"} <= files
    assert all(entry.gone or entry.keep or entry.kinds for entry in ENTRIES)


# --- placing an entry --------------------------------------------------------------------------------
def _attributes(entry: Entry) -> dict[str, Any]:
    """An entry's attributes (span, log record, metric point): its id, and the text where it goes."""
    if entry.as_ == "key":
        return {"corpus.id": entry.id, entry.text: "v"}
    if entry.attribute is not None:
        return {"corpus.id": entry.id, entry.attribute: entry.text}
    if entry.as_ == "tracestate":
        return {"corpus.id": entry.id}
    return {"corpus.id": entry.id, "corpus.text": entry.text}


def emit_span(provider: TracerProvider, entry: Entry) -> None:
    tracer = provider.get_tracer("corpus")
    context = None
    if entry.as_ == "tracestate":
        remote = SpanContext(_REMOTE.trace_id, _REMOTE.span_id, True, TraceFlags(1),
                             TraceState([("corpus", entry.text), ("other", "kept")]))
        context = trace.set_span_in_context(NonRecordingSpan(remote))
    kind = {"server": SpanKind.SERVER, "client": SpanKind.CLIENT}.get(entry.span_kind or "", SpanKind.INTERNAL)
    attributes = _attributes(entry)
    value = entry.as_ == "value" and entry.attribute is None
    extra = {"corpus.text": entry.text} if value else {k: v for k, v in attributes.items() if k != "corpus.id"}
    link = Link(_REMOTE, extra or None)
    span = tracer.start_span(entry.id, context=context, kind=kind, attributes=attributes, links=[link])
    if value:
        span.set_attribute("corpus.list", [entry.text, "plain"])
        span.set_status(Status(StatusCode.ERROR, entry.text))
    if extra:
        span.add_event("corpus.event", extra)
    span.end()


def emit_logs(provider: LoggerProvider, entry: Entry) -> None:
    logger = provider.get_logger("corpus")
    attributes = _attributes(entry)
    value = entry.as_ == "value" and entry.attribute is None
    logger.emit(LogRecord(body=entry.text if value else "corpus entry", attributes=attributes))
    if entry.as_ == "key":
        body: Any = {entry.text: "v", "nested": [{entry.text: 1}]}
    elif entry.attribute is not None:
        body = {entry.attribute: entry.text}
    else:
        body = {"payload": entry.text, "nested": [{"q": entry.text}]}
    logger.emit(LogRecord(body=body, attributes={"corpus.id": entry.id}))


def emit_metrics(provider: MeterProvider, entry: Entry) -> None:
    provider.get_meter("corpus").create_counter("corpus.count").add(1, _attributes(entry))


def emit_stdout(entry: Entry) -> None:
    """An application record and a uvicorn access-log line, as the stdout handler prints them."""
    app = logging.getLogger("corpus.app")
    extra = {k: v for k, v in _attributes(entry).items()}
    value = entry.as_ == "value" and entry.attribute is None
    app.warning(entry.text if value else "corpus entry", extra=extra)
    if value:
        # uvicorn's access line: client, method, the raw path with its query string, version, status.
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:51234", "GET", f"/search?q={entry.text}", "1.1", 200,
            extra={"corpus.id": entry.id},
        )


# --- reading what came out ------------------------------------------------------------------------------
# Values the SDK makes, never the app's data: a timestamp or a random id may contain a corpus digit run
# ("5555" in 1796511591815455552) and would read as a leak.
_GENERATED = frozenset({"timeUnixNano", "observedTimeUnixNano", "startTimeUnixNano", "endTimeUnixNano",
                        "time_unix_nano", "observed_time_unix_nano", "start_time_unix_nano", "end_time_unix_nano",
                        "traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id",
                        # the console exporters' ISO 8601 times: a clock reading like 08:51:35.955558 holds "5555"
                        "timestamp", "observed_timestamp", "start_time", "end_time"})


def _strings(node: Any) -> Iterator[str]:
    """Every string (keys too) in a JSON-like tree, but the values of the SDK's timestamps and ids."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            if key not in _GENERATED:
                yield from _strings(value)
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from _strings(item)
    elif node is not None:
        yield str(node)


def _attribute(node: dict, key: str) -> Any:
    """An attribute of an exported item: OTLP JSON (a list of key/value) or the SDK's JSON (a dict)."""
    attributes = node.get("attributes")
    if isinstance(attributes, dict):
        return attributes.get(key)
    if isinstance(attributes, list):
        for pair in attributes:
            if isinstance(pair, dict) and pair.get("key") == key:
                value = pair.get("value") or {}
                return next(iter(value.values()), None)
    return None


def _signal(node: dict) -> str:
    if "events" in node or "spanId" in node or "context" in node:
        return "spans"
    if "body" in node or "severityNumber" in node or "severity_number" in node:
        return "logs"
    return "metrics"


def items(tree: Any, out: dict[tuple[str, str], list[dict]] | None = None) -> dict[tuple[str, str], list[dict]]:
    """The exported items of a JSON tree by ``(entry id, signal)``: spans (named by the entry id)
    and log records and metric points (whose ``corpus.id`` attribute is the entry id)."""
    out = defaultdict(list) if out is None else out
    if isinstance(tree, dict):
        name = tree.get("name")
        if isinstance(name, str) and name.startswith("corpus-") and ("spanId" in tree or "context" in tree):
            out[(name, "spans")].append(tree)
            return out
        ident = _attribute(tree, "corpus.id")
        if isinstance(ident, str) and ident.startswith("corpus-") and "name" not in tree:
            out[(ident, _signal(tree))].append(tree)
            return out
        for value in tree.values():
            items(value, out)
    elif isinstance(tree, list):
        for value in tree:
            items(value, out)
    return out


def _json_stream(text: str) -> Iterator[Any]:
    """The JSON documents printed one after another (the console exporters' output)."""
    decoder = json.JSONDecoder()
    at = 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return
        document, at = decoder.raw_decode(text, at)
        yield document


# --- the runs -------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _forget_settings_afterwards():
    yield
    reset_settings()


def _settings(monkeypatch, engine: str, limit: int | None, **env: str):
    env = {**env, "AGENTWATCH_SCRUB_ENGINE": engine, "AGENTWATCH_ENDPOINT_CHECK": "false"}
    if limit is not None:
        env["OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"] = str(limit)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    return load_settings(env)


def _export(monkeypatch, engine: str, env: dict[str, str], entries: list[Entry], console: io.StringIO | None = None):
    """The entries through providers built as the configurator builds them (its limits), exporters
    chosen by name behind the guards, one pipeline per attribute length limit."""
    by_limit: dict[int | None, list[Entry]] = defaultdict(list)
    for entry in entries:
        by_limit[entry.limit].append(entry)
    for limit, group in by_limit.items():
        settings = _settings(monkeypatch, engine, limit, **env)
        resource = Resource({"service.name": "corpus"})
        tracer_provider = TracerProvider(resource=resource, span_limits=configurator._span_limits(settings))
        logger_provider = LoggerProvider(resource=resource, log_record_limits=configurator._log_limits(settings))
        before = len(exporters.created())
        for exporter in exporters.build_exporters("traces", settings, {}):
            tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        for exporter in exporters.build_exporters("logs", settings, {}):
            logger_provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        readers = exporters.build_metric_readers(settings, {}, export_interval_ms=600_000)
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        if console is not None:
            for guard in exporters.created()[before:]:
                guard.inner.out = console
        for entry in group:
            if entry.wants("spans"):
                emit_span(tracer_provider, entry)
            if entry.wants("logs"):
                emit_logs(logger_provider, entry)
            if entry.wants("metrics"):
                emit_metrics(meter_provider, entry)
        for provider in (tracer_provider, logger_provider, meter_provider):
            provider.force_flush()
            provider.shutdown()


def check(found: dict[tuple[str, str], list[dict]] | dict[tuple[str, str], list[str]], entries: list[Entry],
          path: str, signals: tuple[str, ...]) -> None:
    """Every entry's items: found, nothing of ``gone``, the marks of ``kinds``, all of ``keep``, ``max_len``."""
    problems = []
    for entry in entries:
        for signal in signals:
            if not entry.wants(signal):
                continue
            nodes = found.get((entry.id, signal))
            if not nodes:
                problems.append(f"{entry.where} {path}/{signal}: not exported")
                continue
            blob = "\n".join(s for node in nodes for s in _strings(node))
            leaked = [g for g in entry.gone if g in blob]
            missing = [k for k in entry.keep if k not in blob]
            marks = [f"[REDACTED:{kind}]" for kind in entry.kinds if f"[REDACTED:{kind}]" not in blob]
            if leaked:
                where = [s for node in nodes for s in _strings(node) if any(g in s for g in leaked)]
                problems.append(f"{entry.where} {path}/{signal}: leaked {leaked} in {where}")
            if missing:
                problems.append(f"{entry.where} {path}/{signal}: over-redacted, {missing} not kept")
            if marks:
                problems.append(f"{entry.where} {path}/{signal}: no {marks}")
            if entry.max_len is not None and signal in ("spans", "logs"):
                for node in nodes:
                    value = _attribute(node, "corpus.text") if isinstance(node, dict) else None
                    if value is not None and len(value) > entry.max_len:
                        problems.append(f"{entry.where} {path}/{signal}: corpus.text is {len(value)} chars")
    assert not problems, "\n".join(problems)


EXPORTED = ("spans", "logs", "metrics")


@needs_log_limits
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_otlp_receiver(monkeypatch, engine, protocol):
    with OTLPReceiver(protocol=protocol) as rx:
        env = {**rx.env(), "OTEL_TRACES_EXPORTER": "otlp", "OTEL_LOGS_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp"}
        _export(monkeypatch, engine, env, ENTRIES)
        assert rx.wait_for(lambda r: r.spans() and r.logs() and r.metrics(), timeout=10)
        trees = [MessageToDict(request) for signal in ("traces", "logs", "metrics") for request in rx.raw(signal)]
    check(items(trees), ENTRIES, f"otlp-{protocol}[{engine}]", EXPORTED)


@needs_log_limits
@pytest.mark.parametrize("engine", ENGINES)
def test_otlp_json_file(monkeypatch, tmp_path, engine):
    env = {"OTEL_TRACES_EXPORTER": "otlp_json_file", "OTEL_LOGS_EXPORTER": "otlp_json_file",
           "OTEL_METRICS_EXPORTER": "otlp_json_file", "AGENTWATCH_FILE_DIR": str(tmp_path)}
    _export(monkeypatch, engine, env, ENTRIES)
    trees = [json.loads(line) for path in sorted(tmp_path.glob("*.jsonl")) for line in path.read_text().splitlines() if line]
    check(items(trees), ENTRIES, f"otlp_json_file[{engine}]", EXPORTED)


@needs_log_limits
@pytest.mark.parametrize("engine", ENGINES)
def test_console_exporters(monkeypatch, engine):
    stream = io.StringIO()
    env = {"OTEL_TRACES_EXPORTER": "console", "OTEL_LOGS_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "console"}
    _export(monkeypatch, engine, env, ENTRIES, console=stream)
    check(items(list(_json_stream(stream.getvalue()))), ENTRIES, f"console[{engine}]", EXPORTED)


_PRETTY_ID = re.compile(r"corpus\.id=(corpus-\d+)")
_PRETTY_RECORD = re.compile(r"\n(?=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z )")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("log_format", ["json", "pretty"])
def test_stdout_log_output(monkeypatch, engine, log_format):
    """The stdout handler (AGENTWATCH_LOG_FORMAT) on application records and uvicorn access lines."""
    _settings(monkeypatch, engine, None, AGENTWATCH_LOG_FORMAT=log_format)
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stream)
    handler = stdout_logs.StdoutHandler(log_format)
    loggers = [logging.getLogger("corpus.app"), logging.getLogger("uvicorn.access")]
    saved = [(lg, lg.handlers[:], lg.propagate, lg.level) for lg in loggers]
    for logger in loggers:
        logger.handlers[:] = [handler]
        logger.propagate = False
        logger.setLevel(logging.INFO)
    try:
        for entry in ENTRIES:
            if entry.wants("stdout"):
                emit_stdout(entry)
    finally:
        for logger, handlers, propagate, level in saved:
            logger.handlers[:] = handlers
            logger.propagate = propagate
            logger.setLevel(level)
    found: dict[tuple[str, str], list[Any]] = defaultdict(list)
    if log_format == "json":
        for line in stream.getvalue().splitlines():
            record = json.loads(line)
            found[(record["corpus.id"], "stdout")].append(record)
    else:
        # One record per timestamp at a line start (a message may hold newlines: its lines stay together).
        for line in _PRETTY_RECORD.split(stream.getvalue()):
            match = _PRETTY_ID.search(line)
            if match:
                found[(match.group(1), "stdout")].append(line)
    lines = sum(len(v) for v in found.values())
    assert lines >= len([e for e in ENTRIES if e.wants("stdout")]), stream.getvalue()[:2000]
    check(found, ENTRIES, f"stdout-{log_format}[{engine}]", ("stdout",))
