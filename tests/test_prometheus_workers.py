"""The ``prometheus`` exporter under several processes: one endpoint shows every worker.

Real parts only: real sockets and HTTP scrapes, real subprocesses, and real uvicorn
(``--workers``, spawned) and gunicorn (forked UvicornWorker) run under
``opentelemetry-instrument`` with the agentwatch distro.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client.parser import text_string_to_metric_families

from _service import BIN, free_port

from agentwatch.distro import _diagnostics
from agentwatch.distro.prometheus import WORKER_LABEL, create_prometheus_reader

pytestmark = pytest.mark.single_env(
    reason='several uvicorn/gunicorn workers start at once: timing-sensitive while the two resolutions share the 2 cores'
)


# --------------------------------------------------------------------------- helpers


def _peer_dir(port: int) -> Path:
    return Path(tempfile.gettempdir()) / f"agentwatch-prometheus-{os.getuid()}-{port}"


def _get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode()


def _samples(text: str, sample_name: str) -> list:
    return [s for f in text_string_to_metric_families(text) for s in f.samples if s.name == sample_name]


def _families_once(text: str) -> None:
    types = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
    assert len(types) == len(set(types)), "a family appears twice"


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _stop(proc: subprocess.Popen) -> None:
    """End a process started in its own session, and everything it started."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=8)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=5)


# --------------------------------------------------------------------------- in-process


def test_second_reader_on_same_port_becomes_peer_and_is_merged():
    port = free_port()
    server, peer = create_prometheus_reader("127.0.0.1", port), create_prometheus_reader("127.0.0.1", port)
    providers = [MeterProvider(metric_readers=[server]), MeterProvider(metric_readers=[peer])]
    try:
        assert (server.role, peer.role) == ("server", "peer")
        assert peer.endpoint[0] == "127.0.0.1" and peer.endpoint[1] != port
        for value, provider in enumerate(providers, start=1):
            provider.get_meter("test").create_counter("jobs").add(value)
            provider.get_meter("test").create_histogram("lat", unit="s").record(0.1 * value)

        status, text = _get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        _families_once(text)
        jobs = {s.labels[WORKER_LABEL]: s.value for s in _samples(text, "jobs_total")}
        assert jobs == {server.worker: 1.0, peer.worker: 2.0}
        assert server.worker == str(os.getpid()) or server.worker.startswith(f"{os.getpid()}-")
        counts = {s.labels[WORKER_LABEL] for s in _samples(text, "lat_seconds_count")}
        assert counts == {server.worker, peer.worker}

        providers.pop().shutdown()  # the peer leaves: its entry goes, the scrape goes on
        assert not (_peer_dir(port) / peer.worker).exists()
        jobs = {s.labels[WORKER_LABEL]: s.value for s in _samples(_get(f"http://127.0.0.1:{port}/")[1], "jobs_total")}
        assert jobs == {server.worker: 1.0}
    finally:
        for provider in providers:
            provider.shutdown()
        shutil.rmtree(_peer_dir(port), ignore_errors=True)


def test_hung_or_dead_peer_never_fails_the_scrape():
    port = free_port()
    provider = MeterProvider(metric_readers=[server := create_prometheus_reader("127.0.0.1", port)])
    with socket.socket() as hung:  # accepts connections (backlog) but never answers
        hung.bind(("127.0.0.1", 0))
        hung.listen()
        try:
            provider.get_meter("test").create_counter("jobs").add(1)
            (_peer_dir(port) / f"{os.getpid()}-900").write_text(str(hung.getsockname()[1]))
            (_peer_dir(port) / "999999999").write_text("1")  # no such pid
            started = time.monotonic()
            status, text = _get(f"http://127.0.0.1:{port}/metrics")
            assert time.monotonic() - started < 2.5
            assert status == 200
            assert {s.labels[WORKER_LABEL] for s in _samples(text, "jobs_total")} == {server.worker}
            assert not (_peer_dir(port) / "999999999").exists()
        finally:
            provider.shutdown()
            shutil.rmtree(_peer_dir(port), ignore_errors=True)


def test_bind_error_other_than_in_use_warns_and_collects():
    reader = create_prometheus_reader("203.0.113.7", free_port())  # TEST-NET-3: not ours to bind
    provider = MeterProvider(metric_readers=[reader])
    try:
        assert reader.role == "none" and reader.endpoint is None
        assert any("cannot serve Prometheus metrics on 203.0.113.7" in m for m in _diagnostics.messages())
        provider.get_meter("test").create_counter("kept").add(1)
        assert b"kept_total" in reader._exposition()
    finally:
        provider.shutdown()


def test_port_held_by_another_program_is_reported():
    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", 0))
        foreign.listen()
        port = foreign.getsockname()[1]
        provider = MeterProvider(metric_readers=[reader := create_prometheus_reader("127.0.0.1", port)])
        try:
            assert reader.role == "peer"
            _wait_for(lambda: any("not an agentwatch endpoint" in m for m in _diagnostics.messages()), 5, "hint")
        finally:
            provider.shutdown()
            shutil.rmtree(_peer_dir(port), ignore_errors=True)


# --------------------------------------------------------------------------- subprocesses

WORKER_SCRIPT = """
import sys, time
from opentelemetry.sdk.metrics import MeterProvider
from agentwatch.distro.prometheus import create_prometheus_reader
reader = create_prometheus_reader("127.0.0.1", int(sys.argv[1]))
provider = MeterProvider(metric_readers=[reader])
provider.get_meter("worker").create_counter("jobs").add(int(sys.argv[2]), {"role": reader.role})
print("ready", reader.role, flush=True)
time.sleep(120)
"""


@pytest.mark.slow
def test_three_processes_one_endpoint(tmp_path):
    port, script = free_port(), tmp_path / "worker.py"
    script.write_text(WORKER_SCRIPT)
    procs: list[subprocess.Popen] = []

    def start(value: int) -> str:
        proc = subprocess.Popen([sys.executable, str(script), str(port), str(value)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        procs.append(proc)
        line = proc.stdout.readline()
        assert line.startswith("ready"), proc.stderr.read()
        return line.split()[1]

    def scrape() -> dict[str, tuple[str, float]]:
        status, text = _get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        _families_once(text)
        return {s.labels[WORKER_LABEL]: (s.labels["role"], s.value) for s in _samples(text, "jobs_total")}

    try:
        assert [start(1), start(2), start(3)] == ["server", "peer", "peer"]
        pids = [str(p.pid) for p in procs]
        assert scrape() == {pids[0]: ("server", 1.0), pids[1]: ("peer", 2.0), pids[2]: ("peer", 3.0)}

        procs[1].kill()  # a crash: no atexit, its entry stays until the next scrape
        procs[1].wait()
        assert scrape() == {pids[0]: ("server", 1.0), pids[2]: ("peer", 3.0)}
        assert sorted(p.name for p in _peer_dir(port).iterdir()) == sorted([pids[2], "server"])

        procs[0].kill()  # the server goes: nobody takes over, the peer lives on
        procs[0].wait()
        time.sleep(1.5)
        assert procs[2].poll() is None
        assert _get(f"http://127.0.0.1:{int((_peer_dir(port) / pids[2]).read_text())}/")[0] == 200
    finally:
        for proc in procs:
            _stop(proc)
        shutil.rmtree(_peer_dir(port), ignore_errors=True)


APP = """
from fastapi import FastAPI
app = FastAPI()

@app.get("/ready")
def ready():
    return {"ok": True}

@app.get("/items/{item_id}")
def item(item_id: int):
    return {"id": item_id}
"""


def _run_server(tmp_path: Path, argv: list[str], min_processes: int) -> None:
    """Start ``argv`` under opentelemetry-instrument, send 20 requests, check the merged scrape."""
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    app_port, metrics_port, requests = free_port(), free_port(), 20
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(OTEL_PYTHON_DISTRO="agentwatch", OTEL_METRICS_EXPORTER="prometheus", OTEL_TRACES_EXPORTER="none",
               OTEL_LOGS_EXPORTER="none", OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
               OTEL_EXPORTER_PROMETHEUS_PORT=str(metrics_port), OTEL_SEMCONV_STABILITY_OPT_IN="http")
    stderr_path = tmp_path / "stderr.log"
    cmd = [str(BIN / "opentelemetry-instrument"), *[a.format(port=app_port) for a in argv]]
    with open(stderr_path, "w") as stderr:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
                                start_new_session=True)
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        _wait_for(lambda: _get(f"http://127.0.0.1:{app_port}/ready", 1)[0] == 200, 30, "the app")
        # every worker has registered once each process shows its target_info
        _wait_for(lambda: len(_samples(_get(metrics_url)[1], "target_info")) >= min_processes, 15, "workers")
        for i in range(requests):
            assert _get(f"http://127.0.0.1:{app_port}/items/{i}")[0] == 200

        status, text = _get(metrics_url)
        assert status == 200
        _families_once(text)
        per_worker: dict[str, float] = defaultdict(float)
        for sample in _samples(text, "http_server_request_duration_seconds_count"):
            if sample.labels.get("http_route") == "/items/{item_id}":
                per_worker[sample.labels[WORKER_LABEL]] += sample.value
        assert sum(per_worker.values()) == requests, per_worker
        workers = {s.labels[WORKER_LABEL] for s in _samples(text, "target_info")}
        assert len(workers) >= min_processes and set(per_worker) <= workers
    finally:
        _stop(proc)
        shutil.rmtree(_peer_dir(metrics_port), ignore_errors=True)
    log = stderr_path.read_text()
    assert "Address already in use" not in log, log
    assert "Failed to auto initialize" not in log, log


@pytest.mark.slow
def test_uvicorn_workers_share_one_endpoint(tmp_path):
    # supervisor (server) + 2 spawned workers (+ multiprocessing's resource tracker)
    _run_server(tmp_path, [str(BIN / "uvicorn"), "app:app", "--workers", "2", "--port", "{port}"], 3)


@pytest.mark.slow
def test_gunicorn_forked_workers_share_one_endpoint(tmp_path):
    # master (server) + 2 forked workers that turned into peers
    argv = [str(BIN / "gunicorn"), "-k", "uvicorn.workers.UvicornWorker", "-w", "2", "-b", "127.0.0.1:{port}",
            "--no-control-socket", "app:app"]
    _run_server(tmp_path, argv, 3)
