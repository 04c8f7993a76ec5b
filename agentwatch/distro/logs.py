"""stdlib logging: into OTel logs without losing uvicorn's lines or doubling any, and to stdout as JSON or pretty text.

**OTel export.** The ``logging`` instrumentor puts one OTel handler on the root
logger and keeps it there across ``basicConfig``/``dictConfig``. But uvicorn's
logging config makes ``uvicorn`` (parent of ``uvicorn.error``) and
``uvicorn.access`` non-propagating, so their records never reach the root and
were not exported. Here the same handler is also attached to every logger that
does not propagate, after every ``dictConfig``/``fileConfig``/``basicConfig``
call; loggers that propagate are left alone, so no record is exported twice.
The handler gets :class:`agentwatch.distro.context.RequestContextFilter`, so
records emitted during a request carry ``agentwatch.request.id`` (and
``agentwatch.session.id``) as attributes.

**The console** (``AGENTWATCH_LOG_FORMAT``). The app's logging stays the app's: its
configuration calls keep their effect, its console handlers keep their streams, levels and
filters; agentwatch only sets what they print, after every ``dictConfig``/``fileConfig``/
``basicConfig``. ``off`` (default) keeps the app's format and scrubs the printed text
(``AGENTWATCH_LOG_SCRUB_CONSOLE=false``: untouched). ``json`` prints one object per line with
``timestamp`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, ``trace_id``, ``span_id``,
``request_id`` (``null`` outside a request), ``session_id`` (when there is one), ``exception``
(the scrubbed traceback or ``null``) and the record's extra fields; ``pretty`` one readable line,
colored only when the handler's stream is a terminal (and ``NO_COLOR`` is unset). A fallback
handler on the root logger prints what no handler of the app's takes: the structured format
on stdout, or with ``off`` Python's last resort (WARNING and up, message only, on stderr),
which the OTel handler on the root logger would otherwise silence; it steps aside during the
app's configuration calls, so ``basicConfig`` is never a no-op because of it.
``AGENTWATCH_LOG_EXPORT_LEVEL`` sets the level exported independently of the console.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from agentwatch.distro import context
from agentwatch.distro._diagnostics import LiveStreamHandler
from agentwatch.distro.guard import failed
from agentwatch.distro.scrub import ERROR_MARK
from agentwatch.distro.scrub.values import unique_key

_ATTACHED_MARK = "_agentwatch_wrapped"

# Attributes every LogRecord has; anything else on a record is an "extra" field.
_STANDARD = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
# Extras that are not the app's: uvicorn's ANSI copy of the message, the logging
# instrumentor's trace-context fields (we print trace_id/span_id), our own keys.
_NOT_EXTRA = frozenset(
    {
        "color_message",
        "otelSpanID",
        "otelTraceID",
        "otelTraceSampled",
        "otelServiceName",
        context.REQUEST_ID_KEY,
        context.SESSION_ID_KEY,
    }
)

# A log field name no detector can match: printed even when the scrubber cannot be set up.
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z_.\-]{0,63}")

# --- OTel handler -------------------------------------------------------------------
_sdk_handler: list[logging.Handler] = []  # the SDK's own handler, when OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED=true


def _otel_handler() -> logging.Handler | None:
    """The handler that turns records into OTel logs: the logging instrumentor's, or the SDK's."""
    if _sdk_handler:
        return _sdk_handler[0]
    try:
        from opentelemetry.instrumentation.logging import LoggingInstrumentor
    except ImportError:
        return None
    return getattr(LoggingInstrumentor, "_logging_handler", None)


def install_sdk_handler(logger_provider: Any) -> logging.Handler:
    """``OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED=true``, as the stock configurator reads it: the SDK's
    (deprecated) ``LoggingHandler`` on the root logger. The logging instrumentor then steps aside for it, as
    its warning says; without this the app's records were exported by neither."""
    import warnings

    from opentelemetry.sdk._logs import LoggingHandler

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the user chose it; the SDK says so upstream too
        handler = LoggingHandler(level=logging.NOTSET, logger_provider=logger_provider)
    logging.getLogger().addHandler(handler)
    _sdk_handler[:] = [handler]
    install()
    return handler


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR,
           "critical": logging.CRITICAL}


def apply_export_level() -> None:
    """``AGENTWATCH_LOG_EXPORT_LEVEL``: the OTel handler's level; below the root logger's, the root is lowered
    to it and the root's other handlers keep the app's level (so the console prints what it did)."""
    level = _LEVELS.get(_output["export_level"])
    handler = _otel_handler()
    if level is None or handler is None:
        return
    handler.setLevel(level)
    root = logging.getLogger()
    app_level = root.level
    if app_level == logging.NOTSET or app_level <= level:
        return
    for other in root.handlers:
        if other is not handler and other.level < app_level:
            other.setLevel(app_level)
    root.setLevel(level)


def _ours(logger: logging.Logger) -> bool:
    return logger.name.startswith(("opentelemetry", "agentwatch"))


def attach_to_non_propagating_loggers() -> int:
    """Add the OTel handler to loggers with ``propagate=False``; return how many were changed."""
    handler = _otel_handler()
    if handler is None:
        return 0
    context.add_filter(handler)
    changed = 0
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if not isinstance(logger, logging.Logger) or logger.propagate:
            continue
        if _ours(logger):
            continue  # never export our own diagnostics (would loop through failing exporters)
        if handler not in logger.handlers:
            logger.addHandler(handler)
            changed += 1
    return changed


# --- formatting ------------------------------------------------------------------------
def _timestamp(record: logging.LogRecord) -> str:
    seconds = int(record.created)
    millis = min(int((record.created - seconds) * 1000), 999)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def _trace_ids(record: logging.LogRecord) -> tuple[str | None, str | None]:
    """The ids of the span current where the record was emitted (handlers run in the caller's thread)."""
    trace_id = getattr(record, "otelTraceID", None)
    if trace_id and trace_id != "0":
        return trace_id, getattr(record, "otelSpanID", None)
    try:
        from opentelemetry import trace

        span_context = trace.get_current_span().get_span_context()
    except Exception:  # noqa: BLE001
        return None, None
    if not span_context.is_valid:
        return None, None
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")



# What a stdout line shows instead of something it could not handle, said once per kind (never per
# record): kind -> (the step that failed, what is printed instead).
_FAULTS = {
    "scrubber": ("setting up the scrubber", f"every field is printed as {ERROR_MARK}"),
    "scrub": ("scrubbing a log field", f"such fields are printed as {ERROR_MARK}"),
    "unprintable": ("turning a log field into text (its __str__)", "such fields are printed as <unprintable TYPE>"),
    "message": ("formatting a log message with its arguments", "such lines show the raw message and the error"),
    "record": ("formatting a log record",
               f"such records are printed with level and logger only, the message as {ERROR_MARK}"),
}


def _fault(kind: str, error: BaseException) -> None:
    """Say once per kind that stdout lines are redacted or cut, and why (the error type only: its
    message may hold the very value that could not be scrubbed). Not raised under the test suite:
    the line printed instead shows the fault, and most kinds are the app's values, not a bug."""
    step, outcome = _FAULTS[kind]
    failed(f"stdout logs (AGENTWATCH_LOG_FORMAT): {step}", error, outcome, detail=type(error).__name__)


def _scrubber() -> tuple[Any, bool]:
    """``(scrubber or None when AGENTWATCH_SCRUB=false, whether setting it up failed)``."""
    try:
        from agentwatch.distro.scrub import default_scrubber

        return default_scrubber(), False
    except Exception as error:  # noqa: BLE001 - redact everything rather than print unscrubbed text
        _fault("scrubber", error)
        return None, True


def _text(value: Any) -> str:
    try:
        return str(value)
    except Exception as error:  # noqa: BLE001
        _fault("unprintable", error)
        return f"<unprintable {type(value).__name__}>"


def _jsonable(value: Any, depth: int = 0) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if depth < 8:
        if isinstance(value, dict):
            return {_text(k): _jsonable(v, depth + 1) for k, v in value.items()}
        if isinstance(value, (list, tuple, set, frozenset)):
            return [_jsonable(v, depth + 1) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return _text(value)


def _minimal_fields(record: logging.LogRecord) -> dict[str, Any]:
    """What is printed of a record whose fields could not be built: nothing that would need scrubbing."""
    try:
        timestamp = _timestamp(record)
    except Exception:  # noqa: BLE001 - a record with a broken ``created``
        timestamp = None
    return {
        "timestamp": timestamp,
        "level": _text(getattr(record, "levelname", "?")),
        "logger": _text(getattr(record, "name", "?")),
        "message": ERROR_MARK,
        "trace_id": None,
        "span_id": None,
        "request_id": None,
        "exception": None,
    }


class StructuredFormatter(logging.Formatter):
    """Builds the fields of one record (scrubbed); subclasses render them.

    Nothing it cannot handle is printed as is, and nothing is lost silently: a value that cannot be
    scrubbed is printed as ``[REDACTED:error]``, one that cannot be turned into text as
    ``<unprintable TYPE>``, a record that cannot be formatted at all with its level and logger only;
    each kind is said once on stderr (``_fault``).
    """

    def safe_fields(self, record: logging.LogRecord) -> dict[str, Any]:
        try:
            return self.fields(record)
        except Exception as error:  # noqa: BLE001 - the line is printed, reduced, never lost
            _fault("record", error)
            return _minimal_fields(record)

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        scrubber, unavailable = _scrubber()

        def clean(value: Any, key: str | None = None) -> Any:
            if unavailable:
                return None if value is None else ERROR_MARK
            if scrubber is None:
                return value
            try:
                return scrubber.scrub_value(value, key)
            except Exception as error:  # noqa: BLE001 - never print what could not be scrubbed
                _fault("scrub", error)
                return ERROR_MARK

        def clean_key(key: str) -> str:
            if unavailable:  # only a key no detector could match (letters, "_", ".", "-") is printed
                return key if _PLAIN_KEY.fullmatch(key) else ERROR_MARK
            if scrubber is None:
                return key
            try:
                return scrubber.scrub_key(key)
            except Exception as error:  # noqa: BLE001 - never print what could not be scrubbed
                _fault("scrub", error)
                return ERROR_MARK

        try:
            message = record.getMessage()
        except Exception as error:  # noqa: BLE001 - a bad %-format must not lose the line
            _fault("message", error)
            message = f"{_text(record.msg)} (message could not be formatted: {type(error).__name__}: {_text(error)})"
        exception = None
        if record.exc_info and record.exc_info[0] is not None:
            if not record.exc_text:
                record.exc_text = self.formatException(record.exc_info)
            exception = record.exc_text
        elif record.exc_text:
            exception = record.exc_text
        if record.stack_info:
            exception = (exception + "\n" if exception else "") + self.formatStack(record.stack_info)
        trace_id, span_id = _trace_ids(record)
        out: dict[str, Any] = {
            "timestamp": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": clean(message),
            "trace_id": trace_id,
            "span_id": span_id,
            "request_id": clean(record.__dict__.get(context.REQUEST_ID_KEY, context.current_request_id())),
        }
        session_id = record.__dict__.get(context.SESSION_ID_KEY, context.current_session_id())
        if session_id is not None:
            out["session_id"] = clean(session_id, context.SESSION_ID_KEY)
        out["exception"] = clean(exception) if exception else None
        for key, value in record.__dict__.items():
            if key in _STANDARD or key in _NOT_EXTRA or key.startswith("_") or key in out:
                continue
            # ``extra=dict(request.query_params)`` makes user text a key: scrubbed like a value
            # (``[REDACTED:email]``, then ``[REDACTED:email]#2``...).
            shown = clean_key(key)
            if shown in out:
                shown = unique_key(out, shown)
            out[shown] = clean(_jsonable(value), key)
        return out


class JSONFormatter(StructuredFormatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        try:
            return json.dumps(self.safe_fields(record), ensure_ascii=False, default=_text)
        except Exception as error:  # noqa: BLE001 - e.g. a scrubbed value json cannot encode
            _fault("record", error)
            return json.dumps(_minimal_fields(record), ensure_ascii=False, default=_text)


_COLORS = {
    "DEBUG": "\x1b[34m",
    "INFO": "\x1b[32m",
    "WARNING": "\x1b[33m",
    "ERROR": "\x1b[31m",
    "CRITICAL": "\x1b[1;31m",
}
_DIM = "\x1b[2m"
_CYAN = "\x1b[36m"
_RESET = "\x1b[0m"


class PrettyFormatter(StructuredFormatter):
    """``2026-01-02T03:04:05.678Z INFO     logger  message  request_id=... trace_id=...``.

    ``color``: a callable telling whether to emit ANSI colors now (stdout is a TTY).
    """

    def __init__(self, color: Callable[[], bool] | bool = False) -> None:
        super().__init__()
        self._color = color if callable(color) else (lambda: color)

    def format(self, record: logging.LogRecord) -> str:
        try:
            return self._render(self.safe_fields(record))
        except Exception as error:  # noqa: BLE001
            _fault("record", error)
            return self._render(_minimal_fields(record))

    def _render(self, f: dict[str, Any]) -> str:
        color = self._color()
        level = f"{f['level']:<8}"
        context_parts = []
        for key in ("request_id", "session_id", "trace_id", "span_id"):
            if f.get(key):
                context_parts.append(f"{key}={f[key]}")
        extras = [
            f"{key}={json.dumps(value, ensure_ascii=False, default=_text) if not isinstance(value, str) else value}"
            for key, value in f.items()
            if key not in ("timestamp", "level", "logger", "message", "trace_id", "span_id", "request_id",
                           "session_id", "exception")
        ]
        tail = "  ".join(p for p in (" ".join(extras), " ".join(context_parts)) if p)
        message = _text(f["message"])
        if color:
            line = (
                f"{_DIM}{f['timestamp']}{_RESET} {_COLORS.get(f['level'], '')}{level}{_RESET} "
                f"{_CYAN}{f['logger']}{_RESET}  {message}"
            )
            if tail:
                line += f"  {_DIM}{tail}{_RESET}"
            if f["exception"]:
                line += f"\n{_COLORS['ERROR']}{f['exception']}{_RESET}"
        else:
            line = f"{f['timestamp']} {level} {f['logger']}  {message}"
            if tail:
                line += f"  {tail}"
            if f["exception"]:
                line += f"\n{f['exception']}"
        return line


# --- the console: the app's own handlers, formatted and scrubbed ------------------------
def _handled_by_the_app(record: logging.LogRecord) -> bool:
    """Whether a handler of the app's is on the record's way up the logger tree: what makes Python skip its
    last-resort handler (handlers are counted whatever their level, as ``Logger.callHandlers`` counts them)."""
    otel = _otel_handler()
    logger: logging.Logger | None = logging.getLogger(record.name)
    while logger is not None:
        for handler in logger.handlers:
            if handler is not otel and not isinstance(handler, _FallbackHandler):
                return True
        if not logger.propagate:
            break
        logger = logger.parent
    return False


class _FallbackHandler(LiveStreamHandler):
    """A console handler of agentwatch's on the root logger that prints only records no handler of the
    app's takes (so nothing is printed twice)."""

    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        if _handled_by_the_app(record):
            return False
        return bool(super().handle(record))


class LastResortHandler(_FallbackHandler):
    """Python's last resort, kept: WARNING and above, message only, on stderr, for records no handler of the
    app's takes (``AGENTWATCH_LOG_FORMAT=off``).

    Python prints such records through ``logging.lastResort`` only when no handler at all is found, and the
    OTel handler on the root logger counts as one: without this, an app that never configures logging
    would lose its warnings on the console under any OTel distro.
    """

    stream_name = "stderr"

    def __init__(self, scrub: bool) -> None:
        super().__init__()
        self.setLevel(logging.WARNING)
        plain = logging.Formatter("%(message)s")
        self.setFormatter(ScrubbingFormatter(plain) if scrub else plain)


class StdoutHandler(_FallbackHandler):
    """The console handler of an app that configured none (``json``/``pretty``).

    Writes to whatever ``sys.stdout`` is at emit time (tests and tools swap it). It steps out of
    the way of the app's own logging configuration: ``basicConfig`` and friends run as if it were
    not there, and a record that one of the app's handlers takes is left to it (printed once).
    """

    stream_name = "stdout"

    def __init__(self, log_format: str) -> None:
        super().__init__()
        self.setFormatter(_structured(log_format, lambda: sys.stdout))
        context.add_filter(self)


def _is_tty(stream: Any) -> bool:
    """Colors only on a terminal, and not when ``NO_COLOR`` is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return bool(stream.isatty())
    except Exception:  # noqa: BLE001
        return False


def _structured(log_format: str, stream: Callable[[], Any]) -> StructuredFormatter:
    if log_format == "json":
        return JSONFormatter()
    return PrettyFormatter(color=lambda: _is_tty(stream()))


class ScrubbingFormatter(logging.Formatter):
    """The app's own formatter, its output scrubbed (``AGENTWATCH_LOG_FORMAT=off``, console scrubbing on).

    The record is not touched (other handlers, the OTel export among them, see it as it was); only
    the text this handler prints goes through the scrubber. A line that cannot be scrubbed is
    printed as ``[REDACTED:error]``, never as it was.
    """

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()  # what logging.Handler.format uses when none is set

    def format(self, record: logging.LogRecord) -> str:
        text = self.inner.format(record)
        scrubber, unavailable = _scrubber()
        if unavailable:
            return ERROR_MARK
        if scrubber is None:
            return text
        try:
            return scrubber.scrub_text(text)
        except Exception as error:  # noqa: BLE001 - never print what could not be scrubbed
            _fault("scrub", error)
            return ERROR_MARK


_FORMATTED_MARK = "_agentwatch_console"
_output: dict[str, Any] = {"format": "off", "scrub": False, "fallback": None, "export_level": "app"}


def _console_streams() -> tuple[Any, ...]:
    return tuple(s for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__) if s is not None)


def _is_console_handler(handler: logging.Handler) -> bool:
    if isinstance(handler, _FallbackHandler) or not isinstance(handler, logging.StreamHandler):
        return False
    if isinstance(handler, logging.FileHandler):
        return False
    return any(getattr(handler, "stream", None) is s for s in _console_streams())


def _console_handlers() -> list[logging.Handler]:
    """The app's console handlers: on the root logger and on every other logger (uvicorn's, the app's)."""
    loggers = [logging.getLogger()] + [
        logger for logger in list(logging.Logger.manager.loggerDict.values())
        if isinstance(logger, logging.Logger) and not _ours(logger)
    ]
    seen: dict[int, logging.Handler] = {}
    for logger in loggers:
        for handler in logger.handlers:
            if _is_console_handler(handler):
                seen.setdefault(id(handler), handler)
    return list(seen.values())


def _format_handler(handler: logging.Handler) -> None:
    """Give one of the app's console handlers the output agentwatch is asked for (once per formatter the
    app sets); the handler itself (its stream, level and filters) stays the app's."""
    current = handler.formatter
    if current is not None and getattr(current, _FORMATTED_MARK, False):
        return
    if _output["format"] in ("json", "pretty"):
        formatter: logging.Formatter = _structured(_output["format"], lambda: getattr(handler, "stream", None))
    elif _output["scrub"]:
        formatter = ScrubbingFormatter(current)
    else:
        return
    setattr(formatter, _FORMATTED_MARK, True)
    formatter.original = current  # type: ignore[attr-defined]  # given back by uninstall()
    handler.setFormatter(formatter)


def apply_console() -> int:
    """Format (``json``/``pretty``) or scrub (``off``) every console handler of the app, and keep the fallback
    handler on the root logger for records no handler of the app's takes. Returns the app's console handlers."""
    handlers = _console_handlers()
    for handler in handlers:
        _format_handler(handler)
    fallback = _output["fallback"]
    root = logging.getLogger()
    if fallback is not None and fallback not in root.handlers:
        root.addHandler(fallback)
    return len(handlers)


def _after_logging_config() -> None:
    try:
        apply_console()
        attach_to_non_propagating_loggers()
        apply_export_level()
    except Exception:  # noqa: BLE001,S110 - logging setup must behave as without us
        pass


def _wrap(function: Callable[..., Any]) -> Callable[..., Any]:
    if getattr(function, _ATTACHED_MARK, False):
        return function

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # The app's configuration runs as if agentwatch's fallback console handler were not there:
        # basicConfig() does nothing when the root logger has a handler, which would cost the app its level.
        fallback = _output["fallback"]
        root = logging.getLogger()
        if fallback is not None and fallback in root.handlers:
            root.removeHandler(fallback)
        # The SDK's handler is kept out of the app's configuration's reach (a dictConfig of the root logger
        # would drop it), as the logging instrumentor does for its own.
        sdk = [h for h in _sdk_handler if h in root.handlers]
        for handler in sdk:
            root.removeHandler(handler)
        try:
            return function(*args, **kwargs)
        finally:
            for handler in sdk:
                root.addHandler(handler)
            _after_logging_config()

    setattr(wrapper, _ATTACHED_MARK, True)
    wrapper.__wrapped__ = function  # type: ignore[attr-defined]
    wrapper.__doc__ = function.__doc__
    return wrapper


def _wrap_config_functions() -> None:
    logging.config.dictConfig = _wrap(logging.config.dictConfig)
    logging.config.fileConfig = _wrap(logging.config.fileConfig)
    logging.basicConfig = _wrap(logging.basicConfig)


def install() -> None:
    """Attach the OTel handler (and the request-context filter) now and after every later logging configuration call."""
    _wrap_config_functions()
    _after_logging_config()


def configure_output(log_format: str, scrub_console: bool = True, export_level: str = "app") -> None:
    """Set up the console for ``AGENTWATCH_LOG_FORMAT``: ``json``/``pretty`` format the app's console
    handlers (a fallback handler prints when it has none); ``off`` keeps the app's format and, with
    ``scrub_console``, scrubs what its console handlers print."""
    _output["format"] = log_format if log_format in ("json", "pretty") else "off"
    _output["scrub"] = scrub_console
    _output["export_level"] = export_level
    if _output["fallback"] is None:
        _output["fallback"] = StdoutHandler(log_format) if _output["format"] != "off" else LastResortHandler(scrub_console)
    _wrap_config_functions()
    _after_logging_config()


def uninstall() -> None:
    for owner, name in ((logging.config, "dictConfig"), (logging.config, "fileConfig"), (logging, "basicConfig")):
        function = getattr(owner, name)
        # Unwrap ours wherever it sits in a chain of wrappers (the OTel instrumentor wraps too).
        if getattr(function, _ATTACHED_MARK, False):
            setattr(owner, name, function.__wrapped__)
    fallback = _output["fallback"]
    if fallback is not None:
        logging.getLogger().removeHandler(fallback)
    for handler in _console_handlers():
        formatter = handler.formatter
        if formatter is not None and getattr(formatter, _FORMATTED_MARK, False):
            handler.setFormatter(getattr(formatter, "original", None))
    _output.update(format="off", scrub=False, fallback=None, export_level="app")
    for sdk in _sdk_handler:
        logging.getLogger().removeHandler(sdk)
    _sdk_handler.clear()
    handler = _otel_handler()
    if handler is None:
        return
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and not logger.propagate and handler in logger.handlers:
            logger.removeHandler(handler)
