"""Spans: a batch's names, status messages, event names and every attribute map in one pass.

What the exporters read of a span is cleaned: the span name, its attributes, the status
message, event names and attributes, link attributes and the resource. A span that changed is
exported as a :class:`ScrubbedSpan`, a copy that keeps the original dropped counts; a clean one
is passed on as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import compress, repeat
from operator import attrgetter, is_, is_not, itemgetter
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, TraceState
from opentelemetry.trace.span import DEFAULT_TRACE_STATE as _NO_STATE

from agentwatch.distro.scrub.values import cut_map, map_items, scrub_parts, scrub_resource

if TYPE_CHECKING:
    from agentwatch.distro.scrub import Scrubber

__all__ = ["SPAN_FIELDS", "ScrubbedEvent", "ScrubbedLink", "ScrubbedSpan", "dropped", "rebuild_span", "scrub_batch"]

#: The private fields of ``ReadableSpan`` that :class:`ScrubbedSpan`'s fast path sets (or
#: ``scrub_batch`` reads), by the
#: public property that reads each. An SDK release that renamed one would leave the copy showing
#: the original, unscrubbed value: ``tests/test_scrub_sdk.py`` checks each against the SDK in use
#: (and ``scrub_batch`` reads ``_attributes`` without a default, so a rename fails closed there).
SPAN_FIELDS = {
    "name": "_name",
    "attributes": "_attributes",
    "events": "_events",
    "links": "_links",
    "status": "_status",
    "resource": "_resource",
    "context": "_context",
    "kind": "_kind",  # read, not set (scrub_batch)
}


class ScrubbedSpan(ReadableSpan):
    """A scrubbed copy of ``span``: the given name, maps, status and resource, its other fields
    and its dropped counts (the copy's maps are plain dicts, which count nothing as dropped)."""

    def __init__(
        self, span: Any, name: Any, attributes: Any, events: Any, links: Any, status: Any, resource: Any,
        context: Any = None,
    ) -> None:
        context = span.context if context is None else context
        if type(span) is ReadableSpan:
            # What the SDK hands exporters: reuse its fields, replace the scrubbed ones (the
            # fields of SPAN_FIELDS): a third of the cost of the keyword constructor, on every
            # span that changed.
            self.__dict__.update(span.__dict__)
            self._name, self._attributes, self._events, self._links = name, attributes, events, links
            self._status, self._resource, self._context = status, resource, context
            self._scrub_dropped = (span.dropped_attributes, span.dropped_events, span.dropped_links)
            return
        super().__init__(
            name=name,
            context=context,
            parent=span.parent,
            resource=resource,
            attributes=attributes,
            events=events,
            links=links,
            kind=span.kind,
            instrumentation_info=getattr(span, "_instrumentation_info", None),
            status=status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )
        self._scrub_dropped = (span.dropped_attributes, span.dropped_events, span.dropped_links)

    @property
    def dropped_attributes(self) -> int:
        return self._scrub_dropped[0]

    @property
    def dropped_events(self) -> int:
        return self._scrub_dropped[1]

    @property
    def dropped_links(self) -> int:
        return self._scrub_dropped[2]


class ScrubbedEvent(Event):
    """A span event with scrubbed name and attributes, and the original's dropped count."""

    def __init__(self, name: str, attributes: Any, timestamp: Any, dropped: int) -> None:
        super().__init__(name, attributes, timestamp)
        self._scrub_dropped = dropped

    @property
    def dropped_attributes(self) -> int:
        return self._scrub_dropped


class ScrubbedLink(Link):
    """A span link with scrubbed attributes, and the original's dropped count."""

    def __init__(self, context: Any, attributes: Any, dropped: int) -> None:
        super().__init__(context, attributes)
        self._scrub_dropped = dropped

    @property
    def dropped_attributes(self) -> int:
        return self._scrub_dropped


def dropped(item: Any) -> int:
    """``item.dropped_attributes``, or 0 when it cannot say."""
    try:
        return int(item.dropped_attributes)
    except Exception:  # noqa: BLE001
        return 0


_CLIENT = SpanKind.CLIENT
_TRACE_STATE = 4  # SpanContext's item read by .trace_state
_KIND, _CONTEXT, _STATE, _LINKS = attrgetter("_kind"), attrgetter("_context"), itemgetter(_TRACE_STATE), itemgetter(3)


def scrub_batch(scrubber: Scrubber, spans: Sequence[Any]) -> list[Any]:
    """Scrub a batch of spans; all their strings are checked (and scrubbed) in one pass.

    Also scrubbed: the values of the span's (and its links') ``tracestate``, which an incoming
    request sets and the exporters send as they are. With attribute length limits
    (``limits.py``), the scrubbed values are cut after.
    """
    texts: list[Any] = []
    maps: list[Any] = []
    layout = []
    add_text, add_map, add_layout = texts.append, maps.append, layout.append
    for span in spans:
        if type(span) is ReadableSpan:
            # What the SDK hands exporters: its fields (SPAN_FIELDS), not the properties, which
            # copy the events and links under a lock (on most spans there are none).
            events, links, status = span._events, span._links, span._status
            events = tuple(events) if events else ()
            links = tuple(links) if links else ()
            attributes = span._attributes
        else:
            events, links, status = span.events, span.links, span.status
            # The BoundedAttributes itself (``attributes`` wraps it in a read-only proxy). No
            # default: were the field renamed, the batch fails and is scrubbed value by value.
            attributes = span._attributes if isinstance(span, ReadableSpan) else span.attributes
        add_layout((len(texts), len(maps), events, links))
        add_text(span.name)
        add_text(status.description if status is not None else None)
        add_map(attributes)
        if events:
            texts.extend(event.name for event in events)
            maps.extend(event.attributes for event in events)
        if links:
            maps.extend(link.attributes for link in links)
    clients, states = _kinds_and_states(spans, layout)
    done = scrub_parts(scrubber, texts, maps, clients)
    limits = scrubber.limits
    if limits is not None:
        done = _cut(done, texts, maps, layout, limits)
    new_texts, new_maps = done if done is not None else (texts, maps)
    out = []
    keep = out.append
    resources = scrubber._resource_cache
    for index, (span, (t0, m0, events, links)) in enumerate(zip(spans, layout)):
        resource = span.resource
        cached = resources.get(id(resource))
        resource = cached[1] if cached is not None and cached[0] is resource else scrub_resource(scrubber, resource)
        t1, m1 = t0 + 2 + len(events), m0 + 1 + len(events) + len(links)
        if resource is span.resource and (
            index not in states
            or _scrub_context(scrubber, span.context) is span.context
            and all(_scrub_context(scrubber, link.context) is link.context for link in links)
        ) and (
            done is None
            or all(map(is_, new_texts[t0:t1], texts[t0:t1])) and all(map(is_, new_maps[m0:m1], maps[m0:m1]))
        ):
            keep(span)
        else:
            keep(rebuild_span(span, new_texts[t0:t1], new_maps[m0:m1], resource, events, links,
                              scrubber if index in states else None))
    return out


_NONE: frozenset[int] = frozenset()


def _kinds_and_states(spans: Sequence[Any], layout: list[Any]) -> tuple[set[int] | frozenset[int], set[int] | frozenset[int]]:
    """The maps of client spans (where a connection peer is the server called: kept) and the spans
    whose own or a link's context carries a tracestate; read in C over the batch (this runs per span)."""
    if len(spans) == 1:  # one span (scrub_span, SimpleSpanProcessor): no machinery for a batch
        span, (_, _, events, links) = spans[0], layout[0]
        sdk = type(span) is ReadableSpan
        client = (span._kind if sdk else span.kind) is _CLIENT
        state = (span._context if sdk else span.context).trace_state  # pyright: ignore[reportOptionalMemberAccess]
        # (The default state is the empty one, shared: ``is`` first, not a Python __len__ call.)
        state = state is not _NO_STATE and state or links and any(link.context.trace_state for link in links)
        return (set(range(1 + len(events) + len(links))) if client else _NONE), ({0} if state else _NONE)
    try:  # the SDK's fields, not its properties (SPAN_FIELDS; the context is a tuple, its tracestate item 4)
        kinds = list(map(_KIND, spans))
        found = list(map(_STATE, map(_CONTEXT, spans)))
        states = set(compress(range(len(spans)), map(is_not, found, repeat(_NO_STATE))))
        if states:
            states = {index for index in states if found[index]}
    except (AttributeError, TypeError):  # span-likes without them
        kinds = [span.kind for span in spans]
        states = {index for index, span in enumerate(spans) if span.context.trace_state}
    clients: set[int] = set()
    if _CLIENT in kinds:
        for index in compress(range(len(spans)), map(is_, kinds, repeat(_CLIENT))):
            _, m0, events, links = layout[index]
            clients.update(range(m0, m0 + 1 + len(events) + len(links)))
    for index in compress(range(len(spans)), map(_LINKS, layout)):
        if any(link.context.trace_state for link in layout[index][3]):
            states.add(index)
    return clients, states


def _cut(done: Any, texts: list[Any], maps: list[Any], layout: list[Any], limits: Any) -> Any:
    """``done`` (``scrub_parts``' result) with the attribute values cut to the span and event/link
    limits (``limits.py``): after scrubbing, never before."""
    new_maps = list(maps) if done is None else done[1]
    changed = False
    for _t0, m0, events, links in layout:
        for offset in range(1 + len(events) + len(links)):
            m = m0 + offset
            new = cut_map(new_maps[m], limits.span if offset == 0 else limits.event)
            if new is not new_maps[m]:
                new_maps[m] = new
                changed = True
    if done is None:
        return (list(texts), new_maps) if changed else None
    return done


def _scrub_context(scrubber: Scrubber, context: Any) -> Any:
    """``context`` with the values of its ``tracestate`` scrubbed (``context`` itself when clean)."""
    state = getattr(context, "trace_state", None)
    if not state:
        return context
    pairs = [(key, scrubber.scrub_text(value)) for key, value in state.items()]
    if all(new == value for (_, new), value in zip(pairs, state.values())):
        return context
    # (A mark is valid tracestate: no "," or "=". A value the SDK still refuses is dropped by it.)
    return SpanContext(context.trace_id, context.span_id, context.is_remote, context.trace_flags,
                       TraceState(pairs))


def rebuild_span(
    span: Any,
    texts: list[Any],
    maps: list[Any],
    resource: Any,
    old_events: Any = None,
    old_links: Any = None,
    scrubber: Scrubber | None = None,
) -> ScrubbedSpan:
    """A :class:`ScrubbedSpan` of ``span`` with the scrubbed ``texts`` (name, status message,
    event names) and ``maps`` (span, event and link attributes), in ``scrub_batch``'s layout;
    with ``scrubber``, the span's and links' ``tracestate`` values are scrubbed too."""
    old_events = span.events if old_events is None else old_events
    old_links = span.links if old_links is None else old_links
    events = []
    for index, event in enumerate(old_events):
        name, attributes = texts[2 + index], maps[1 + index]
        if name is event.name and attributes is event.attributes:
            events.append(event)
        else:
            events.append(ScrubbedEvent(name, attributes, event.timestamp, dropped(event)))
    links = []
    for index, link in enumerate(old_links):
        attributes = maps[1 + len(old_events) + index]
        context = link.context if scrubber is None else _scrub_context(scrubber, link.context)
        if attributes is link.attributes and context is link.context:
            links.append(link)
        else:
            links.append(ScrubbedLink(context, attributes, dropped(link)))
    status = span.status
    if status is not None and texts[1] is not status.description:
        status = Status(status.status_code, texts[1])
    attributes = maps[0]
    if type(attributes) is not dict:  # unchanged: copy it out of its BoundedAttributes
        attributes = dict(map_items(attributes or {}))
    context = span.context if scrubber is None else _scrub_context(scrubber, span.context)
    return ScrubbedSpan(span, texts[0], attributes, events, links, status, resource, context)
