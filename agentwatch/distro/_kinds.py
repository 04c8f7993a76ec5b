"""The kinds of configuration values: each carries a typed default, the accepted values and the parser,
and renders its default for the docs. Used by the catalogue in :mod:`agentwatch.distro.environment_variables`
(which re-exports every name here); a leaf module, like the catalogue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

#: The words a boolean accepts (any case).
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})


class Invalid(ValueError):
    """A value a kind does not accept; the message says what was expected."""


@dataclass(frozen=True)
class Kind:
    """How one variable is parsed, and its default. ``parse`` gets the stripped, non-empty value."""

    default: Any = None

    def parse(self, value: str) -> Any:
        return value

    def show(self) -> str:
        """The default as a user reads it in the configuration table."""
        if self.default is None or self.default == () or self.default == "":
            return "empty"
        return f"`{self.default}`"


@dataclass(frozen=True)
class Flag(Kind):
    """``true/false`` (also ``1/0``, ``yes/no``, ``on/off``, any case)."""

    default: bool = False

    def parse(self, value: str) -> bool:
        lowered = value.lower()
        if lowered in TRUE_WORDS:
            return True
        if lowered in FALSE_WORDS:
            return False
        raise Invalid("a boolean (true/false)")

    def show(self) -> str:
        return "`true`" if self.default else "`false`"


@dataclass(frozen=True)
class Number(Kind):
    """A number in ``[low, high]``; ``whole`` accepts digits only; ``unit`` is shown after the default."""

    default: float = 0
    low: float = -math.inf
    high: float = math.inf
    unit: str = ""
    whole: bool = False

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


@dataclass(frozen=True)
class Length(Kind):
    """A length limit: a whole number >= 0; unset (``None``) is no limit."""

    default: int | None = None

    def parse(self, value: str) -> int:
        if not value.isdigit():
            raise Invalid("a whole number >= 0")
        return int(value)

    def show(self) -> str:
        return "unset (no limit)"


@dataclass(frozen=True)
class Port(Kind):
    default: int = 0

    def parse(self, value: str) -> int:
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise Invalid("a port number (1-65535)")
        return int(value)


@dataclass(frozen=True)
class Choice(Kind):
    """One of ``allowed`` (case-insensitive, returned lower-case)."""

    default: str = ""
    allowed: tuple[str, ...] = ()

    def parse(self, value: str) -> str:
        if value.lower() not in self.allowed:
            raise Invalid("one of " + ", ".join(self.allowed))
        return value.lower()


@dataclass(frozen=True)
class Text(Kind):
    """Any text (a name, a path, a URL checked by its user); ``None`` default means unset."""

    default: str | None = None


@dataclass(frozen=True)
class Names(Kind):
    """A comma list: items stripped, blanks dropped, lower-cased unless ``lower=False``."""

    default: tuple[str, ...] = ()
    lower: bool = True

    def parse(self, value: str) -> tuple[str, ...]:
        return tuple(part.strip().lower() if self.lower else part.strip() for part in value.split(",") if part.strip())


CAPTURE_MODES = ("NO_CONTENT", "SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT")


@dataclass(frozen=True)
class Capture(Kind):
    """The GenAI content-capture mode: one of :data:`CAPTURE_MODES` (any case); a boolean is read as
    ``SPAN_ONLY`` (true) or ``NO_CONTENT`` (false), as the older conventions wrote it."""

    default: str = "NO_CONTENT"

    def parse(self, value: str) -> str:
        upper = value.upper()
        if upper in CAPTURE_MODES:
            return upper
        if value.lower() in TRUE_WORDS:
            return "SPAN_ONLY"
        if value.lower() in FALSE_WORDS:
            return "NO_CONTENT"
        raise Invalid("one of " + ", ".join(CAPTURE_MODES) + " (or true/false)")


@dataclass(frozen=True)
class EnvVar:
    """One documented variable: its name, its kind (typed default + parser) and its meaning.

    ``shown`` replaces the rendered default where the default is derived from something else
    (another variable, the program's name); ``section`` groups it in :class:`Settings`.
    """

    name: str
    kind: Kind
    meaning: str
    shown: str | None = None
    section: str = field(default="core", compare=False)

    @property
    def default(self) -> Any:
        return self.kind.default

    @property
    def default_text(self) -> str:
        return self.shown if self.shown is not None else self.kind.show()
