"""Log records: a batch's bodies, event names and attribute maps in one pass.

What the exporters read of a log record is cleaned: the body (strings, and dicts and lists at
any depth), the attributes, the event name and the resource. The records of a batch share their
keys and most of their values, so from ``_COLUMN_BATCH`` records on the attributes are walked key
by key (``values.parts_by_column``). A record that changed is exported as a
:class:`ScrubbedLogRecord`, which keeps the original dropped count; a clean one as it is.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from operator import attrgetter, is_, is_not
from typing import TYPE_CHECKING, Any

from opentelemetry._logs import LogRecord as _API_LOG_RECORD  # what ReadableLogRecord.log_record holds
from opentelemetry.sdk._logs import ReadableLogRecord

from agentwatch.distro.scrub.limits import MARGIN, cut, marked
from agentwatch.distro.scrub.values import cut_map, parts_by_column, scan, scrub_parts, scrub_resource

if TYPE_CHECKING:
    from agentwatch.distro.scrub import Scrubber

__all__ = ["ScrubbedLogRecord", "rebuild_log", "scrub_batch"]

_COLUMN_BATCH = 16  # log batches at least this long are walked key by key (values.parts_by_column)
_LOG_RECORD = attrgetter("log_record")
_BODY = attrgetter("body")
_EVENT_NAME = attrgetter("event_name")
_ATTRIBUTES = attrgetter("attributes")
_RESOURCE = attrgetter("resource")


@dataclass(frozen=True)
class ScrubbedLogRecord(ReadableLogRecord):
    """A scrubbed copy of a log record that keeps the original's dropped count."""

    scrub_dropped: int = 0

    @property
    def dropped_attributes(self) -> int:
        return self.scrub_dropped


def scrub_batch(scrubber: Scrubber, records: Sequence[Any]) -> list[Any]:
    """Scrub a batch of log records; all their strings are checked (and scrubbed) in one pass.

    The per-record work is done by C-level ``map``/``compress`` over the batch; only the
    records that changed (or have a non-string body, or another resource) are looked at
    one by one.
    """
    n = len(records)
    logs = list(map(_LOG_RECORD, records))
    bodies = list(map(_BODY, logs))
    body_limit = scrubber.limits.log_body if scrubber.limits is not None else None
    cut_bodies: dict[int, int] = {}  # index -> characters never scrubbed (cut before scrubbing)
    if body_limit is not None:
        bound = body_limit + MARGIN
        for index in [i for i, b in enumerate(bodies) if type(b) is str and len(b) > body_limit]:
            if len(bodies[index]) > bound:  # scrub only what can be kept (limits.py)
                cut_bodies[index] = len(bodies[index]) - bound
                bodies[index] = bodies[index][:bound]
            else:
                cut_bodies[index] = 0
    try:
        events = list(map(_EVENT_NAME, logs))
    except AttributeError:  # a record type without event_name
        events = [getattr(log, "event_name", None) for log in logs]
    maps = list(map(_ATTRIBUTES, logs))
    with_events = events.count(None) != n  # event names are rare in logs
    texts = bodies + events if with_events else bodies  # scrub_parts takes the strings among them
    # Records of a batch share keys and values: walked key by key. (Spans are not: many keys,
    # sequence values, few repeats; and one record gains nothing.)
    done = parts_by_column(scrubber, texts, maps) if n >= _COLUMN_BATCH else NotImplemented
    if done is NotImplemented:
        done = scrub_parts(scrubber, texts, maps)
    limit = scrubber.limits.log if scrubber.limits is not None else None
    if limit is not None:  # attribute values cut after scrubbing, never before (limits.py)
        cut_maps = list(map(cut_map, maps if done is None else done[1], repeat(limit)))
        if done is not None:
            done = (done[0], cut_maps)
        elif any(map(is_not, cut_maps, maps)):
            done = (texts, cut_maps)
    redo: set[int] = set()
    if done is not None:
        new_texts, new_maps = done
        redo.update(compress(range(len(texts)), map(is_not, new_texts, texts)))
        redo = {i % n for i in redo}
        redo.update(compress(range(n), map(is_not, new_maps, maps)))
    else:
        new_texts, new_maps = texts, maps
    # Bodies that are not strings (mappings, lists, bytes...) are scanned value by value.
    others = [i for i in compress(range(n), map(is_not, map(type, bodies), repeat(str))) if bodies[i] is not None]
    redo.update(others)
    resources = list(map(_RESOURCE, records))
    first = resources[0] if n else None
    if n and all(map(is_, resources, repeat(first))):  # one resource for the batch, mostly
        scrubbed = scrub_resource(scrubber, first)
        new_resources = None if scrubbed is first else [scrubbed] * n
    else:  # several resources: each scrubbed (cached per resource object)
        new_resources = [scrub_resource(scrubber, resource) for resource in resources]
        if all(map(is_, new_resources, resources)):
            new_resources = None
    if new_resources is not None:
        redo = range(n)  # type: ignore[assignment]
    if cut_bodies:
        assert body_limit is not None
        new_texts = list(new_texts)
        for index, never_scrubbed in cut_bodies.items():
            scrubbed = new_texts[index]
            kept = cut(scrubbed, body_limit)
            new_texts[index] = marked(kept, never_scrubbed + len(scrubbed) - len(kept))
        redo = set(redo) | set(cut_bodies)
    if not redo:
        return list(records)
    out = list(records)
    others_set = set(others)
    for index in sorted(redo):
        record, body = records[index], _BODY(logs[index])
        new_body = scan(scrubber, body, 0) if index in others_set else new_texts[index]
        event_name, attributes = new_texts[n + index] if with_events else events[index], new_maps[index]
        resource = new_resources[index] if new_resources is not None else resources[index]
        if new_body is body and event_name is events[index] and attributes is maps[index] and resource is resources[index]:
            continue
        out[index] = rebuild_log(record, new_body, attributes, event_name, resource)
    return out


def rebuild_log(record: Any, body: Any, attributes: Any, event_name: Any, resource: Any) -> ScrubbedLogRecord:
    """A :class:`ScrubbedLogRecord` of ``record`` with the scrubbed body, attributes, event name and resource."""
    old = record.log_record
    if type(old) is _API_LOG_RECORD:  # a plain object: its __dict__ copied (copy.copy costs 4x)
        log = object.__new__(_API_LOG_RECORD)
        log.__dict__.update(old.__dict__)  # pyright: ignore[reportAttributeAccessIssue] - an instance __dict__ is a dict
    else:
        log = copy.copy(old)
    log.body = body
    # A changed map is already a fresh dict; an unchanged one is shared (exporters only read it).
    log.attributes = attributes
    if hasattr(log, "event_name"):
        log.event_name = event_name
    if hasattr(log, "exception"):
        log.exception = None  # exported as exception.* attributes, which were scrubbed
    return ScrubbedLogRecord(
        log_record=log,
        resource=resource,
        instrumentation_scope=record.instrumentation_scope,
        limits=record.limits,
        scrub_dropped=record.dropped_attributes,
    )
