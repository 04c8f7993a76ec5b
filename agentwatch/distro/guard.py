"""The one rule for every step of agentwatch that must not break the app it watches.

A guarded step that raises is reported once per step (one line on agentwatch's stderr logger, kept
for ``agentwatch doctor``) and the caller gets a default instead; the app goes on as it would without
that step. Three forms of the same primitive::

    value = run("resource", build_resource, settings, default=None)

    @guarded("request ids", outcome="the request passes untouched")
    def add_ids(scope): ...

    with guard("span end"):
        span.end()

Under the test suite (``AGENTWATCH_STRICT=1``, set by ``tests/conftest.py``) a guarded step re-raises
instead, so a bug in agentwatch fails a test rather than hiding behind a warning line; tests that
inject faults on purpose turn strict mode off.

Like Logfire's ``handle_internal_errors``, this module catches ``Exception`` only: ``KeyboardInterrupt``
and ``SystemExit`` always pass through.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from agentwatch.distro import environment_variables as ev
from agentwatch.distro._diagnostics import warn_once

__all__ = ["STRICT_ENV", "failed", "guard", "guarded", "run", "strict"]

_F = TypeVar("_F", bound=Callable[..., Any])

#: Set to 1 by the test suite: guarded steps re-raise instead of warning.
STRICT_ENV = ev.AGENTWATCH_STRICT

DEFAULT_OUTCOME = "continuing without it"


def strict() -> bool:
    """Whether guarded steps re-raise (read at each failure, so tests can switch it)."""
    # Read here rather than from the cached Settings: a failure can happen before (or while) settings
    # load, and failures are rare, so the lookup costs nothing on the hot path.
    # Imported here: settings imports the scrub package, whose modules use this guard.
    from agentwatch.distro.settings import Reader

    return bool(Reader().read(STRICT_ENV))


def failed(where: str, error: BaseException, outcome: str = DEFAULT_OUTCOME, *, detail: str | None = None) -> None:
    """Report once that step ``where`` failed with ``error`` and what happens instead.

    ``detail`` replaces ``repr(error)`` in the line where the error's text may hold the very value
    that must not be printed (a scrubbing failure says the error type only).
    """
    shown = detail if detail is not None else repr(error)
    warn_once(f"guard:{where}", f"{where} failed ({shown}); {outcome}. The app is not affected (said once)")


def run(where: str, function: Callable[..., Any], *args: Any, default: Any = None, outcome: str = DEFAULT_OUTCOME, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``, or ``default`` (reported once) if it raises."""
    try:
        return function(*args, **kwargs)
    except Exception as error:
        if strict():
            raise
        failed(where, error, outcome)
        return default


def guarded(where: str, *, default: Any = None, outcome: str = DEFAULT_OUTCOME) -> Callable[[_F], _F]:
    """Decorator form of :func:`run`: the wrapped function returns ``default`` if it raises."""

    def decorate(function: _F) -> _F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            # run()'s body inlined: this wrapper sits on per-span paths (the roll-up processor).
            try:
                return function(*args, **kwargs)
            except Exception as error:
                if strict():
                    raise
                failed(where, error, outcome)
                return default

        return wrapper  # type: ignore[return-value]

    return decorate


class guard:
    """Context-manager form: an exception inside the block is reported once and swallowed.

    ``error`` holds what was swallowed (None when the block ran through), for callers that must
    know whether to fall back.
    """

    __slots__ = ("where", "outcome", "error", "type_only")

    def __init__(self, where: str, outcome: str = DEFAULT_OUTCOME, *, type_only: bool = False) -> None:
        self.where = where
        self.outcome = outcome
        self.type_only = type_only  # say the error's type only: its text may hold what could not be scrubbed
        self.error: BaseException | None = None

    def __enter__(self) -> guard:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> bool:
        if error is None or not isinstance(error, Exception) or strict():
            return False
        self.error = error
        failed(self.where, error, self.outcome, detail=type(error).__name__ if self.type_only else None)
        return True
