"""A tiny OTLP/HTTP receiver for benchmarks: accepts ``POST /v1/{traces,metrics,logs}``
(protobuf or JSON, optionally gzip) and answers 200 with an empty protobuf body, as a
collector does. ``GET /stats`` returns what it received so far, as JSON:

    {"traces": {"requests": n, "bytes": n, "items": spans, "errors": n},
     "metrics": {... "items": data points}, "logs": {... "items": log records},
     "distros": {"<telemetry.distro.name of trace batches>": batches},
     "sdks": {"<telemetry.sdk.name of trace batches>": batches}}

Items are counted by decoding protobuf payloads with opentelemetry-proto (``--no-decode``
skips that to keep the sink as cheap as possible).

    python benchmarks/otlp_sink.py --port 4318 [--no-decode]
"""

from __future__ import annotations

import argparse
import gzip
import json
import signal
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SIGNALS = ("traces", "metrics", "logs")


def _count_items(signal_name: str, payload: bytes, distros: list | None = None, sdks: list | None = None) -> int:
    if signal_name == "traces":
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        message = ExportTraceServiceRequest.FromString(payload)
        for rs in message.resource_spans:
            for attr in rs.resource.attributes:
                if attr.key == "telemetry.distro.name" and distros is not None:
                    distros.append(attr.value.string_value)
                elif attr.key == "telemetry.sdk.name" and sdks is not None:  # OpenLIT sets "openlit"
                    sdks.append(attr.value.string_value)
        return sum(len(ss.spans) for rs in message.resource_spans for ss in rs.scope_spans)
    if signal_name == "logs":
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

        message = ExportLogsServiceRequest.FromString(payload)
        return sum(len(sl.log_records) for rl in message.resource_logs for sl in rl.scope_logs)
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    message = ExportMetricsServiceRequest.FromString(payload)
    points = 0
    for rm in message.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if kind:
                    points += len(getattr(metric, kind).data_points)
    return points


class SinkServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, *, decode: bool = True):
        super().__init__(address, _Handler)
        self.decode = decode
        self.lock = threading.Lock()
        self.stats = {name: {"requests": 0, "bytes": 0, "items": 0, "errors": 0} for name in SIGNALS}
        # resource ``telemetry.distro.name`` of received trace batches -> batch count
        self.stats["distros"] = {}
        # resource ``telemetry.sdk.name`` of received trace batches -> batch count
        self.stats["sdks"] = {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 120
    server: SinkServer

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass

    def _reply(self, status: int, body: bytes = b"", content_type: str = "application/x-protobuf") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        if self.path.rstrip("/") == "/stats":
            with self.server.lock:
                body = json.dumps(self.server.stats).encode()
            self._reply(200, body, "application/json")
        else:
            self._reply(404)

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length > 0 else b""
        signal_name = self.path.rstrip("/").rsplit("/", 1)[-1]
        if signal_name not in SIGNALS:
            self._reply(404)
            return
        items, error, distros, sdks = 0, 0, [], []
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        is_json = "json" in (self.headers.get("Content-Type") or "")
        if self.server.decode and not is_json:
            try:
                if encoding == "gzip":
                    payload = gzip.decompress(payload)
                elif encoding == "deflate":
                    payload = zlib.decompress(payload)
                items = _count_items(signal_name, payload, distros, sdks)
            except Exception:  # noqa: BLE001 - a benchmark sink counts bad payloads, never dies
                error = 1
        with self.server.lock:
            entry = self.server.stats[signal_name]
            entry["requests"] += 1
            entry["bytes"] += length
            entry["items"] += items
            entry["errors"] += error
            for name in distros:
                self.server.stats["distros"][name] = self.server.stats["distros"].get(name, 0) + 1
            for name in sdks:
                self.server.stats["sdks"][name] = self.server.stats["sdks"].get(name, 0) + 1
        if is_json:
            self._reply(200, b"{}", "application/json")
        else:
            self._reply(200)  # empty Export*ServiceResponse


def start_sink(port: int = 0, *, host: str = "127.0.0.1", decode: bool = True) -> tuple[SinkServer, str]:
    """Start the sink in a daemon thread; return ``(server, base_url)``."""
    server = SinkServer((host, port), decode=decode)
    threading.Thread(target=server.serve_forever, name="otlp-sink", daemon=True).start()
    return server, f"http://{host}:{server.server_address[1]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Minimal OTLP/HTTP sink for benchmarks")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4318)
    parser.add_argument("--no-decode", action="store_true", help="do not decode payloads (no item counts)")
    args = parser.parse_args(argv)
    server = SinkServer((args.host, args.port), decode=not args.no_decode)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    print(f"otlp sink listening on http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
