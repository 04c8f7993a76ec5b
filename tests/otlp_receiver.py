"""A local OTLP receiver for end-to-end tests (a test helper, not a test file).

``OTLPReceiver`` listens on 127.0.0.1 and accepts OTLP exports of traces,
metrics and logs over either protocol:

- ``protocol="grpc"``: a real grpcio server implementing
  ``TraceService``/``MetricsService``/``LogsService`` ``Export``;
- ``protocol="http"``: OTLP/HTTP protobuf, ``POST /v1/traces``,
  ``/v1/metrics``, ``/v1/logs`` (``Content-Encoding: gzip`` or ``deflate``
  accepted) on a ``ThreadingHTTPServer``.

It stores the decoded requests (thread-safe) and turns them into plain dicts::

    with OTLPReceiver(protocol="grpc") as rx:           # or "http"; port=None -> free port
        env = rx.env()          # {"OTEL_EXPORTER_OTLP_ENDPOINT": rx.endpoint,
                                #  "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc" | "http/protobuf"}
        ...                     # run the app / exporters against rx.endpoint
        assert rx.wait_for(lambda r: any(s["name"] == "GET /" for s in r.spans()))
        rx.spans()   rx.metrics()   rx.logs()   rx.requests   rx.request_headers()

Shapes returned (ids are lowercase hex strings, ``None`` when absent; times
are unix nanoseconds; attribute values are decoded ``AnyValue``\\ s: str, int,
float, bool, bytes, list, dict)::

    span   = {name, kind ("INTERNAL"|"SERVER"|"CLIENT"|"PRODUCER"|"CONSUMER"|
              "UNSPECIFIED"), kind_code (proto int), trace_id, span_id,
              parent_span_id, trace_state, flags, attributes, events
              [{name, time_unix_nano, attributes}], links [{trace_id, span_id,
              attributes}], status ("UNSET"|"OK"|"ERROR"), status_code (int),
              status_message, start_time_unix_nano, end_time_unix_nano,
              resource, scope, scope_version}
    metric = {name, description, unit, type ("sum"|"gauge"|"histogram"|
              "exponential_histogram"|"summary"), temporality ("CUMULATIVE"|
              "DELTA"|None), monotonic (sums only, else None), resource, scope,
              scope_version, data_points [...]}
        data point: {attributes, start_time_unix_nano, time_unix_nano}
          + sum/gauge: value
          + histogram: count, sum, min, max, bucket_counts, explicit_bounds
          + exponential_histogram: count, sum, min, max, scale, zero_count,
            positive_offset, positive_bucket_counts, negative_offset,
            negative_bucket_counts
          + summary: count, sum, quantiles [(quantile, value)]
    log    = {body, severity_text, severity_number, event_name, trace_id,
              span_id, flags, attributes, time_unix_nano,
              observed_time_unix_nano, resource, scope, scope_version}

Each export request contributes its own entries, in arrival order; a metric
exported periodically therefore appears once per export (``rx.metrics(name)[-1]``
is the latest).

Fault simulation:

- ``rx.set_mode("unavailable")``: gRPC ``UNAVAILABLE`` / HTTP 503;
- ``rx.set_mode("throttled", retry_after=1.0)``: gRPC ``RESOURCE_EXHAUSTED`` / HTTP 429, telling the
  client when to retry (HTTP ``Retry-After: 1``; gRPC a ``google.rpc.RetryInfo`` in the
  ``google.rpc.retryinfo-bin`` trailer, which the OTLP gRPC exporter reads); ``retry_after=None``
  sends neither, leaving the client to its own back-off;
- ``rx.set_mode("blackhole")``: the request is read, then never answered
  until the receiver stops (the connection is then dropped);
- ``rx.set_mode("ok")``: back to normal;
- ``rx.stop(); rx.start()``: the collector goes down (connections are cut,
  the port refuses) and comes back on the same port; stored data is kept
  (``rx.clear()`` drops it).

``rx.requests`` counts every export request that reached the receiver, per
signal, whatever the mode; ``rx.attempts(signal)`` lists each one's arrival
time and payload digest (a retried batch repeats its digest, so back-off can be
measured); data is stored only for requests answered with success (mode ``"ok"``).
"""

from __future__ import annotations

import gzip
import hashlib
import math
import socket
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from typing import Any, Callable

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import DecodeError
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

__all__ = ["OTLPReceiver", "decode_any_value", "decode_attributes"]

SIGNALS = ("traces", "metrics", "logs")
MODES = ("ok", "unavailable", "throttled", "blackhole")
# opentelemetry-exporter-otlp-proto-http retries an HTTP 429 (after its Retry-After) from 1.45 on; 1.44, the
# lowest resolution, drops the batch at once (only 408 and 5xx are retried there).
HTTP_EXPORTER_RETRIES_429 = tuple(int(p) for p in version("opentelemetry-exporter-otlp-proto-http").split(".")[:2]) >= (1, 45)

_HTTP_PATHS = {
    "/v1/traces": (
        "traces",
        trace_service_pb2.ExportTraceServiceRequest,
        trace_service_pb2.ExportTraceServiceResponse,
    ),
    "/v1/metrics": (
        "metrics",
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
    ),
    "/v1/logs": (
        "logs",
        logs_service_pb2.ExportLogsServiceRequest,
        logs_service_pb2.ExportLogsServiceResponse,
    ),
}
_MAX_MESSAGE = 64 * 1024 * 1024  # the exporters' default max_request_size


# --------------------------------------------------------------------------- decoding


def decode_any_value(value) -> Any:
    """An OTLP ``AnyValue`` as a Python value (``None`` when unset)."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [decode_any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return decode_attributes(value.kvlist_value.values)
    return getattr(value, which)  # string/bool/int/double/bytes


def decode_attributes(key_values) -> dict[str, Any]:
    """Repeated ``KeyValue`` as a dict."""
    return {kv.key: decode_any_value(kv.value) for kv in key_values}


def _hex(raw: bytes) -> str | None:
    return raw.hex() if raw else None


_SPAN_KIND_NAMES = {
    value: name.replace("SPAN_KIND_", "") for name, value in trace_pb2.Span.SpanKind.items()
}
_STATUS_NAMES = {
    value: name.replace("STATUS_CODE_", "") for name, value in trace_pb2.Status.StatusCode.items()
}
_TEMPORALITY = {1: "DELTA", 2: "CUMULATIVE"}


def _decode_span(span, common: dict) -> dict:
    return {
        "name": span.name,
        "kind": _SPAN_KIND_NAMES.get(span.kind, str(span.kind)),
        "kind_code": span.kind,
        "trace_id": _hex(span.trace_id),
        "span_id": _hex(span.span_id),
        "parent_span_id": _hex(span.parent_span_id),
        "trace_state": span.trace_state,
        "flags": span.flags,
        "attributes": decode_attributes(span.attributes),
        "events": [
            {
                "name": e.name,
                "time_unix_nano": e.time_unix_nano,
                "attributes": decode_attributes(e.attributes),
            }
            for e in span.events
        ],
        "links": [
            {
                "trace_id": _hex(link.trace_id),
                "span_id": _hex(link.span_id),
                "attributes": decode_attributes(link.attributes),
            }
            for link in span.links
        ],
        "status": _STATUS_NAMES.get(span.status.code, str(span.status.code)),
        "status_code": span.status.code,
        "status_message": span.status.message,
        "start_time_unix_nano": span.start_time_unix_nano,
        "end_time_unix_nano": span.end_time_unix_nano,
        **common,
    }


def _point_common(point) -> dict:
    return {
        "attributes": decode_attributes(point.attributes),
        "start_time_unix_nano": point.start_time_unix_nano,
        "time_unix_nano": point.time_unix_nano,
    }


def _optional(point, field: str):
    return getattr(point, field) if point.HasField(field) else None


def _decode_metric(metric, common: dict) -> dict:
    kind = metric.WhichOneof("data")
    data = getattr(metric, kind) if kind else None
    points = []
    for point in getattr(data, "data_points", ()):
        decoded = _point_common(point)
        if kind in ("sum", "gauge"):
            which = point.WhichOneof("value")
            decoded["value"] = getattr(point, which) if which else None
        elif kind == "histogram":
            decoded.update(
                count=point.count,
                sum=_optional(point, "sum"),
                min=_optional(point, "min"),
                max=_optional(point, "max"),
                bucket_counts=list(point.bucket_counts),
                explicit_bounds=list(point.explicit_bounds),
            )
        elif kind == "exponential_histogram":
            decoded.update(
                count=point.count,
                sum=_optional(point, "sum"),
                min=_optional(point, "min"),
                max=_optional(point, "max"),
                scale=point.scale,
                zero_count=point.zero_count,
                positive_offset=point.positive.offset,
                positive_bucket_counts=list(point.positive.bucket_counts),
                negative_offset=point.negative.offset,
                negative_bucket_counts=list(point.negative.bucket_counts),
            )
        elif kind == "summary":
            decoded.update(
                count=point.count,
                sum=point.sum,
                quantiles=[(q.quantile, q.value) for q in point.quantile_values],
            )
        points.append(decoded)
    temporality = getattr(data, "aggregation_temporality", None)
    return {
        "name": metric.name,
        "description": metric.description,
        "unit": metric.unit,
        "type": kind,
        "temporality": _TEMPORALITY.get(temporality) if temporality is not None else None,
        "monotonic": data.is_monotonic if kind == "sum" else None,
        "data_points": points,
        **common,
    }


def _decode_log(record, common: dict) -> dict:
    return {
        "body": decode_any_value(record.body),
        "severity_text": record.severity_text,
        "severity_number": record.severity_number,
        "event_name": record.event_name,
        "trace_id": _hex(record.trace_id),
        "span_id": _hex(record.span_id),
        "flags": record.flags,
        "attributes": decode_attributes(record.attributes),
        "time_unix_nano": record.time_unix_nano,
        "observed_time_unix_nano": record.observed_time_unix_nano,
        **common,
    }


def _common(resource_entry, scope_entry) -> dict:
    return {
        "resource": decode_attributes(resource_entry.resource.attributes),
        "scope": scope_entry.scope.name,
        "scope_version": scope_entry.scope.version,
    }


# --------------------------------------------------------------------------- gRPC


class _TraceServicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OTLPReceiver):
        self._rx = receiver

    def Export(self, request, context):  # noqa: N802 - grpc naming
        return self._rx._grpc_export("traces", request, context, trace_service_pb2.ExportTraceServiceResponse)


class _MetricsServicer(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receiver: OTLPReceiver):
        self._rx = receiver

    def Export(self, request, context):  # noqa: N802
        return self._rx._grpc_export(
            "metrics", request, context, metrics_service_pb2.ExportMetricsServiceResponse
        )


class _LogsServicer(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, receiver: OTLPReceiver):
        self._rx = receiver

    def Export(self, request, context):  # noqa: N802
        return self._rx._grpc_export("logs", request, context, logs_service_pb2.ExportLogsServiceResponse)


# --------------------------------------------------------------------------- HTTP


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, receiver: OTLPReceiver):
        self.receiver = receiver
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _HTTPHandler)

    def cut_connections(self) -> None:
        """Drop kept-alive client connections, as a dying collector would."""
        with self.connections_lock:
            conns = list(self.open_connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _HTTPHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections do not pin a thread forever
    server: _HTTPServer

    def setup(self):
        super().setup()
        with self.server.connections_lock:
            self.server.open_connections.add(self.connection)

    def finish(self):
        with self.server.connections_lock:
            self.server.open_connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format, *args):  # noqa: A002 - keep test output quiet
        pass

    def _reply(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "text/plain",
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self):  # noqa: N802
        route = _HTTP_PATHS.get(self.path.split("?", 1)[0])
        body = self._read_body()
        if route is None:
            self._reply(404, b"unknown OTLP path")
            return
        signal, request_cls, response_cls = route
        rx = self.server.receiver
        stopping = rx._stopping
        mode, retry_after = rx._count(signal, {k.lower(): v for k, v in self.headers.items()}, body)
        if mode == "blackhole":
            stopping.wait()
            self.close_connection = True  # drop it without an answer
            return
        if mode == "unavailable":
            self._reply(503, b"receiver unavailable")
            return
        if mode == "throttled":
            # Retry-After takes whole seconds (RFC 9110); a fraction is kept for short tests (the OTel
            # exporter parses it as a float).
            extra = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
            self._reply(429, b"receiver throttled", extra_headers=extra)
            return
        content_type = self.headers.get("Content-Type", "application/x-protobuf").split(";")[0].strip()
        if content_type != "application/x-protobuf":
            self._reply(415, b"only application/x-protobuf is supported")
            return
        encoding = self.headers.get("Content-Encoding", "").strip().lower()
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            elif encoding not in ("", "identity"):
                self._reply(415, f"unsupported Content-Encoding {encoding}".encode())
                return
            request = request_cls.FromString(body)
        except (OSError, zlib.error, EOFError, DecodeError) as exc:
            self._reply(400, f"bad payload: {exc}".encode())
            return
        rx._store(signal, request)
        self._reply(200, response_cls().SerializeToString(), "application/x-protobuf")


# --------------------------------------------------------------------------- receiver


class OTLPReceiver:
    """Local OTLP/gRPC or OTLP/HTTP receiver; see the module docstring."""

    def __init__(self, protocol: str = "grpc", port: int | None = None, host: str = "127.0.0.1"):
        if protocol not in ("grpc", "http"):
            raise ValueError(f"protocol must be 'grpc' or 'http', not {protocol!r}")
        self.protocol = protocol
        self.host = host
        self._port = port or None
        self._lock = threading.Lock()
        self._data: dict[str, list] = {s: [] for s in SIGNALS}
        self._counts: dict[str, int] = {s: 0 for s in SIGNALS}
        self._headers: list[tuple[str, dict[str, str]]] = []
        self._attempts: list[tuple[str, float, str]] = []  # (signal, monotonic arrival, payload digest)
        self._mode = "ok"
        self._retry_after: float | None = 1.0
        self._stopping = threading.Event()
        self._grpc_server: grpc.Server | None = None
        self._grpc_pool: ThreadPoolExecutor | None = None
        self._http_server: _HTTPServer | None = None
        self._http_thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> OTLPReceiver:
        """Start listening (on the same port as before after a ``stop()``)."""
        if self.running:
            return self
        self._stopping = threading.Event()
        if self.protocol == "grpc":
            self._start_grpc()
        else:
            self._start_http()
        return self

    def _start_grpc(self) -> None:
        self._grpc_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="otlp-rx-grpc")
        server = grpc.server(
            self._grpc_pool,
            options=[
                ("grpc.so_reuseport", 0),  # a second receiver must not share the port
                ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ],
        )
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceServicer(self), server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_MetricsServicer(self), server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_LogsServicer(self), server)
        try:
            port = server.add_insecure_port(f"{self.host}:{self._port or 0}")
        except RuntimeError as exc:  # grpcio raises on bind failure
            raise OSError(f"cannot listen on {self.host}:{self._port}: {exc}") from exc
        if not port:
            raise OSError(f"cannot listen on {self.host}:{self._port}")
        self._port = port
        server.start()
        self._grpc_server = server

    def _start_http(self) -> None:
        server = _HTTPServer((self.host, self._port or 0), self)
        self._port = server.server_address[1]
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="otlp-rx-http", daemon=True
        )
        thread.start()
        self._http_server, self._http_thread = server, thread

    def stop(self) -> None:
        """Stop listening and cut open connections; stored data is kept."""
        self._stopping.set()  # releases blackholed requests
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=None).wait(5)
            self._grpc_pool.shutdown(wait=False)
            self._grpc_server = self._grpc_pool = None
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.cut_connections()
            self._http_server.server_close()
            self._http_thread.join(5)
            self._http_server = self._http_thread = None

    @property
    def running(self) -> bool:
        return self._grpc_server is not None or self._http_server is not None

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------

    @property
    def port(self) -> int | None:
        return self._port

    @property
    def endpoint(self) -> str:
        """Base URL, as ``OTEL_EXPORTER_OTLP_ENDPOINT`` wants it (both protocols)."""
        return f"http://{self.host}:{self._port}"

    def endpoint_for(self, signal: str) -> str:
        """What an exporter's ``endpoint=`` argument wants for ``signal``.

        gRPC exporters take the base URL; OTLP/HTTP exporters take the full
        per-signal URL (``.../v1/traces``).
        """
        if signal not in SIGNALS:
            raise ValueError(f"signal must be one of {SIGNALS}")
        return self.endpoint if self.protocol == "grpc" else f"{self.endpoint}/v1/{signal}"

    def env(self) -> dict[str, str]:
        """Environment variables pointing an OTel SDK at this receiver."""
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc" if self.protocol == "grpc" else "http/protobuf",
        }

    # -- behaviour ---------------------------------------------------------

    def set_mode(self, mode: str, retry_after: float | None = 1.0) -> None:
        """``"ok"``, ``"unavailable"`` (gRPC UNAVAILABLE / HTTP 503), ``"throttled"`` (gRPC
        RESOURCE_EXHAUSTED / HTTP 429, with ``retry_after`` seconds as the retry hint, ``None`` for
        none) or ``"blackhole"`` (never answer until stopped)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if retry_after is not None and not (math.isfinite(retry_after) and retry_after >= 0):
            raise ValueError(f"retry_after must be a non-negative number of seconds or None, not {retry_after!r}")
        with self._lock:
            self._mode = mode
            self._retry_after = retry_after

    @property
    def mode(self) -> str:
        return self._mode

    def _count(self, signal: str, headers: dict[str, str], payload: bytes) -> tuple[str, float | None]:
        digest = hashlib.blake2b(payload, digest_size=8).hexdigest()
        with self._lock:
            self._counts[signal] += 1
            self._headers.append((signal, headers))
            self._attempts.append((signal, time.monotonic(), digest))
            return self._mode, self._retry_after

    def _store(self, signal: str, request) -> None:
        with self._lock:
            self._data[signal].append(request)

    def _grpc_export(self, signal: str, request, context, response_cls):
        stopping = self._stopping
        mode, retry_after = self._count(
            signal, {k: v for k, v in context.invocation_metadata()}, request.SerializeToString()
        )
        if mode == "blackhole":
            while not stopping.wait(0.05):
                if not context.is_active():  # client gave up: free the worker
                    break
            context.abort(grpc.StatusCode.UNAVAILABLE, "receiver stopped")
        if mode == "unavailable":
            context.abort(grpc.StatusCode.UNAVAILABLE, "receiver unavailable")
        if mode == "throttled":
            if retry_after is not None:
                # How a gRPC server says when to retry (the OTLP spec's throttling): a RetryInfo trailer.
                seconds, nanos = divmod(round(retry_after * 1e9), 10**9)
                delay = Duration(seconds=seconds, nanos=nanos)
                info = RetryInfo(retry_delay=delay).SerializeToString()
                context.set_trailing_metadata((("google.rpc.retryinfo-bin", info),))
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "receiver throttled")
        self._store(signal, request)
        return response_cls()

    # -- what was received -------------------------------------------------

    @property
    def requests(self) -> dict[str, int]:
        """Export requests received per signal (any mode), e.g. ``{"traces": 2, ...}``."""
        with self._lock:
            return dict(self._counts)

    def attempts(self, signal: str | None = None) -> list[tuple[float, str]]:
        """``(monotonic arrival time, payload digest)`` of each export request of ``signal`` (any mode)."""
        with self._lock:
            return [(at, digest) for s, at, digest in self._attempts if signal in (None, s)]

    def request_headers(self, signal: str | None = None) -> list[dict[str, str]]:
        """Headers (HTTP) or metadata (gRPC) of each request, keys lowercased."""
        with self._lock:
            return [dict(h) for s, h in self._headers if signal in (None, s)]

    def raw(self, signal: str) -> list:
        """The stored ``Export*ServiceRequest`` protos of a signal."""
        with self._lock:
            return list(self._data[signal])

    def clear(self) -> None:
        """Forget everything received (counts and headers too)."""
        with self._lock:
            for signal in SIGNALS:
                self._data[signal].clear()
                self._counts[signal] = 0
            self._headers.clear()
            self._attempts.clear()

    def spans(self, name: str | None = None) -> list[dict]:
        out = []
        for request in self.raw("traces"):
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    common = _common(rs, ss)
                    out.extend(_decode_span(s, common) for s in ss.spans if name in (None, s.name))
        return out

    def metrics(self, name: str | None = None) -> list[dict]:
        out = []
        for request in self.raw("metrics"):
            for rm in request.resource_metrics:
                for sm in rm.scope_metrics:
                    common = _common(rm, sm)
                    out.extend(_decode_metric(m, common) for m in sm.metrics if name in (None, m.name))
        return out

    def logs(self) -> list[dict]:
        out = []
        for request in self.raw("logs"):
            for rl in request.resource_logs:
                for sl in rl.scope_logs:
                    common = _common(rl, sl)
                    out.extend(_decode_log(r, common) for r in sl.log_records)
        return out

    def wait_for(
        self, predicate: Callable[[OTLPReceiver], Any], timeout: float = 10.0, interval: float = 0.02
    ) -> bool:
        """Poll ``predicate(self)`` until truthy; ``False`` after ``timeout`` s.

        An exception raised by the predicate counts as "not yet".
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                if predicate(self):
                    return True
            except Exception:  # noqa: BLE001 - e.g. IndexError before data arrives
                pass
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)
