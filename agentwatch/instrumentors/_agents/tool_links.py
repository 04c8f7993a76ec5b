"""Which model call asked for a tool: the function calls of recent Gemini responses, per trace.

The Gemini instrumentor records each response's ``function_call`` parts with its call span's context
(:func:`record`); a tool span of ``AGENTWATCH_TOOL_TARGETS`` started in the same trace takes the
matching one (:func:`take`: same name and arguments, else the oldest call of that name) to get the
call id and a span link to the model call that requested it. Bounded: a few calls per trace, a few
hundred traces, oldest dropped first; each call is taken once.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

_MAX_TRACES = 512
_MAX_CALLS = 64

_lock = threading.Lock()
_calls: OrderedDict[int, list[tuple[str, str, str | None, Any]]] = OrderedDict()


def arguments_key(arguments: Any) -> str:
    """Canonical JSON of a call's arguments (keys sorted), the same for the model's and the app's side."""
    try:
        return json.dumps(arguments or {}, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(arguments)


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


#: The same tool with the same arguments this many times in one trace is a loop (signalled once).
LOOP_THRESHOLD = 3
_counts: OrderedDict[int, dict[tuple[str, str], int]] = OrderedDict()


def record(span: Any, response: Any, declared: list[str] | None = None) -> list[tuple[str, str, int]]:
    """Remember the function calls of ``response``'s first candidate, requested by the call ``span``.

    Returns the signals: ``("unknown", name, 1)`` for a call of a function not in ``declared`` (when the
    request's tools are known), ``("loop", name, count)`` when a name and arguments reach
    :data:`LOOP_THRESHOLD` in the trace.
    """
    candidates = _field(response, "candidates") or []
    if not candidates or span is None:
        return []
    found = []
    for part in _field(_field(candidates[0], "content"), "parts") or []:
        call = _field(part, "function_call")
        name = _field(call, "name") if call is not None else None
        if name:
            call_id = _field(call, "id")
            found.append((str(name), arguments_key(_field(call, "args")), str(call_id) if call_id else None))
    if not found:
        return []
    signals = [("unknown", name, 1) for name, _, _ in found if declared is not None and name not in declared]
    context = span.get_span_context()
    with _lock:
        entries = _calls.setdefault(context.trace_id, [])
        _calls.move_to_end(context.trace_id)
        entries.extend((name, key, call_id, context) for name, key, call_id in found)
        del entries[:-_MAX_CALLS]
        while len(_calls) > _MAX_TRACES:
            _calls.popitem(last=False)
        counts = _counts.setdefault(context.trace_id, {})
        _counts.move_to_end(context.trace_id)
        for name, key, _ in found:
            if len(counts) < _MAX_CALLS or (name, key) in counts:
                counts[(name, key)] = count = counts.get((name, key), 0) + 1
                if count == LOOP_THRESHOLD:
                    signals.append(("loop", name, count))
        while len(_counts) > _MAX_TRACES:
            _counts.popitem(last=False)
    return signals


def take(trace_id: int, name: str, arguments: Any) -> tuple[str | None, Any] | None:
    """(call id or None, the requesting call's span context) for a tool run, or None; taken once."""
    key = arguments_key(arguments)
    with _lock:
        entries = _calls.get(trace_id)
        if not entries:
            return None
        match = next((e for e in entries if e[0] == name and e[1] == key), None)
        if match is None:
            match = next((e for e in entries if e[0] == name), None)
        if match is None:
            return None
        entries.remove(match)
        return match[2], match[3]


# ------------------------------------------------------------------ tool results sent back to the model
_finished: OrderedDict[int, list[tuple[str, Any]]] = OrderedDict()


def finished(span: Any, name: str) -> None:
    """A tool span ended: the next model call of its trace that sends its result back links to it."""
    context = span.get_span_context()
    with _lock:
        entries = _finished.setdefault(context.trace_id, [])
        _finished.move_to_end(context.trace_id)
        entries.append((name, context))
        del entries[:-_MAX_CALLS]
        while len(_finished) > _MAX_TRACES:
            _finished.popitem(last=False)


def link_results(span: Any, contents: Any) -> None:
    """Link a model call's span to the tool spans whose results (``function_response`` parts) it sends."""
    if span is None or not isinstance(contents, (list, tuple)):
        return
    names = [
        str(_field(response, "name") or "")
        for item in contents
        for part in (_field(item, "parts") or [] if not isinstance(item, str) else [])
        if (response := _field(part, "function_response")) is not None
    ]
    if not names:
        return
    trace_id = span.get_span_context().trace_id
    links = []
    with _lock:
        entries = _finished.get(trace_id) or []
        for name in names:
            match = next((entry for entry in entries if entry[0] == name), None)
            if match is not None:
                entries.remove(match)
                links.append(match[1])
    for context in links:
        span.add_link(context)
