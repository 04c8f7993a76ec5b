"""The kinds of configuration values: each carries a typed default, the accepted values and the parser,
and renders its default for the docs. Used by the catalogue in :mod:`agentwatch.distro.environment_variables`
(which re-exports every name here); a leaf module, like the catalogue.

The classes are :class:`agentwatch._records.Record` s rather than frozen dataclasses (why: see there); the
catalogue is read before anything else at every start.
"""

from __future__ import annotations

import math
from typing import Any

from agentwatch._records import Record

#: The words a boolean accepts (any case).
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})


class Invalid(ValueError):
    """A value a kind does not accept; the message says what was expected."""


class Kind(Record):
    """How one variable is parsed, and its default. ``parse`` gets the stripped, non-empty value."""

    __slots__ = ("default",)
    default: Any

    def __init__(self, default: Any = None) -> None:
        self._set(default=default)

    def parse(self, value: str) -> Any:
        return value

    def show(self) -> str:
        """The default as a user reads it in the configuration table."""
        if self.default is None or self.default == () or self.default == "":
            return "empty"
        return f"`{self.default}`"


class Flag(Kind):
    """``true/false`` (also ``1/0``, ``yes/no``, ``on/off``, any case)."""

    __slots__ = ()
    default: bool

    def __init__(self, default: bool = False) -> None:
        self._set(default=default)

    def parse(self, value: str) -> bool:
        lowered = value.lower()
        if lowered in TRUE_WORDS:
            return True
        if lowered in FALSE_WORDS:
            return False
        raise Invalid("a boolean (true/false)")

    def show(self) -> str:
        return "`true`" if self.default else "`false`"


class Number(Kind):
    """A number in ``[low, high]``; ``whole`` accepts digits only; ``unit`` is shown after the default."""

    __slots__ = ("low", "high", "unit", "whole")
    default: float
    low: float
    high: float
    unit: str
    whole: bool

    def __init__(self, default: float = 0, low: float = -math.inf, high: float = math.inf, unit: str = "",
                 whole: bool = False) -> None:
        self._set(default=default, low=low, high=high, unit=unit, whole=whole)

    def parse(self, value: str) -> float | int:
        if self.whole:
            if not value.isdigit():
                raise Invalid(f"a whole number between {self.low:g} and {self.high:g}")
            number: float | int = int(value)
        else:
            try:
                number = float(value)
            except ValueError:
                raise Invalid(self._expected()) from None
        if not self.low <= number <= self.high:  # also refuses nan
            raise Invalid(self._expected())
        return number

    def _expected(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        return f"{kind} between {self.low:g} and {self.high:g}" if math.isfinite(self.high - self.low) else kind

    def show(self) -> str:
        text = f"`{self.default:g}`"
        return f"{text} ({self.unit})" if self.unit else text


class Length(Kind):
    """A length limit: a whole number >= 0; unset (``None``) is no limit."""

    __slots__ = ()
    default: int | None

    def __init__(self, default: int | None = None) -> None:
        self._set(default=default)

    def parse(self, value: str) -> int:
        if not value.isdigit():
            raise Invalid("a whole number >= 0")
        return int(value)

    def show(self) -> str:
        return "unset (no limit)"


class Port(Kind):
    """A TCP port, 1-65535."""

    __slots__ = ()
    default: int

    def __init__(self, default: int = 0) -> None:
        self._set(default=default)

    def parse(self, value: str) -> int:
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise Invalid("a port number (1-65535)")
        return int(value)


class Choice(Kind):
    """One of ``allowed`` (case-insensitive, returned lower-case)."""

    __slots__ = ("allowed",)
    default: str
    allowed: tuple[str, ...]

    def __init__(self, default: str = "", allowed: tuple[str, ...] = ()) -> None:
        self._set(default=default, allowed=allowed)

    def parse(self, value: str) -> str:
        if value.lower() not in self.allowed:
            raise Invalid("one of " + ", ".join(self.allowed))
        return value.lower()


class Text(Kind):
    """Any text (a name, a path, a URL checked by its user); ``None`` default means unset."""

    __slots__ = ()
    default: str | None

    def __init__(self, default: str | None = None) -> None:
        self._set(default=default)


class Names(Kind):
    """A comma list: items stripped, blanks dropped, lower-cased unless ``lower=False``."""

    __slots__ = ("lower",)
    default: tuple[str, ...]
    lower: bool

    def __init__(self, default: tuple[str, ...] = (), lower: bool = True) -> None:
        self._set(default=default, lower=lower)

    def parse(self, value: str) -> tuple[str, ...]:
        return tuple(part.strip().lower() if self.lower else part.strip() for part in value.split(",") if part.strip())


CAPTURE_MODES = ("NO_CONTENT", "SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT")


class Capture(Kind):
    """The GenAI content-capture mode: one of :data:`CAPTURE_MODES` (any case); a boolean is read as
    ``SPAN_ONLY`` (true) or ``NO_CONTENT`` (false), as the older conventions wrote it."""

    __slots__ = ()
    default: str

    def __init__(self, default: str = "NO_CONTENT") -> None:
        self._set(default=default)

    def parse(self, value: str) -> str:
        upper = value.upper()
        if upper in CAPTURE_MODES:
            return upper
        if value.lower() in TRUE_WORDS:
            return "SPAN_ONLY"
        if value.lower() in FALSE_WORDS:
            return "NO_CONTENT"
        raise Invalid("one of " + ", ".join(CAPTURE_MODES) + " (or true/false)")


class EnvVar(Record):
    """One documented variable: its name, its kind (typed default + parser) and its meaning.

    ``shown`` replaces the rendered default where the default is derived from something else
    (another variable, the program's name); ``section`` groups it in :class:`Settings` (not compared).
    """

    __slots__ = ("name", "kind", "meaning", "shown", "section")
    _compared = ("name", "kind", "meaning", "shown")
    name: str
    kind: Kind
    meaning: str
    shown: str | None
    section: str

    def __init__(self, name: str, kind: Kind, meaning: str, shown: str | None = None, section: str = "core") -> None:
        self._set(name=name, kind=kind, meaning=meaning, shown=shown, section=section)

    @property
    def default(self) -> Any:
        return self.kind.default

    @property
    def default_text(self) -> str:
        return self.shown if self.shown is not None else self.kind.show()
