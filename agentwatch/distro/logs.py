"""stdlib logging into OTel logs without losing uvicorn's lines or doubling any.

The ``logging`` instrumentor puts one OTel handler on the root logger and keeps
it there across ``basicConfig``/``dictConfig``. But uvicorn's logging config
makes ``uvicorn``, ``uvicorn.error``'s parent and ``uvicorn.access``
non-propagating, so their records never reach the root and were not exported.
Here the same handler is also attached to every logger that does not
propagate, after every ``dictConfig``/``fileConfig`` call; loggers that
propagate are left alone, so no record is exported twice.
"""

from __future__ import annotations

import logging
import logging.config
from typing import Any, Callable

_ATTACHED_MARK = "_agentwatch_wrapped"


def _otel_handler() -> logging.Handler | None:
    try:
        from opentelemetry.instrumentation.logging import LoggingInstrumentor
    except ImportError:
        return None
    return getattr(LoggingInstrumentor, "_logging_handler", None)


def attach_to_non_propagating_loggers() -> int:
    """Add the OTel handler to loggers with ``propagate=False``; return how many were changed."""
    handler = _otel_handler()
    if handler is None:
        return 0
    changed = 0
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if not isinstance(logger, logging.Logger) or logger.propagate:
            continue
        if logger.name.startswith(("opentelemetry", "agentwatch")):
            continue  # never export our own diagnostics (would loop through failing exporters)
        if handler not in logger.handlers:
            logger.addHandler(handler)
            changed += 1
    return changed


def _wrap(function: Callable[..., Any]) -> Callable[..., Any]:
    if getattr(function, _ATTACHED_MARK, False):
        return function

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        finally:
            try:
                attach_to_non_propagating_loggers()
            except Exception:  # noqa: BLE001,S110 - logging setup must behave as without us
                pass

    setattr(wrapper, _ATTACHED_MARK, True)
    wrapper.__wrapped__ = function  # type: ignore[attr-defined]
    wrapper.__doc__ = function.__doc__
    return wrapper


def install() -> None:
    """Attach now and after every later logging configuration call."""
    logging.config.dictConfig = _wrap(logging.config.dictConfig)
    logging.config.fileConfig = _wrap(logging.config.fileConfig)
    attach_to_non_propagating_loggers()


def uninstall() -> None:
    for name in ("dictConfig", "fileConfig"):
        function = getattr(logging.config, name)
        if getattr(function, _ATTACHED_MARK, False):
            setattr(logging.config, name, function.__wrapped__)
    handler = _otel_handler()
    if handler is None:
        return
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and not logger.propagate and handler in logger.handlers:
            logger.removeHandler(handler)
