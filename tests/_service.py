"""Run the example agent service under ``opentelemetry-instrument`` in a subprocess (test helper)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from agentwatch.distro.environment_variables import AGENTWATCH_CACHE_DIR
from agentwatch.distro.guard import STRICT_ENV

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
APP_DIR = ROOT / "examples" / "agent_service"

FAST_EXPORT = {
    "OTEL_BSP_SCHEDULE_DELAY": "100",
    "OTEL_BLRP_SCHEDULE_DELAY": "100",
    "OTEL_METRIC_EXPORT_INTERVAL": "300",
}
"""A subprocess app's batches and metrics go out within a fraction of a second (``clean_env(**FAST_EXPORT)``)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_SUITE = (STRICT_ENV, AGENTWATCH_CACHE_DIR)


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any OTEL_/AGENTWATCH_ setting, plus ``extra``.

    AGENTWATCH_STRICT (set by conftest.py) is kept: it is how the suite runs, not a setting under test,
    so a guarded step of agentwatch that fails in a child app fails the test too. A test that injects
    faults on purpose drops it from ``extra``'s result itself. AGENTWATCH_CACHE_DIR (conftest.py: the
    session's folder) is kept for the same reason.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if k in _SUITE or not k.startswith(("OTEL_", "AGENTWATCH_", "PYTHONPATH"))
    }
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    env.update(extra)
    return env


@dataclass
class Service:
    process: subprocess.Popen
    port: int
    stderr_path: Path
    stdout_path: Path
    exit_seconds: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def request(self, method: str, path: str, body: dict | None = None, timeout: float = 10) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited early ({self.process.returncode}):\n{self.stderr()}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"service did not answer within {timeout}s:\n{self.stderr()}")

    def terminate(self, timeout: float = 20) -> int:
        """SIGTERM (how Kubernetes stops pods); return the exit code and record how long exit took."""
        if self.process.poll() is None:
            started = time.monotonic()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            self.exit_seconds = time.monotonic() - started
        return self.process.returncode


def start_service(
    tmp_path: Path,
    env: dict[str, str],
    *,
    command: list[str] | None = None,
    instrumented: bool = True,
    ready: bool = True,
) -> Service:
    """Start the example service (default: ``python app.py --port P``) and wait until it answers."""
    port = free_port()
    command = command or [sys.executable if not instrumented else "python", str(APP_DIR / "app.py"), "--port", str(port)]
    command = [arg.replace("{port}", str(port)) for arg in command]
    if instrumented:
        command = [str(BIN / "opentelemetry-instrument"), *command]
    full_env = {"AGENT_DB_PATH": str(tmp_path / f"kb-{port}.sqlite3"), **env}
    stdout_path = tmp_path / f"service-{port}.out"
    stderr_path = tmp_path / f"service-{port}.err"
    process = subprocess.Popen(
        command,
        env=full_env,
        cwd=APP_DIR,
        stdout=stdout_path.open("w"),
        stderr=stderr_path.open("w"),
        stdin=subprocess.DEVNULL,
    )
    service = Service(process, port, stderr_path, stdout_path)
    if ready:
        try:
            service.wait_ready()
        except Exception:
            service.terminate()
            raise
    return service


def agentwatch_lines(stderr: str) -> list[str]:
    """agentwatch's own lines (warnings, notes) in a process's stderr."""
    return [line for line in stderr.splitlines() if line.startswith("agentwatch ")]


def json_attrs(items: list[dict] | None) -> dict:
    """OTLP/JSON ``attributes`` (``[{"key": k, "value": {"stringValue": v}}]``) as ``{k: v}``."""
    return {a["key"]: next(iter(a["value"].values())) if a["value"] else None for a in items or []}


def json_points(metric: dict) -> list[tuple[dict, dict]]:
    """An OTLP/JSON sum's or histogram's data points as ``(attributes as a dict, point)``."""
    data = metric.get("sum") or metric.get("histogram")
    return [(json_attrs(p.get("attributes")), p) for p in data["dataPoints"]]


def read_json_telemetry(out: Path, metric_scope: str | None = None) -> tuple[list[dict], dict[str, dict]]:
    """What the ``otlp_json_file`` exporters wrote to ``out``: ``(spans, {metric name: metric})``.

    Each span gains ``attrs`` (its attributes as a dict) and ``scope`` (its scope's name).
    Metrics are cumulative, so the last export of a name has everything; ``metric_scope``
    keeps only the metrics of that instrumentation scope.
    """
    spans, metrics = [], {}
    for line in (out / "traces.jsonl").read_text().splitlines():
        for rs in json.loads(line)["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for span in ss["spans"]:
                    span["attrs"] = json_attrs(span.get("attributes"))
                    span["scope"] = ss["scope"]["name"]
                    spans.append(span)
    for line in (out / "metrics.jsonl").read_text().splitlines():
        for rm in json.loads(line)["resourceMetrics"]:
            for sm in rm["scopeMetrics"]:
                if metric_scope is None or sm["scope"]["name"] == metric_scope:
                    for metric in sm["metrics"]:
                        metrics[metric["name"]] = metric
    return spans, metrics
