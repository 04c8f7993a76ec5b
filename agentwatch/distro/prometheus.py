"""The ``prometheus`` metrics exporter: one scrape endpoint per host:port, every worker in it.

Under ``uvicorn --workers N``, ``--reload`` or gunicorn, several interpreters each build an
OpenTelemetry pipeline with a Prometheus reader for the same ``host:port``. The stock reader
makes every process after the first fail with ``Address already in use``. This one never raises:

* The first process to bind ``host:port`` is the **server**. Every later process (EADDRINUSE)
  is a **peer**. A peer serves its own exposition on 127.0.0.1:<ephemeral> and writes that
  port to ``<tmpdir>/agentwatch-prometheus-<uid>-<port>/<pid>``. It removes the file at
  shutdown or exit, and the last process out removes the directory. A process killed by a
  signal (uvicorn and gunicorn workers usually end that way) leaves its file. The server deletes
  it at the next scrape (dead pid or refused connection).
* What a scrape sees: a scrape of the server (any path, e.g. ``GET /metrics``) returns text
  format 0.0.4 with the server's metrics and those of every live peer. Peers are fetched in
  parallel, ``PEER_TIMEOUT_S`` each. A slow, dead or broken peer is left out and never fails
  the scrape. Each family appears once (one HELP/TYPE, the first process's HELP).
  **Every sample of every process, the server included, carries** ``worker_pid="<pid>"``,
  even when only one process contributes. A series keeps the same labels as workers come and
  go, so ``rate()`` never sees its label set change. Aggregate with
  ``sum without (worker_pid) (...)``. ``target_info`` appears once per process.
  Under ``uvicorn --workers 2`` that is the supervisor (server), the two workers and
  multiprocessing's resource tracker. Only the workers carry request metrics. A second reader
  in the same process on the same port is labelled ``<pid>-<n>``.
* Fork (gunicorn forks its workers from the master): a forked child closes its copy of the
  inherited listening socket (the parent keeps serving) and picks its role again, so it becomes
  a peer. Like the SDK's periodic reader, the child keeps and reports the cumulative values it
  inherited. A gunicorn master serves no requests, so these are ~0 there.
* If the server exits, nobody takes over, and peers run on unscraped without crashing. Any
  other binding error (bad host, permission) gives one warning, and the reader still collects
  but serves nothing. If the port is held by a program that is not agentwatch, peers warn once.
* PII: each collection is scrubbed (``scrub/``) in ``_receive_metrics``, before the
  exposition text is built from it, so label values and ``target_info`` never carry secrets.
* Caveat: two different services run by one user with the same port share one endpoint.
  ``target_info``'s ``service_name`` tells them apart. Give each its own
  ``OTEL_EXPORTER_PROMETHEUS_PORT``.
"""

from __future__ import annotations

import atexit
import errno
import http.client
import itertools
import os
import socket
import socketserver
import stat
import tempfile
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor, wait
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics.export import MetricReader
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from agentwatch.distro._diagnostics import warn_once

WORKER_LABEL = "worker_pid"
PEER_TIMEOUT_S = 0.5
_SERVER_FILE = "server"

_readers: weakref.WeakSet[AgentwatchPrometheusReader] = weakref.WeakSet()
_slots = itertools.count()


_DEFAULT = object()


def create_prometheus_reader(host: str, port: int, scrubber: object = _DEFAULT) -> MetricReader:
    """The reader behind ``OTEL_METRICS_EXPORTER=prometheus`` (never raises on bind errors).

    ``scrubber``: the :class:`~agentwatch.distro.scrub.Scrubber` applied to every collection;
    by default the one the environment configures (``None`` turns scrubbing off).
    """
    if scrubber is _DEFAULT:
        from agentwatch.distro.scrub import default_scrubber

        scrubber = default_scrubber()
    return AgentwatchPrometheusReader(host, port, scrubber=scrubber)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, reader: AgentwatchPrometheusReader) -> None:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        self.address_family = family
        self.reader = reader
        super().__init__(address[:2], _Handler)  # pyright: ignore[reportArgumentType] - an AF_INET/AF_INET6 address
        self.thread = threading.Thread(target=self.serve_forever, name="agentwatch-prometheus", daemon=True)
        self.thread.start()

    def server_bind(self) -> None:  # skip HTTPServer's getfqdn(), a reverse DNS lookup
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a scraper that hung up (timeout) is not worth a traceback in the app's log


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        try:
            body, status = self.server.reader._exposition(), 200
        except Exception as exc:  # noqa: BLE001 - a scrape answers, whatever happened
            body, status = f"agentwatch: scrape failed: {exc!r}\n".encode(), 500
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE_PLAIN_0_0_4)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _fetch(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PEER_TIMEOUT_S)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        if response.status != 200:
            raise OSError(f"peer answered {response.status}")
        return response.read().decode("utf-8")
    finally:
        conn.close()


def _merge(parts: list[tuple[str, str]]) -> bytes:
    """Merge expositions ``(worker label, text)`` family by family, labelling every sample."""
    families: dict[str, Metric] = {}
    for worker, text in parts:
        try:
            parsed = list(text_string_to_metric_families(text))
        except Exception:  # noqa: BLE001 - a broken peer is left out
            warn_once(f"prometheus-parse-{worker}", f"unreadable metrics from worker {worker}, skipped")
            continue
        for family in parsed:
            merged = families.setdefault(family.name, Metric(family.name, family.documentation, family.type))
            if merged.type != family.type:
                warn_once(f"prometheus-type-{family.name}", f"metric {family.name} has types "
                          f"{merged.type} and {family.type} in different workers; kept {merged.type}")
                continue
            merged.samples.extend(s._replace(labels={**s.labels, WORKER_LABEL: worker}) for s in family.samples)
    return generate_latest(SimpleNamespace(collect=lambda: list(families.values())))  # type: ignore[arg-type]


class AgentwatchPrometheusReader(PrometheusMetricReader):
    """A ``PrometheusMetricReader`` with a private registry that acts as server, peer or neither."""

    def __init__(self, host: str, port: int, scrubber: object = None) -> None:
        super().__init__(registry=CollectorRegistry(auto_describe=False))
        self.host, self.port = host, port
        self.scrubber = scrubber
        self.role = "none"  # "server", "peer" or "none"
        self.worker = ""
        self._dir = Path(tempfile.gettempdir()) / f"agentwatch-prometheus-{os.getuid()}-{port}"
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._entry: Path | None = None
        self._owner = 0
        self._closed = False
        _readers.add(self)
        self._start()

    @property
    def endpoint(self) -> tuple[str, int] | None:
        """Where this process serves: ``host:port`` (server), 127.0.0.1:ephemeral (peer) or None."""
        return None if self._httpd is None else self._httpd.server_address[:2]  # pyright: ignore[reportReturnType] - AF_INET/AF_INET6: (host, port)

    def _start(self) -> None:
        self._owner = os.getpid()
        slot = next(_slots)
        self.worker = str(self._owner) if slot == 0 else f"{self._owner}-{slot}"
        try:
            self._httpd = _Server(self.host, self.port, self)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                self._start_peer()
            else:
                warn_once(f"prometheus-bind-{self.host}:{self.port}", f"cannot serve Prometheus "
                          f"metrics on {self.host}:{self.port} ({exc}); metrics are collected but not served")
            return
        self.role = "server"
        try:
            self._write(_SERVER_FILE, str(self._owner))
        except OSError:
            pass  # only used for the "port held by another program" hint

    def _start_peer(self) -> None:
        try:
            self._httpd = _Server("127.0.0.1", 0, self)
            self._entry = self._write(self.worker, str(self._httpd.server_address[1]))
        except OSError as exc:
            warn_once(f"prometheus-peer-{self.port}", f"this worker's metrics cannot join the "
                      f"Prometheus endpoint on port {self.port} ({exc}); they are collected but not served")
            self._close(forked=False)
            return
        self.role = "peer"
        timer = threading.Timer(1.0, self._check_server)
        timer.daemon = True
        timer.start()

    def _write(self, name: str, content: str, attempts: int = 3) -> Path:
        path, tmp = self._dir / name, self._dir / f".{name}.{os.getpid()}.tmp"
        try:
            self._dir.mkdir(mode=0o700, exist_ok=True)
            st = self._dir.lstat()
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
                raise PermissionError(f"{self._dir} is not a directory owned by this user")
            tmp.write_text(content)
            os.replace(tmp, path)
        except FileNotFoundError:  # the last process to leave removed the directory meanwhile
            if attempts <= 1:
                raise
            return self._write(name, content, attempts - 1)
        return path

    def _check_server(self) -> None:
        try:
            pid = int((self._dir / _SERVER_FILE).read_text())
        except (OSError, ValueError):
            pid = 0
        if self.role == "peer" and not _alive(pid):
            warn_once(f"prometheus-foreign-{self.port}", f"{self.host}:{self.port} is held by a "
                      f"program that is not an agentwatch endpoint; worker metrics are not served there")

    def _receive_metrics(self, metrics_data: object, timeout_millis: float = 10_000, **kwargs: object) -> None:
        """Every collection passes the scrubber before the exposition text is built from it."""
        if self.scrubber is not None:
            metrics_data = self.scrubber.scrub_metrics_safely(metrics_data)  # type: ignore[attr-defined]
            if metrics_data is None:  # could not be scrubbed: not served rather than leaked
                return
        super()._receive_metrics(metrics_data, timeout_millis, **kwargs)  # pyright: ignore[reportArgumentType]

    def _exposition(self) -> bytes:
        with self._lock:  # the collector hands each collection to one scrape
            own = generate_latest(self._registry)
        if self.role != "server":
            return own
        return _merge([(self.worker, own.decode("utf-8")), *self._fetch_peers()])

    def _fetch_peers(self) -> list[tuple[str, str]]:
        peers: dict[str, tuple[int, Path]] = {}
        try:
            paths = list(self._dir.iterdir())
        except OSError:
            return []
        for path in paths:
            if path.name == _SERVER_FILE or path.name.startswith(".") or path.name == self.worker:
                continue
            try:
                pid, port = int(path.name.split("-")[0]), int(path.read_text())
            except (OSError, ValueError):
                continue
            if _alive(pid):
                peers[path.name] = (port, path)
            else:
                path.unlink(missing_ok=True)
        if not peers:
            return []
        pool = ThreadPoolExecutor(max_workers=min(16, len(peers)), thread_name_prefix="agentwatch-scrape")
        futures = {pool.submit(_fetch, port): name for name, (port, _) in peers.items()}
        done, _ = wait(futures, timeout=2 * PEER_TIMEOUT_S)
        pool.shutdown(wait=False)
        texts = []
        for future in done:
            name, error = futures[future], future.exception()
            if error is None:
                texts.append((name, future.result()))
            elif isinstance(error, ConnectionRefusedError):
                peers[name][1].unlink(missing_ok=True)  # the pid was reused: nobody listens any more
        return sorted(texts)

    def _close(self, forked: bool) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None and forked:
            httpd.socket.close()  # our copy only; shutdown() would stop the parent's socket too
        elif httpd is not None:
            if httpd.thread.is_alive():
                httpd.shutdown()
            httpd.server_close()
        if not forked and self._owner == os.getpid():
            _remove_files(self)
        self._entry, self.role = None, "none"

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._close(forked=True)
        self._start()

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        if self._closed:
            return
        self._closed = True
        _readers.discard(self)
        self._close(forked=False)
        super().shutdown(timeout_millis, **kwargs)


def _remove_files(reader: AgentwatchPrometheusReader) -> None:
    if reader._entry is not None:
        reader._entry.unlink(missing_ok=True)
    if reader.role == "server":
        server_file = reader._dir / _SERVER_FILE
        try:
            if int(server_file.read_text()) == reader._owner:
                server_file.unlink()
        except (OSError, ValueError):
            pass
    try:
        reader._dir.rmdir()  # only succeeds for the last one out
    except OSError:
        pass


def _after_fork_in_child() -> None:
    global _slots  # noqa: PLW0603 - a forked worker numbers its slots anew
    _slots = itertools.count()
    for reader in list(_readers):
        reader._after_fork()


def _at_exit() -> None:  # in case the MeterProvider is never shut down
    for reader in list(_readers):
        if reader._owner == os.getpid():
            _remove_files(reader)


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
