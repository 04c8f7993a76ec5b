"""agentwatch._records.Record: the written-out stand-in for frozen dataclasses built at import time."""

from __future__ import annotations

import copy
import pickle

import pytest

from agentwatch._records import Fields, Record, field, fields
from agentwatch.distro import environment_variables as ev


class Point(Record):
    __slots__ = ("x", "y")
    x: int
    y: tuple[int, ...]

    def __init__(self, x: int, y: tuple[int, ...] = ()) -> None:
        self._set(x=x, y=y)


class Labelled(Point):
    __slots__ = ("label",)
    _compared = ("x", "y")  # the label is not part of its identity
    label: str

    def __init__(self, x: int, y: tuple[int, ...] = (), label: str = "") -> None:
        self._set(x=x, y=y, label=label)


def test_equal_and_hashed_by_value_and_type() -> None:
    assert Point(1, (2,)) == Point(1, (2,)) and hash(Point(1, (2,))) == hash(Point(1, (2,)))
    assert Point(1) != Point(2) and Point(1) != (1, ()) and Point(1) != Labelled(1)
    assert Labelled(1, label="a") == Labelled(1, label="b") and len({Labelled(1, label="a"), Labelled(1, label="b")}) == 1


def test_read_only() -> None:
    point = Point(1)
    with pytest.raises(AttributeError, match="read-only"):
        point.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError, match="read-only"):
        del point.y  # type: ignore[misc]
    with pytest.raises(AttributeError):
        point.z = 3  # type: ignore[attr-defined] - no __dict__ either
    assert point.x == 1


def test_repr_shows_the_compared_fields() -> None:
    assert repr(Point(1, (2,))) == "Point(x=1, y=(2,))"
    assert repr(Labelled(1, label="a")) == "Labelled(x=1, y=())"


@pytest.mark.parametrize("clone", [copy.copy, copy.deepcopy, lambda r: pickle.loads(pickle.dumps(r))],
                         ids=["copy", "deepcopy", "pickle"])
def test_copied_and_pickled_like_a_dataclass(clone) -> None:
    """Restoring goes around the read-only ``__setattr__`` (a plain slotted class would fail here)."""
    for record in (Point(1, (2, 3)), Labelled(4, label="kept"), ev.BY_NAME[ev.AGENTWATCH_SCRUB], ev.Number(1, 0, 9, unit="s")):
        restored = clone(record)
        assert restored == record and restored is not record or clone is copy.copy
        assert all(getattr(restored, name) == getattr(record, name) for name in record.__slots__ if name)
    assert clone(Labelled(4, label="kept")).label == "kept"


# Modules imported at every start whose records are Records now: none of them may compile generated source
# (a frozen dataclass there costs ~0.3-0.5 ms of every start on Python 3.11, see agentwatch._records).
START_UP_MODULES_WITHOUT_GENERATED_CODE = (
    "agentwatch.distro._kinds",
    "agentwatch.distro.environment_variables",
    "agentwatch.semconv",
    "agentwatch.distro.scrub.rules",
    "agentwatch.distro.scrub.limits",
    "agentwatch.distro.endpoints",
    "agentwatch.distro.genai_choice",
    "agentwatch.instrumentors._genai_common",
    "agentwatch.instrumentors._agents.targets",
    "agentwatch.instrumentors.gemini.config",
    "agentwatch.web.security_headers",
    "agentwatch.distro.settings",
)


def test_the_start_up_catalogues_and_configuration_records_compile_no_source() -> None:
    """Each compile of generated source (``exec`` of text: dataclasses, namedtuples) is charged to the module whose
    body ran it (the innermost module body on the stack); the agentwatch modules above must have none."""
    import subprocess
    import sys

    probe = (
        "import sys, functools, dataclasses, typing, collections\n"
        "by_module = {}\n"
        "def hook(event, args):\n"
        "    if event != 'compile' or args[1] != '<string>':\n"
        "        return\n"
        "    frame = sys._getframe(1)\n"
        "    while frame is not None:\n"
        "        name = frame.f_globals.get('__name__', '')\n"
        "        if frame.f_code.co_name == '<module>':  # the module whose body is running: ours or not\n"
        "            if name.startswith('agentwatch'):\n"
        "                by_module[name] = by_module.get(name, 0) + 1\n"
        "            return\n"
        "        frame = frame.f_back\n"
        "sys.addaudithook(hook)\n"
        "import agentwatch.distro.configurator, agentwatch.instrumentors.gemini, agentwatch.instrumentors.intent\n"
        f"import {', '.join(START_UP_MODULES_WITHOUT_GENERATED_CODE)}\n"
        "import json; print(json.dumps(by_module))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    import json

    compiled = json.loads(proc.stdout.strip().splitlines()[-1])
    assert compiled, "the probe found no generated code at all: it no longer sees what it should"
    assert not set(compiled) & set(START_UP_MODULES_WITHOUT_GENERATED_CODE), compiled


class Section(Fields):
    name: str
    size: int = 3
    items: list[str] = field(default_factory=list)
    token: str | None = field(default=None, repr=False)


class Wider(Section):
    extra: bool = False


def test_fields_take_defaults_factories_and_keywords() -> None:
    first, second = Section(name="a"), Section(name="b", size=4, items=["x"])
    assert (first.name, first.size, first.items, first.token) == ("a", 3, [], None)
    assert (second.size, second.items) == (4, ["x"])
    assert Section(name="a").items is not first.items  # a fresh list per instance
    first.size = 9  # mutable
    assert first.size == 9 and Section.size == 3
    assert fields(Section) == ("name", "size", "items", "token") and fields(Wider(name="w"))[-1] == "extra"


def test_fields_refuse_unknown_and_missing_names() -> None:
    with pytest.raises(TypeError, match="has no field 'sise'"):
        Section(name="a", sise=4)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="needs name="):
        Section()  # type: ignore[call-arg]


def test_fields_compare_by_value_hide_secrets_and_are_unhashable() -> None:
    assert Section(name="a", token="s3cret") == Section(name="a", token="s3cret") != Section(name="a")
    assert Section(name="a") != Wider(name="a")
    assert repr(Section(name="a", token="s3cret")) == "Section(name='a', size=3, items=[])"
    with pytest.raises(TypeError):
        hash(Section(name="a"))
    assert copy.deepcopy(Wider(name="w", items=["i"])) == Wider(name="w", items=["i"])


def test_the_scrubber_s_keep_and_renamed_rules_compare_by_identity() -> None:
    """As the ``@dataclass(eq=False)`` they were: two rules with equal fields are still two rules (and a Keep's
    mutable ``clean`` cache must not make it unhashable)."""
    from agentwatch.distro.scrub.rules import Keep, Renamed

    first, second = Keep(frozenset({"ipv4"})), Keep(frozenset({"ipv4"}))
    assert first == first and first != second and len({first, second}) == 2
    first.clean["10.0.0.1"] = None
    assert hash(first) == hash(first)
    assert Renamed("k", first) != Renamed("k", first)
