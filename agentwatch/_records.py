"""Small immutable records written out, for the classes agentwatch builds at import time.

On Python 3.11 ``@dataclass(frozen=True)`` compiles its generated methods (``__init__``, ``__repr__``,
``__eq__``, ``__hash__``, ``__setattr__``, ``__delattr__``) from source text when the class is created:
~0.3-0.5 ms per class, ~15 ms of every process start for the ~40 dataclasses agentwatch defined at import
(callgrind: the parser and compiler were ~20 % of agentwatch's extra start-up instructions). A
:class:`Record` subclass lists its fields in ``__slots__`` and sets them in a written-out ``__init__``
(``self._set(...)``); equality, hashing, ``repr`` and read-only attributes come from this base, as a
frozen dataclass's would. :class:`Fields` does the same for mutable classes whose fields are declared
as annotated class attributes (the settings sections): one generic ``__init__`` reads the declarations
made once per class. Classes created per request stay dataclasses (their generated ``__init__`` is faster).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # Python 3.11+ has it in typing; it only tells type checkers what Fields' __init__ takes
    from typing_extensions import dataclass_transform
else:
    def dataclass_transform(**_: Any) -> Callable[[type], type]:
        return lambda cls: cls


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



_MISSING: Any = object()


class _Field:
    """What :func:`field` declares: a default, or a factory called for each instance; shown in ``repr`` or not."""

    __slots__ = ("default", "factory", "shown")

    def __init__(self, default: Any, factory: Callable[[], Any] | None, shown: bool) -> None:
        self.default, self.factory, self.shown = default, factory, shown


def field(*, default: Any = _MISSING, default_factory: Callable[[], Any] | None = None, repr: bool = True) -> Any:
    """A :class:`Fields` field with a default made anew for each instance, or kept out of ``repr``
    (``dataclasses.field``'s ``default``, ``default_factory`` and ``repr``)."""
    return _Field(default, default_factory, repr)


@dataclass_transform(kw_only_default=True, field_specifiers=(field,))
class Fields:
    """A mutable record whose fields are its annotated class attributes (base classes' first), with their
    defaults or :func:`field` declarations; made with keyword arguments, compared by value, shown by ``repr``
    (a field declared ``repr=False`` is not), unhashable: a ``@dataclass`` with ``eq`` without its compile."""

    # (name, default, factory, shown) of each field, in declaration order
    _fields: ClassVar[tuple[tuple[str, Any, Callable[[], Any] | None, bool], ...]] = ()
    __hash__: ClassVar[None]  # pyright: ignore[reportIncompatibleMethodOverride] - mutable, compared by value

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = {spec[0]: spec for spec in cls._fields}
        for name, annotation in cls.__dict__.get("__annotations__", {}).items():
            if str(annotation).startswith(("ClassVar", "typing.ClassVar")):
                continue
            value = cls.__dict__.get(name, _MISSING)
            if isinstance(value, _Field):
                declared[name] = (name, value.default, value.factory, value.shown)
                if value.default is _MISSING:
                    delattr(cls, name)
                else:
                    setattr(cls, name, value.default)
            else:
                declared[name] = (name, value, None, True)
        cls._fields = tuple(declared.values())

    def __init__(self, **values: Any) -> None:
        for name, default, factory, _ in self._fields:
            if name in values:
                value = values.pop(name)
            elif factory is not None:
                value = factory()
            elif default is not _MISSING:
                value = default
            else:
                raise TypeError(f"{type(self).__name__}() needs {name}=")
            setattr(self, name, value)
        if values:
            raise TypeError(f"{type(self).__name__}() has no field {sorted(values)[0]!r}")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(getattr(self, spec[0]) == getattr(other, spec[0]) for spec in self._fields)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name, _, _, visible in self._fields if visible)
        return f"{type(self).__name__}({shown})"


Fields.__hash__ = None  # type: ignore[assignment]


def fields(record: type[Fields] | Fields) -> tuple[str, ...]:
    """The field names of a :class:`Fields` class or instance, in declaration order."""
    return tuple(spec[0] for spec in record._fields)
