"""Values and attribute maps: redacted by key, scanned by content, a batch's maps in one pass.

An attribute or dict key whose name is sensitive (``rules.KeyRules``) has its whole value
replaced; every other string goes through the text engine. ``scrub_parts`` takes loose strings
and attribute maps together: their strings are joined with NUL and checked in one pass, and only
the maps whose strings changed are copied. A log batch's attributes are walked key by key
(``parts_by_column``): each key's distinct values not already known clean, not every value.
Values found clean are remembered (``remember_clean``), so the next batches skip them.
"""

# The column walk feeds SDK attribute maps through C-level itertools pipelines (map/compress over
# dict.get); pyright cannot follow their element types there.
# pyright: reportArgumentType=false, reportCallIssue=false

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from itertools import compress, filterfalse, repeat
from itertools import count as _count
from operator import eq, is_, ne
from typing import TYPE_CHECKING, Any

from agentwatch.distro.scrub.detectors import is_card_number
from agentwatch.distro.scrub.limits import cut
from agentwatch.distro.scrub.rules import (
    ERROR_MARK,
    MARK,
    MARK_PREFIX,
    NOT_A_SECRET,
    NUMBERISH,
    PLAIN,
    SAFE,
    Keep,
    Renamed,
    Sensitive,
)

if TYPE_CHECKING:
    from agentwatch.distro.scrub import Scrubber

__all__ = [
    "attributes_safely",
    "cut_map",
    "map_items",
    "parts_by_column",
    "redact",
    "resource_safely",
    "safe_value",
    "scan",
    "scrub_attributes",
    "scrub_parts",
    "scrub_resource",
    "unique_key",
    "value_for",
]


class _ScrubError(Exception):
    """A value the scan refuses (nested deeper than 64 levels)."""


def map_items(mapping: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    """``mapping.items()``, read from the dict inside a ``BoundedAttributes`` (its own ``items()`` is slow)."""
    inner = getattr(mapping, "_dict", None)
    return inner.items() if type(inner) is dict or isinstance(inner, dict) else mapping.items()


# --- one value -------------------------------------------------------------------------------------
def scan(scrubber: Scrubber, value: Any, depth: int) -> Any:
    """``value`` scanned by content, its mappings key by key (``Scrubber.scrub_value`` without a key)."""
    kind = type(value)
    if kind is str:
        return scrubber.scrub_text(value)
    if kind is bool or kind is float or value is None:
        return value
    if kind is int:
        if value >= 1_000_000_000_000 and "credit_card" in scrubber.enabled and is_card_number(str(value)):
            return MARK.format("credit_card")
        return value
    if depth > 64:
        raise _ScrubError("value nested more than 64 levels deep")
    if isinstance(value, Mapping):
        return scrub_mapping(scrubber, value, depth + 1)
    if isinstance(value, (list, tuple)):
        items = [scan(scrubber, item, depth + 1) for item in value]
        if all(a is b for a, b in zip(items, value)):
            return value
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, (bytes, bytearray)):
        return value
    return scrubber.scrub_text(str(value))  # a str subclass, or anything else as text


def value_for(scrubber: Scrubber, kind: Any, value: Any, depth: int = 0, client: bool = False) -> Any:
    """``value`` under a key of class ``kind`` (``rules.KeyRules.classify``); ``client``: the map is
    a client span's, where a connection peer is the server called (kept; elsewhere it may be the
    end user: scanned in full)."""
    if kind is PLAIN:
        return scan(scrubber, value, depth)
    if kind is SAFE:
        return value
    if type(kind) is Renamed:
        return value_for(scrubber, kind.inner, value, depth, client)
    if type(kind) is Keep:
        if kind.peer and not client or kind.scrub is None:
            return scan(scrubber, value, depth)
        if type(value) is str:
            return kind.scrub(value)
        if isinstance(value, (list, tuple)):
            items = [kind.scrub(item) if type(item) is str else scan(scrubber, item, depth + 1) for item in value]
            if all(a is b for a, b in zip(items, value)):
                return value
            return tuple(items) if isinstance(value, tuple) else items
        return scan(scrubber, value, depth)
    return redact(value, kind)


def unique_key(out: Mapping[Any, Any], key: str) -> str:
    """``key``, or ``key#2``, ``key#3``... the first not in ``out``: two keys redacted to the same
    mark (two e-mail addresses used as keys) keep both their values."""
    if key not in out:
        return key
    n = 2
    while f"{key}#{n}" in out:
        n += 1
    return f"{key}#{n}"


def scrub_mapping(scrubber: Scrubber, mapping: Mapping, depth: int, client: bool = False) -> Mapping:
    """A copy of ``mapping`` with its keys and values scrubbed (``mapping`` itself if clean).

    A key that is itself personal data is replaced by its scrubbed text (:class:`rules.Renamed`),
    put after the other keys; keys that become equal are told apart by ``#2``, ``#3``...
    """
    changed: dict | None = None
    renames: list[tuple[Any, Any, Any]] = []
    classify = scrubber._keys.classify
    for key, value in map_items(mapping):
        if isinstance(key, str):
            kind = classify(key)
            if type(kind) is Renamed:
                renames.append((key, kind.key, value_for(scrubber, kind.inner, value, depth, client)))
                continue
        else:
            kind = PLAIN
            if type(key) is int:
                new_key = scan(scrubber, key, depth)  # a card number as an int key
                if new_key is not key:
                    renames.append((key, new_key, scan(scrubber, value, depth)))
                    continue
        new = value_for(scrubber, kind, value, depth, client)
        if new is not value:
            if changed is None:
                changed = dict(map_items(mapping))
            changed[key] = new
    if renames:
        if changed is None:
            changed = dict(map_items(mapping))
        for old, _, _ in renames:
            del changed[old]
        for _, new_key, new in renames:
            changed[unique_key(changed, new_key)] = new
    return mapping if changed is None else changed


def redact(value: Any, kind: Sensitive) -> Any:
    """``value`` under a sensitive key: its mark, unless a placeholder (or a number under a weak word)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value.strip().lower() in NOT_A_SECRET or value.startswith(MARK_PREFIX):
            return value
        if not kind.strong and NUMBERISH.fullmatch(value):
            return value
        return kind.mark
    if isinstance(value, (int, float)):
        return kind.mark if kind.strong else value
    if isinstance(value, (list, tuple)):
        items = [redact(item, kind) for item in value]
        return tuple(items) if isinstance(value, tuple) else items
    return kind.mark


# --- attribute maps, a batch at a time ---------------------------------------------------------------
_CLEAN_LIMIT = 4096  # values remembered clean, at most (the cache is cleared when full)
_CLEAN_VALUE_LENGTH = 256  # longer values are rarely repeated: not remembered
_SIMPLE_TYPES = frozenset({str, int, float, bool, type(None)})  # what the key-by-key walk takes
_NO_ATTRIBUTES: dict = {}


def scrub_attributes(scrubber: Scrubber, attributes: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """A scrubbed copy of an attribute map, or the same object when nothing needed scrubbing."""
    if not attributes:
        return attributes
    done = scrub_parts(scrubber, (), (attributes,))
    return attributes if done is None else done[1][0]


def scrub_parts(
    scrubber: Scrubber,
    texts: Sequence[Any],
    maps: Sequence[Mapping[str, Any] | None],
    clients: frozenset[int] | set[int] = frozenset(),
) -> tuple[list[Any], list[Any]] | None:
    """Scrub loose strings and attribute maps together; ``None`` when nothing changes.

    The strings of all of them (texts, values, sequence items) are joined with NUL and
    checked in one pass; when something is found the joined text is scrubbed once and
    split back, and only the maps whose strings changed are copied. A map with a
    sensitive key, a large int or a nested value is scrubbed value by value instead.
    Unchanged entries are returned as the same objects. The values of keep-list keys
    (:class:`rules.Keep`) are scanned apart, by their own detectors; ``clients``: the indices
    of the maps of client spans, where a connection peer is the server called and is kept
    (elsewhere it may be the end user: scanned in full).
    """
    segments: list[str] = []
    kept: list[tuple[int, str, str, Keep]] = []  # (map index, key, value, kind) of keep-list values
    slow: set[int] = set()
    starts: list[int] = []  # index of the first segment of each map
    add = segments.append
    for text in texts:
        if type(text) is str and text:
            add(text)
    text_segments = len(segments)
    # The key of each map segment (``(key, position)`` for an item of a sequence value), so
    # that a changed value is put back without walking its map again.
    owners: list[Any] = []
    own = owners.append
    cache, classify = scrubber._keys.cache, scrubber._keys.classify
    clean = scrubber._clean_values
    mark = starts.append
    for index, attributes in enumerate(maps):
        mark(len(segments))
        if attributes is None:
            continue
        # map_items inlined (a call per map counts here): the dict inside a BoundedAttributes.
        inner = getattr(attributes, "_dict", None)
        for key, value in (inner if type(inner) is dict or isinstance(inner, dict) else attributes).items():
            kind = cache.get(key)
            if kind is None:
                kind = classify(key)
            if kind is PLAIN:
                t = type(value)
                if t is str:
                    if value in clean:
                        continue
                    add(value)
                    own(key)
                elif t is int:
                    if value >= 1_000_000_000_000:
                        slow.add(index)
                elif t is tuple or t is list:
                    for position, item in enumerate(value):
                        t = type(item)
                        if t is str:
                            add(item)
                            own((key, position))
                        elif not (t is float or t is bool or item is None or (t is int and item < 1_000_000_000_000)):
                            slow.add(index)
                elif not (t is float or t is bool or value is None):
                    slow.add(index)  # bytes, mappings, other objects
            elif kind is SAFE:
                continue
            elif type(kind) is Keep and type(value) is str:
                if kind.peer and index not in clients:  # maybe the end user's address: scanned in full
                    if value in clean:  # found clean by the full scan before
                        continue
                    add(value)
                    own(key)
                elif value not in kind.clean:
                    kept.append((index, key, value, kind))
            else:
                slow.add(index)
    # (Attribute values: hashed already, by the clean-value check above.)
    parts = scrubber._scrub_segments(segments, repeats=True) if segments else None
    keep_changes = _scrub_kept(scrubber, kept) if kept else None
    if parts is None and not slow and not keep_changes:
        remember_clean(scrubber, segments, owners, text_segments)
        return None
    new_texts, new_maps = list(texts), list(maps)
    for index in slow:
        new_maps[index] = scrub_mapping(scrubber, maps[index], 0, index in clients)
    changed = [] if parts is None else list(compress(_count(), map(ne, segments, parts)))  # where they differ
    if not changed:
        remember_clean(scrubber, segments, owners, text_segments)
        if keep_changes:
            _apply_kept(maps, new_maps, keep_changes, slow)
        return new_texts, new_maps
    assert parts is not None
    # Texts: the first segments, in order (empty or non-str texts have none).
    if changed[0] < text_segments:
        position = 0
        for index, text in enumerate(texts):
            if type(text) is str and text:
                if parts[position] != text:
                    new_texts[index] = parts[position]
                position += 1
    # Maps: walk again only those holding a changed segment.
    touched: dict[int, list[int]] = {}  # map index -> its changed segments
    for k in changed:
        if k >= text_segments:
            touched.setdefault(bisect.bisect_right(starts, k) - 1, []).append(k)
    for index, ks in touched.items():
        if index not in slow:
            new_maps[index] = _put_back(maps[index], parts, ks, owners, text_segments)
    remember_clean(scrubber, segments, owners, text_segments, set(changed))
    if keep_changes:
        _apply_kept(maps, new_maps, keep_changes, slow)
    return new_texts, new_maps


def _scrub_kept(scrubber: Scrubber, kept: list[tuple[int, str, str, Keep]]) -> list[tuple[int, str, str]] | None:
    """The keep-list values that change under their own scan, as ``(map index, key, new value)``."""
    out = []
    for index, key, value, kind in kept:
        clean = kind.clean
        new = kind.scrub(value) if kind.scrub is not None else scrubber.scrub_text(value)
        if new != value:
            out.append((index, key, new))
        elif len(value) <= _CLEAN_VALUE_LENGTH:
            if len(clean) >= _CLEAN_LIMIT:
                clean.clear()
            clean[value] = None
    return out or None


def _apply_kept(
    maps: Sequence[Any], new_maps: list[Any], changes: list[tuple[int, str, str]] | None, slow: set[int]
) -> None:
    """Put the changed keep-list values back (maps scrubbed whole, in ``slow``, have them already)."""
    if not changes:
        return
    for index, key, new in changes:
        if index in slow:
            continue
        if new_maps[index] is maps[index]:
            new_maps[index] = dict(map_items(maps[index]))
        new_maps[index][key] = new


def parts_by_column(scrubber: Scrubber, texts: Sequence[Any], maps: Sequence[Any]) -> Any:
    """``scrub_parts`` for a batch of log records, walked key by key rather than map by map.

    The records of a batch share their keys (``code.*``, ``request_id``...) and most of
    their values: each distinct key is classified once, and only the distinct values of a
    key that are not already known clean are scanned (a set per key, built in C). A value
    that changes is put back in every map holding it. ``NotImplemented`` when a map is not
    a dict, a key is sensitive, or a value is not a string, a number or ``None`` (or is an
    int long enough to be a card number): the walk of ``scrub_parts`` handles those.
    """
    inners = list(map(getattr, maps, repeat("_dict"), maps))  # a BoundedAttributes' dict, or the map
    if None in inners:
        inners = [_NO_ATTRIBUTES if inner is None else inner for inner in inners]
    if set(map(type, inners)) != {dict}:
        return NotImplemented
    cache, classify = scrubber._keys.cache, scrubber._keys.classify
    clean = scrubber._clean_values
    text_types = set(map(type, texts))
    if text_types == {str}:
        text_at: Sequence[int] = range(len(texts))
        segments = list(texts)
    elif text_types <= _SIMPLE_TYPES:
        text_at = list(compress(range(len(texts)), map(is_, map(type, texts), repeat(str))))
        segments = [texts[i] for i in text_at]
    else:
        return NotImplemented
    first = len(segments)
    keys: list[str] = []  # the key of each attribute segment
    try:
        for key in set().union(*inners):
            kind = cache.get(key)
            if kind is None:
                kind = classify(key)
            if kind is SAFE:
                continue
            if kind is not PLAIN:
                return NotImplemented
            # (Not ``- clean.keys()``: that walks the whole cache, which another exporter's
            # thread may be filling.)
            fresh = set(filterfalse(clean.__contains__, set(map(dict.get, inners, repeat(key)))))
            types = set(map(type, fresh))
            if float in types:  # an int equal to a float is the same set member: the real types
                types = set(map(type, map(dict.get, inners, repeat(key))))
            if not types <= _SIMPLE_TYPES or int in types and (
                float in types or max(v for v in fresh if type(v) is int) >= 1_000_000_000_000
            ):
                return NotImplemented
            if str in types:
                before = len(segments)
                segments.extend(v for v in fresh if type(v) is str)
                keys.extend(repeat(key, len(segments) - before))
    except TypeError:  # an unhashable value
        return NotImplemented
    parts = scrubber._scrub_segments(segments) if segments else None
    changed = [] if parts is None else list(compress(_count(), map(ne, segments, parts)))
    remember_clean(scrubber, segments, keys, first, set(changed))
    if not changed:
        return None
    new_texts, new_maps = list(texts), list(maps)
    copies: dict[int, dict] = {}
    for k in changed:
        if k < first:
            new_texts[text_at[k]] = parts[k]  # type: ignore[index]
            continue
        key, old = keys[k - first], segments[k]
        for row in compress(_count(), map(eq, map(dict.get, inners, repeat(key)), repeat(old))):
            copy_ = copies.get(row)
            if copy_ is None:
                copy_ = copies[row] = dict(inners[row])
            copy_[key] = parts[k]  # type: ignore[index]
    for row, copy_ in copies.items():
        new_maps[row] = copy_
    return new_texts, new_maps


def remember_clean(
    scrubber: Scrubber, segments: list[str], owners: list[Any], first: int, changed: set[int] | frozenset = frozenset()
) -> None:
    """Add the attribute values of ``segments`` (from index ``first``) left unchanged to
    ``scrubber._clean_values``. Called last: ``_put_back`` must skip the same values as the walk."""
    clean = scrubber._clean_values
    if len(clean) >= _CLEAN_LIMIT:
        clean.clear()
    limit = _CLEAN_VALUE_LENGTH
    for k, owner in enumerate(owners, first):
        if type(owner) is str and k not in changed:
            value = segments[k]
            if len(value) <= limit:
                clean[value] = None


def _put_back(attributes: Mapping[str, Any], parts: list[str], ks: list[int], owners: list[Any], first: int) -> dict:
    """A copy of ``attributes`` with the changed segments ``ks`` of ``parts`` put back.

    ``owners[k - first]`` says where segment ``k`` came from: a key, or ``(key, position)``
    for an item of a sequence value. Recorded by the walk of ``scrub_parts``, not re-derived
    (``_clean_values`` may change under another thread's batch in the meantime).
    """
    out = dict(map_items(attributes))
    for k in ks:
        owner = owners[k - first]
        if type(owner) is str:
            out[owner] = parts[k]
        else:
            key, position = owner
            value = out[key]
            items = list(value)
            items[position] = parts[k]
            out[key] = tuple(items) if type(value) is tuple else items
    return out


# --- length limits, after scrubbing (limits.py) ------------------------------------------------------
def cut_map(mapping: Any, limit: int | None) -> Any:
    """``mapping`` (scrubbed) with its string values, and the strings in its sequence values, cut to
    ``limit`` (:func:`limits.cut`); the same object when none is longer."""
    if limit is None or not mapping:
        return mapping
    changed: dict | None = None
    for key, value in map_items(mapping):
        t = type(value)
        if t is str:
            if len(value) <= limit:
                continue
            new: Any = cut(value, limit)
        elif t is tuple or t is list:
            if not any(type(item) is str and len(item) > limit for item in value):
                continue
            items = [cut(item, limit) if type(item) is str else item for item in value]
            new = tuple(items) if t is tuple else items
        else:
            continue
        if changed is None:
            changed = dict(map_items(mapping))
        changed[key] = new
    return mapping if changed is None else changed


# --- resources ---------------------------------------------------------------------------------------
def scrub_resource(scrubber: Scrubber, resource: Any) -> Any:
    """A resource with scrubbed attributes (cached per resource object)."""
    cached = scrubber._resource_cache.get(id(resource))
    if cached is not None and cached[0] is resource:
        return cached[1]
    attributes = resource.attributes
    scrubbed = scrub_attributes(scrubber, attributes)
    if scrubbed is attributes:
        result = resource
    else:
        result = type(resource)(dict(scrubbed), resource.schema_url)  # a StableResource stays one
    if len(scrubber._resource_cache) > 64:
        scrubber._resource_cache.clear()
    scrubber._resource_cache[id(resource)] = (resource, result)
    return result


# --- the last resort: value by value, what cannot be scrubbed is redacted ------------------------------
def safe_value(scrubber: Scrubber, value: Any) -> Any:
    """``value`` scanned, or ``[REDACTED:error]`` if that fails."""
    try:
        return scan(scrubber, value, 0)
    except Exception:  # noqa: BLE001 - drop the value rather than leak it
        return ERROR_MARK


def attributes_safely(scrubber: Scrubber, attributes: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """A copy of ``attributes`` scrubbed value by value; a value that fails becomes ``[REDACTED:error]``."""
    if not attributes:
        return attributes
    out: dict[Any, Any] = {}
    for key, value in attributes.items():
        try:
            new_key = scrubber.scrub_key(key)
        except Exception:  # noqa: BLE001 - a key that cannot be scrubbed is replaced too
            new_key = ERROR_MARK
        try:
            new = scrubber.scrub_value(value, key)
        except Exception:  # noqa: BLE001 - drop the value rather than leak it
            new = ERROR_MARK
        out[unique_key(out, new_key)] = new
    return out


def resource_safely(scrubber: Scrubber, resource: Any) -> Any:
    """``scrub_resource``, or a resource with its attributes scrubbed value by value if that fails."""
    try:
        return scrub_resource(scrubber, resource)
    except Exception:  # noqa: BLE001
        from opentelemetry.sdk.resources import Resource

        return Resource(attributes_safely(scrubber, resource.attributes) or {}, resource.schema_url)
