"""The agent -> gateways -> Prometheus pipeline on loopback, from the built collector.

Used by tests/test_collector_e2e.py and collector/tools/demo_stack.py (``make demo-stack``):
one agent collector (collector/otelcol/agent.yaml) whose load_balancing exporter routes each
trace id to one of N gateway collectors (collector/otelcol/gateway.yaml), and Debian's
Prometheus scraping the gateways' prometheus exporters and every collector's own metrics.
The binary is collector/distribution/build/otelcol-agentwatch (``make collector``).

The two config files run unchanged, with their ``${env:...}`` settings (free ports, queue
directories, sampling share); a small overlay file, merged after them by the collector's
own ``--config a.yaml --config b.yaml``, changes only what a cluster has and loopback has
not:

* agent: the load_balancing resolver is ``static`` (the gateways' loopback ports) instead
  of ``dns`` (a headless Service that resolves to every gateway pod);
* gateways: traces and logs go to ``file`` exporters (OTLP/JSON lines, which the test reads)
  instead of Tempo and Loki.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

COLLECTOR = Path(__file__).resolve().parents[1]
BINARY = COLLECTOR / "distribution" / "build" / "otelcol-agentwatch"
AGENT_CONFIG = COLLECTOR / "otelcol" / "agent.yaml"
GATEWAY_CONFIG = COLLECTOR / "otelcol" / "gateway.yaml"
SCRAPE_INTERVAL_S = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def collector_env(**extra: str) -> dict[str, str]:
    """This process's environment without OTEL_* settings (the collector reads none), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL")}
    env.update(extra)
    return env


@dataclass
class Collector:
    """One collector process: its configs, environment, ports and log."""

    name: str
    configs: list[Path]
    env: dict[str, str]
    ports: dict[str, int]
    workdir: Path
    binary: Path = BINARY
    process: subprocess.Popen | None = None
    starts: int = 0

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['health']}/"

    @property
    def zpages_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['zpages']}/debug/tracez"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['metrics']}/metrics"

    def start(self, timeout: float = 60.0) -> None:
        """Start (or restart) the process and wait until its health_check answers 200."""
        command = [str(self.binary)] + [f"--config={path}" for path in self.configs]
        self.starts += 1
        with self.log.open("a") as log:
            log.write(f"\n--- start {self.starts}: {' '.join(command)}\n")
            log.flush()
            # Own session: a Ctrl-C of make demo-stack reaches only the script, which stops
            # the stack in order (agent first, so it drains to the gateways).
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}):\n{self.tail()}")
            try:
                if _get(self.health_url, timeout=1.0)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not healthy within {timeout}s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush (a crashed or evicted pod)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait (a graceful shutdown drains what it can)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def own_metrics(self) -> dict[str, float]:
        """The collector's own metrics (``otelcol_*``), summed over labels: ``{name: value}``."""
        _, body = _get(self.metrics_url)
        totals: dict[str, float] = {}
        for line in body.decode(errors="replace").splitlines():
            if not line or line.startswith("#"):
                continue
            name = line.split("{", 1)[0].split(" ", 1)[0]
            try:
                totals[name] = totals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
            except ValueError:
                continue
        return totals


@dataclass
class LocalStack:
    """One agent, ``gateways`` gateways and (optionally) Prometheus, on loopback under ``workdir``."""

    workdir: Path
    gateways: int = 2
    sampling_percentage: float = 10
    decision_wait: str = "2s"
    agent_memory_limit_mib: int = 0
    agent_memory_spike_mib: int = 0
    spanmetrics_flush_interval: str = "2s"
    binary: Path = BINARY
    prometheus_binary: str | None = None
    agent: Collector | None = None
    gateway: list[Collector] = field(default_factory=list)
    prometheus: subprocess.Popen | None = None
    prometheus_port: int = 0

    # ---------------------------------------------------------------- build
    def _ports(self, *names: str) -> dict[str, int]:
        return {name: free_port() for name in names}

    def _common_env(self, name: str, ports: dict[str, int]) -> dict[str, str]:
        queue = self.workdir / name / "queue"
        return collector_env(
            MY_POD_IP="127.0.0.1",
            OTELCOL_OTLP_GRPC_PORT=str(ports["grpc"]),
            OTELCOL_OTLP_HTTP_PORT=str(ports["http"]),
            OTELCOL_HEALTH_PORT=str(ports["health"]),
            OTELCOL_METRICS_PORT=str(ports["metrics"]),
            OTELCOL_ZPAGES_ENDPOINT=f"127.0.0.1:{ports['zpages']}",
            OTELCOL_PPROF_ENDPOINT=f"127.0.0.1:{ports['pprof']}",
            OTELCOL_QUEUE_DIR=str(queue),
        )

    def build(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for index in range(self.gateways):
            name = f"gateway-{index}"
            ports = self._ports("grpc", "http", "health", "metrics", "zpages", "pprof", "prometheus")
            out = self.workdir / name
            out.mkdir(exist_ok=True)
            overlay = out / "overlay.yaml"
            overlay.write_text(
                json.dumps(
                    {
                        "exporters": {
                            "file/traces": {"path": str(out / "traces.jsonl"), "flush_interval": "100ms"},
                            "file/logs": {"path": str(out / "logs.jsonl"), "flush_interval": "100ms"},
                        },
                        "service": {"pipelines": {"traces": {"exporters": ["file/traces"]}, "logs": {"exporters": ["file/logs"]}}},
                    },
                    indent=1,
                )
            )
            env = self._common_env(name, ports)
            env.update(
                OTELCOL_PROMETHEUS_PORT=str(ports["prometheus"]),
                OTELCOL_SAMPLING_PERCENTAGE=str(self.sampling_percentage),
                OTELCOL_TAIL_DECISION_WAIT=self.decision_wait,
                OTELCOL_SPANMETRICS_FLUSH_INTERVAL=self.spanmetrics_flush_interval,
            )
            self.gateway.append(Collector(name, [GATEWAY_CONFIG, overlay], env, ports, self.workdir, self.binary))
        ports = self._ports("grpc", "http", "health", "metrics", "zpages", "pprof")
        out = self.workdir / "agent"
        out.mkdir(exist_ok=True)
        overlay = out / "overlay.yaml"
        hostnames = [f"127.0.0.1:{g.ports['grpc']}" for g in self.gateway]
        # dns: null drops the file's dns resolver (one resolver only), static lists the gateways.
        overlay.write_text(json.dumps({"exporters": {"load_balancing": {"resolver": {"dns": None, "static": {"hostnames": hostnames}}}}}, indent=1))
        env = self._common_env("agent", ports)
        env.update(OTELCOL_GATEWAY_ENDPOINT=hostnames[0], OTELCOL_HOST_NAME="demo-node")
        if self.agent_memory_limit_mib:
            env.update(OTELCOL_MEMORY_LIMIT_MIB=str(self.agent_memory_limit_mib), OTELCOL_MEMORY_SPIKE_MIB=str(self.agent_memory_spike_mib))
        self.agent = Collector("agent", [AGENT_CONFIG, overlay], env, ports, self.workdir, self.binary)

    # ---------------------------------------------------------------- run
    def start(self, attempts: int = 3) -> None:
        """Start the gateways, the agent and Prometheus.

        The ports are picked free but bound only when a collector starts: on a shared machine
        another process may take one in between, so a start that fails on a taken port is
        tried again with new ports.
        """
        for attempt in range(attempts):
            if self.agent is None:
                self.build()
            try:
                for gateway in self.gateway:
                    gateway.start()
                assert self.agent is not None
                self.agent.start()
                break
            except RuntimeError as error:
                self.stop()
                if "address already in use" not in str(error) or attempt == attempts - 1:
                    raise
                self.agent, self.gateway = None, []
        if self.prometheus_binary:
            self._start_prometheus()

    @property
    def otlp_http(self) -> str:
        """Where the apps send OTLP/HTTP (the agent)."""
        assert self.agent is not None
        return f"http://127.0.0.1:{self.agent.ports['http']}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    def _start_prometheus(self) -> None:
        assert self.prometheus_binary and self.agent is not None
        self.prometheus_port = free_port()
        config = self.workdir / "prometheus.yml"
        gateways = [f"127.0.0.1:{g.ports['prometheus']}" for g in self.gateway]
        collectors = [f"127.0.0.1:{c.ports['metrics']}" for c in [self.agent, *self.gateway]]
        # As collector/prometheus/prometheus.yml: honor_labels keeps the job/instance the
        # gateway's exporter derives from service.name / service.instance.id.
        config.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": f"{SCRAPE_INTERVAL_S}s", "evaluation_interval": f"{SCRAPE_INTERVAL_S}s"},
                    "scrape_configs": [
                        {"job_name": "otel-gateway", "honor_labels": True, "static_configs": [{"targets": gateways}]},
                        {"job_name": "otel-collector", "static_configs": [{"targets": collectors}]},
                    ],
                },
                indent=1,
            )
        )
        log = self.workdir / "prometheus.log"
        self.prometheus = subprocess.Popen(
            [
                self.prometheus_binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{self.prometheus_port}",
            ],
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.workdir,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.prometheus.poll() is not None:
                raise RuntimeError(f"prometheus exited:\n{log.read_text(errors='replace')[-3000:]}")
            try:
                if _get(f"{self.prometheus_url}/-/ready")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError("prometheus not ready within 30s")

    def query(self, expr: str) -> dict:
        """``/api/v1/query`` of the stack's Prometheus: its ``data``, or ``{"error": ...}``."""
        status, body = _get(f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}), timeout=5)
        data = json.loads(body or b"{}")
        if status != 200 or data.get("status") != "success":
            return {"error": f"HTTP {status}: {data.get('errorType')} {data.get('error')}"}
        return data["data"]

    def stop(self) -> None:
        """The agent first (it drains towards the gateways), then the gateways, then Prometheus."""
        for collector in [self.agent, *self.gateway]:
            if collector is not None:
                collector.stop()
        if self.prometheus is not None and self.prometheus.poll() is None:
            self.prometheus.terminate()
            try:
                self.prometheus.wait(10)
            except subprocess.TimeoutExpired:
                self.prometheus.kill()
                self.prometheus.wait(5)

    def urls(self) -> list[tuple[str, str]]:
        """(what, URL) of everything a person may open."""
        assert self.agent is not None
        rows = [("agent OTLP/HTTP (point OTEL_EXPORTER_OTLP_ENDPOINT here)", self.otlp_http), ("agent health", self.agent.health_url),
                ("agent zpages", self.agent.zpages_url)]
        for gateway in self.gateway:
            rows += [(f"{gateway.name} health", gateway.health_url), (f"{gateway.name} zpages", gateway.zpages_url),
                     (f"{gateway.name} prometheus exporter", f"http://127.0.0.1:{gateway.ports['prometheus']}/metrics")]
        if self.prometheus is not None:
            rows.append(("Prometheus UI", f"{self.prometheus_url}/graph"))
        return rows

