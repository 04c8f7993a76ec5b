"""Small immutable records written out, for the classes agentwatch builds at import time.

On Python 3.11 ``@dataclass(frozen=True)`` compiles its generated methods (``__init__``, ``__repr__``,
``__eq__``, ``__hash__``, ``__setattr__``, ``__delattr__``) from source text when the class is created:
~0.3-0.5 ms per class, ~15 ms of every process start for the ~40 dataclasses agentwatch defined at import
(callgrind: the parser and compiler were ~20 % of agentwatch's extra start-up instructions). A
:class:`Record` subclass lists its fields in ``__slots__`` and sets them in a written-out ``__init__``
(``self._set(...)``); equality, hashing, ``repr`` and read-only attributes come from this base, as a
frozen dataclass's would. Classes created per request or with mutable fields stay dataclasses.
"""

from __future__ import annotations

from typing import Any


class Record:
    """Immutable, compared, hashed and shown by the values of its ``__slots__`` (as a frozen dataclass)."""

    __slots__ = ()
    _compared: tuple[str, ...] = ()  # the slots compared and shown: all of them, base classes first, unless given

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_compared" not in cls.__dict__:
            cls._compared = tuple(n for klass in reversed(cls.__mro__) for n in getattr(klass, "__slots__", ()))

    def _set(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._compared)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only (cannot delete {name!r})")

    def __setstate__(self, state: Any) -> None:
        """What ``copy`` and ``pickle`` restore (``object.__getstate__`` gives ``(None, {slot: value})``)."""
        for part in state if isinstance(state, tuple) else (state,):
            for name, value in (part or {}).items():
                object.__setattr__(self, name, value)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._values() == self._values()  # pyright: ignore[reportAttributeAccessIssue]

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._compared)
        return f"{type(self).__name__}({shown})"
