"""OTLP protobuf encoding of spans and log records, written straight to bytes.

The stock encoder (opentelemetry-exporter-otlp-proto-common) builds a protobuf
object for every span, attribute, value, event and log record, then serialises
the tree: measured here at ~60 µs per 12-attribute span, the largest single
cost of an instrumented request after the span's own life (benchmarks/README.md).
This module writes the same wire bytes directly: attribute keys are encoded
once per process, and a ``(key, value)`` pair that repeats (the route, the
method, the model, the database) once per cache generation; resources and
instrumentation scopes once.

The output is the stock encoder's, byte for byte: same fields, same order
(field-number order, as upb writes it), same presence rules (an empty
``status`` and ``scope`` message are written, oneof members are written even
when zero, proto3 scalars are not), same grouping by resource then scope in
first-seen order, same handling of bad values (an attribute that cannot be
encoded is skipped with the stock encoder's log line; a bad span name or log
body fails the batch). tests/test_otlp_encoding.py compares the bytes on
adversarial batches, and :func:`install` compares them on probe batches
before it swaps anything, so an SDK whose encoder differs keeps its own.

:func:`install` replaces the encoder the OTLP/HTTP span and log exporters call
(``encode_spans`` / ``encode_logs`` in their modules; their return value's
``SerializeToString()`` / ``SerializePartialToString()`` give these bytes).
The gRPC exporters hand protobuf objects to gRPC and keep the stock encoder.
"""

from __future__ import annotations

import logging
import struct
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

_logger = logging.getLogger("opentelemetry.exporter.otlp.proto.common._internal")  # the stock encoder's logger

_DOUBLE = struct.Struct("<d").pack
_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

_SMALL = [bytes((n,)) for n in range(128)]


def _varint(n: int) -> bytes:
    if n < 128:
        return _SMALL[n]
    out = bytearray()
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return tag + _varint(len(payload)) + payload


# --- AnyValue / KeyValue (opentelemetry/proto/common/v1/common.proto) ---------------------------

def _any_value(value: Any) -> bytes:
    """The content of an ``AnyValue`` message (oneof members are written even when zero)."""
    if value is None:
        return b""
    kind = type(value)
    if kind is str:
        data = value.encode("utf-8")
        return b"\x0a" + _varint(len(data)) + data
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is int:
        return b"\x18" + _int64(value)
    if kind is float:
        return b"\x21" + _DOUBLE(value)
    return _any_value_slow(value)


def _int64(value: int) -> bytes:
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError(f"Value out of range: {value}")
    return _varint(value & 0xFFFFFFFFFFFFFFFF)


def _any_value_slow(value: Any) -> bytes:
    # The stock encoder's isinstance order: subclasses of the scalar types, then sequences, then mappings.
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        data = str.encode(value, "utf-8")
        return b"\x0a" + _varint(len(data)) + data
    if isinstance(value, int):
        return b"\x18" + _int64(int(value))
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", bytes(value))
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _any_value(item)) for item in value))
    if isinstance(value, Mapping):
        return _field(b"\x32", b"".join(_field(b"\x0a", _key_value(str(k), v)) for k, v in value.items()))
    raise Exception(f"Invalid type {type(value)} of value {value}")  # the stock encoder's exception


try:
    from opentelemetry.attributes import BoundedAttributes as _BOUNDED
except ImportError:  # pragma: no cover - every supported API has it
    _BOUNDED = None  # type: ignore[assignment,misc]

_key_bytes: dict[str, bytes] = {}
_pairs: dict[tuple[str, Any, type], bytes] = {}
_PAIR_LIMIT = 8192  # repeated (key, value) pairs kept encoded; cleared when full (a new generation)
_PAIR_VALUE_MAX = 256  # longer strings are not worth keeping


def _key(key: str) -> bytes:
    encoded = _key_bytes.get(key)
    if encoded is None:
        data = key.encode("utf-8")
        encoded = b"\x0a" + _varint(len(data)) + data if data else b""
        if len(_key_bytes) < _PAIR_LIMIT:
            _key_bytes[key] = encoded
    return encoded


def _key_value(key: str, value: Any) -> bytes:
    """The content of a ``KeyValue`` message (the value message is always written, even when empty)."""
    return _key(key) + _field(b"\x12", _any_value(value))


def _attribute(key: str, value: Any) -> bytes:
    """One attribute as a complete ``KeyValue`` field (tag + length + content), cached when it repeats."""
    kind = type(value)
    if kind is bool or kind is int or (kind is str and len(value) <= _PAIR_VALUE_MAX):
        cache_key = (key, value, kind)
        encoded = _pairs.get(cache_key)
        if encoded is None:
            encoded = _field(b"", _key_value(key, value))
            if len(_pairs) >= _PAIR_LIMIT:
                _pairs.clear()
            _pairs[cache_key] = encoded
        return encoded
    return _field(b"", _key_value(key, value))


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
    """Repeated ``KeyValue`` fields under ``tag``; a value that cannot be encoded is skipped and logged."""
    if not attributes:
        return b""
    if type(attributes) is _BOUNDED:
        # The SDK's BoundedAttributes iterates its items through Python-level Mapping methods, one
        # __getitem__ call per key; its own dict iterates in C. Same items, same order.
        attributes = getattr(attributes, "_dict", attributes)
    parts = []
    assert attributes is not None
    for key, value in attributes.items():
        try:
            parts.append(tag + _attribute(key, value))
        except Exception as error:  # the stock encoder's behaviour: skip this key, log, go on
            _logger.exception("Failed to encode key %s: %s", key, error)
    return b"".join(parts)


def _string(tag: bytes, value: str | None) -> bytes:
    if not value:
        return b""
    data = value.encode("utf-8")
    return tag + _varint(len(data)) + data


def _uint(tag: bytes, value: int | None) -> bytes:
    return tag + _varint(value) if value else b""


# --- resource and scope, encoded once each ---------------------------------------------------------

_resources: dict[int, tuple[Any, bytes]] = {}
_scopes: dict[int, tuple[Any, bytes]] = {}
_cache_lock = threading.Lock()


def _once(cache: dict[int, tuple[Any, bytes]], item: Any, encode: Callable[[Any], bytes]) -> bytes:
    held = cache.get(id(item))
    if held is not None and held[0] is item:
        return held[1]
    encoded = encode(item)
    with _cache_lock:
        if len(cache) > 256:
            cache.clear()
        cache[id(item)] = (item, encoded)  # the item is held, so its id cannot be reused meanwhile
    return encoded


def _resource(resource: Any) -> bytes:
    return _field(b"\x0a", _attributes(b"\x0a", resource.attributes))


def _scope(scope: Any) -> bytes:
    if scope is None:
        return b"\x0a\x00"
    return _field(b"\x0a", _string(b"\x0a", scope.name) + _string(b"\x12", scope.version)
                  + _attributes(b"\x1a", scope.attributes))


def _grouped(items: Sequence[Any], encode_item: Callable[[Any], bytes],
             item_tag: bytes, scope_tag: bytes, resource_tag: bytes) -> bytes:
    """Group by resource then scope in first-seen order (the stock encoder's dicts) and wrap."""
    groups: dict[Any, dict[Any, list[bytes]]] = {}
    last_resource: Any = None
    by_scope: dict[Any, list[bytes]] = {}
    for item in items:
        resource = item.resource
        scope = item.instrumentation_scope or None
        encoded = encode_item(item)
        if resource is not last_resource:  # most batches have one resource: skip hashing it per item
            by_scope = groups.get(resource)  # type: ignore[assignment]
            if by_scope is None:
                by_scope = groups[resource] = {}
            last_resource = resource
        by_scope.setdefault(scope, []).append(encoded)
    out = []
    for resource, by_scope in groups.items():
        scoped = []
        for scope, encoded_items in by_scope.items():
            body = (_once(_scopes, scope, _scope)
                    + b"".join(item_tag + _varint(len(e)) + e for e in encoded_items)
                    + _string(b"\x1a", scope.schema_url if scope is not None else None))
            scoped.append(_field(scope_tag, body))
        body = _once(_resources, resource, _resource) + b"".join(scoped) + _string(b"\x1a", resource.schema_url)
        out.append(_field(resource_tag, body))
    return b"".join(out)


# --- spans (opentelemetry/proto/trace/v1/trace.proto) ------------------------------------------------

_KIND = {0: b"\x30\x01", 1: b"\x30\x02", 2: b"\x30\x03", 3: b"\x30\x04", 4: b"\x30\x05"}  # SDK SpanKind value -> field 6
_FLAGS_TAG = b"\x85\x01"  # field 16, fixed32
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200


def _span_flags(context: Any) -> bytes:
    flags = _HAS_IS_REMOTE | (_IS_REMOTE if context and context.is_remote else 0)
    return _FLAGS_TAG + _FIXED32(flags)


def _trace_state(trace_state: Any) -> bytes:
    if trace_state is None:
        return b""
    return _string(b"\x1a", ",".join([f"{key}={value}" for key, value in trace_state.items()]))


def _span_attributes(span: Any) -> Any:
    """The span's attribute mapping without the read-only proxy ``ReadableSpan.attributes`` wraps it in."""
    raw = getattr(span, "_attributes", _NOT_SET)
    if raw is _NOT_SET:
        return span.attributes
    return raw  # None or empty: no attributes, as the proxy over ``self._attributes or {}`` says


_NOT_SET = object()


def _span(span: Any) -> bytes:
    context = span.get_span_context()
    parent = span.parent
    parts = [
        b"\x0a\x10", context.trace_id.to_bytes(16, "big"),
        b"\x12\x08", context.span_id.to_bytes(8, "big"),
        _trace_state(context.trace_state),
        b"\x22\x08" + parent.span_id.to_bytes(8, "big") if parent else b"",
        _string(b"\x2a", span.name),
        _KIND[span.kind.value],
        b"\x39" + _FIXED64(span.start_time) if span.start_time else b"",
        b"\x41" + _FIXED64(span.end_time) if span.end_time else b"",
        _attributes(b"\x4a", _span_attributes(span)),
        _uint(b"\x50", span.dropped_attributes),
    ]
    for event in span.events:
        body = ((b"\x09" + _FIXED64(event.timestamp) if event.timestamp else b"") + _string(b"\x12", event.name)
                + _attributes(b"\x1a", event.attributes) + _uint(b"\x20", event.dropped_attributes))
        parts.append(_field(b"\x5a", body))
    parts.append(_uint(b"\x60", span.dropped_events))
    for link in span.links:
        body = (b"\x0a\x10" + link.context.trace_id.to_bytes(16, "big")
                + b"\x12\x08" + link.context.span_id.to_bytes(8, "big")
                + _attributes(b"\x22", link.attributes) + _uint(b"\x28", link.dropped_attributes)
                + b"\x35" + _FIXED32(_HAS_IS_REMOTE | (_IS_REMOTE if link.context.is_remote else 0)))
        parts.append(_field(b"\x6a", body))
    parts.append(_uint(b"\x70", span.dropped_links))
    status = span.status
    if status is not None:
        parts.append(_field(b"\x7a", _string(b"\x12", status.description) + _uint(b"\x18", status.status_code.value)))
    parts.append(_span_flags(parent))
    return b"".join(parts)


def encode_spans_bytes(spans: Sequence[Any]) -> bytes:
    """An ``ExportTraceServiceRequest``, serialised."""
    return _grouped(spans, _span, item_tag=b"\x12", scope_tag=b"\x12", resource_tag=b"\x0a")


# --- log records (opentelemetry/proto/logs/v1/logs.proto) ------------------------------------------

def _log(readable: Any) -> bytes:
    record = readable.log_record
    severity = getattr(record.severity_number, "value", None)
    flags = int(record.trace_flags)
    return b"".join((
        b"\x09" + _FIXED64(record.timestamp) if record.timestamp else b"",
        _uint(b"\x10", severity),
        _string(b"\x1a", record.severity_text),
        _field(b"\x2a", _any_value(record.body)),
        _attributes(b"\x32", record.attributes),
        _uint(b"\x38", readable.dropped_attributes),
        b"\x45" + _FIXED32(flags) if flags else b"",
        b"\x4a\x10" + record.trace_id.to_bytes(16, "big") if record.trace_id else b"",
        b"\x52\x08" + record.span_id.to_bytes(8, "big") if record.span_id else b"",
        b"\x59" + _FIXED64(record.observed_timestamp) if record.observed_timestamp else b"",
        _string(b"\x62", record.event_name),
    ))


def encode_logs_bytes(records: Sequence[Any]) -> bytes:
    """An ``ExportLogsServiceRequest``, serialised."""
    return _grouped(records, _log, item_tag=b"\x12", scope_tag=b"\x12", resource_tag=b"\x0a")


# --- swapping the OTLP/HTTP exporters' encoder -------------------------------------------------------

class _Encoded:
    """What the exporters call ``SerializeToString()`` / ``SerializePartialToString()`` on."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def SerializeToString(self) -> bytes:  # protobuf's name
        return self.data

    SerializePartialToString = SerializeToString


def _fast_spans(spans: Sequence[Any]) -> _Encoded:
    return _Encoded(encode_spans_bytes(spans))


def _fast_logs(records: Sequence[Any]) -> _Encoded:
    return _Encoded(encode_logs_bytes(records))


_TARGETS = (
    ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "encode_spans", _fast_spans),
    ("opentelemetry.exporter.otlp.proto.http._log_exporter", "encode_logs", _fast_logs),
)
_swapped: dict[str, tuple[str, Any]] = {}  # module -> (name, the stock encoder)
_install_lock = threading.Lock()


def _probe_batches() -> tuple[list[Any], list[Any]]:
    """A few spans and log records from a real SDK, covering what the encoders must agree on."""
    from agentwatch.distro import _encoding_probes

    return _encoding_probes.spans(), _encoding_probes.logs()


def agrees_with_stock(spans: Sequence[Any], logs: Sequence[Any]) -> bool:
    """Whether these bytes are the stock encoders' bytes for these batches."""
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    return (encode_spans_bytes(spans) == encode_spans(spans).SerializePartialToString()
            and encode_logs_bytes(logs) == encode_logs(logs).SerializeToString())


def install() -> bool:
    """Swap the OTLP/HTTP exporters' encoders for this module's (idempotent); False if they differ here."""
    import importlib

    with _install_lock:
        if _swapped:
            return True
        if not agrees_with_stock(*_probe_batches()):
            from agentwatch.distro._diagnostics import info

            info("direct OTLP encoding not used: it differs from this opentelemetry-exporter-otlp's encoder")
            return False
        for module_name, name, fast in _TARGETS:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue  # that exporter is not installed
            if not callable(getattr(module, name, None)):
                continue
            _swapped[module_name] = (name, getattr(module, name))
            setattr(module, name, fast)
        return True


def uninstall() -> None:
    """Give the exporters their stock encoders back."""
    import importlib

    with _install_lock:
        for module_name, (name, original) in _swapped.items():
            setattr(importlib.import_module(module_name), name, original)
        _swapped.clear()


def installed() -> bool:
    return bool(_swapped)
