"""``make demo-stack``: the deployment of collector/ on this machine, without a cluster.

Starts, on loopback only, what tests/test_collector_e2e.py tests: the agent collector and two
gateway collectors (collector/otelcol/*.yaml, run by the otelcol-agentwatch binary that
``make collector`` builds; see collector/tools/local_stack.py), Debian's Prometheus scraping
the gateways and the collectors, the fake Gemini and the demo service
(examples/agent_service under ``opentelemetry-instrument``) sending OTLP to the agent; then
sends the demo's kinds of requests in a loop, prints the URLs, and stops everything cleanly
on Ctrl-C (or after ``--seconds``).

    .venv/bin/python collector/tools/demo_stack.py [--dir DIR] [--seconds N] [--sampling 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_stack import BINARY, COLLECTOR, LocalStack, free_port

ROOT = COLLECTOR.parent
APP = ROOT / "examples" / "agent_service" / "app.py"
sys.path.insert(0, str(ROOT / "examples"))
from fake_gemini import start_fake_gemini  # noqa: E402

TARGETS = {  # as examples/run_demo.py
    "AGENTWATCH_INTENT_TARGETS": "intents:classify=keyword",
    "AGENTWATCH_RAG_TARGETS": "knowledge:search=kb",
    "AGENTWATCH_PLANNER_TARGETS": "planner:Planner.plan=support",
    "AGENTWATCH_CRITIC_TARGETS": "planner:Critic.review=reviewer",
}
CHATS = [
    "Hi! How are you today?",
    "Can I get a refund on my annual subscription?",
    "Boards are stuck and sync is slow since this morning",
    "I forgot my password, how do I reset it?",
    "Tell me about Orbitly",
    "What keyboard shortcuts are there?",
    "The desktop app shows an error on sync #fail-503",  # a 502: an error trace, always kept
]


def _request(base: str, method: str, path: str, body: dict | None = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def _traffic(base: str, stop: threading.Event, counts: dict[int, int]) -> None:
    while not stop.is_set():
        for index, message in enumerate(CHATS):
            status = _request(base, "POST", "/chat", {"message": message, "session_id": f"demo-{index % 3}"})
            counts[status] = counts.get(status, 0) + 1
        for path in ("/documents/kb-001", "/documents/kb-404", "/health/ready"):
            status = _request(base, "GET", path)
            counts[status] = counts.get(status, 0) + 1
        stop.wait(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=None, help="working directory (default: a temporary one, removed at the end)")
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (default: until Ctrl-C)")
    parser.add_argument("--sampling", type=float, default=10, help="OTELCOL_SAMPLING_PERCENTAGE of the gateways")
    args = parser.parse_args(argv)
    if not os.access(BINARY, os.X_OK):
        print(f"{BINARY} is missing: run `make collector` first", file=sys.stderr)
        return 2
    prometheus = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not os.access(prometheus, os.X_OK):
        print("prometheus is missing: apt-get install prometheus (make test's tools step does)", file=sys.stderr)
        return 2
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="agentwatch-demo-stack-"))
    stack = LocalStack(workdir, gateways=2, sampling_percentage=args.sampling, decision_wait="5s",
                       spanmetrics_flush_interval="5s", prometheus_binary=prometheus)
    stop = threading.Event()
    # Ctrl-C (SIGINT, also when started in the background, where it would be ignored) and SIGTERM stop it.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    app = fake = None
    counts: dict[int, int] = {}
    try:
        print(f"[demo-stack] starting 2 gateways, the agent and Prometheus under {workdir}")
        started = time.monotonic()
        stack.start()
        print(f"[demo-stack] collectors healthy after {time.monotonic() - started:.1f}s")
        fake, fake_url = start_fake_gemini(port=0, latency_ms=20)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_"))}
        env.update(OTEL_EXPORTER_OTLP_ENDPOINT=stack.otlp_http, OTEL_SERVICE_NAME="agent-service", OTEL_METRIC_EXPORT_INTERVAL="5000",
                   GEMINI_BASE_URL=fake_url, GEMINI_API_KEY="demo-key-not-a-secret", AGENT_DB_PATH=str(workdir / "knowledge.sqlite3"),
                   PYTHONUNBUFFERED="1", **TARGETS)
        bindir = Path(sys.executable).parent
        with (workdir / "service.log").open("wb") as log:
            app = subprocess.Popen([str(bindir / "opentelemetry-instrument"), sys.executable, str(APP), "--port", str(port)],
                                   env=env, cwd=str(APP.parent), stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 40
        while _request(base, "GET", "/") != 200:
            if app.poll() is not None or time.monotonic() > deadline:
                print(f"[demo-stack] the demo service did not start; see {workdir / 'service.log'}", file=sys.stderr)
                return 1
            time.sleep(0.2)
        threading.Thread(target=_traffic, args=(base, stop, counts), daemon=True).start()
        print(f"[demo-stack] demo service {base} sending to the agent; traffic running\n")
        for what, url in [("demo service", base), *stack.urls()]:
            print(f"  {what:<58} {url}")
        print("\n  traces kept by tail sampling (OTLP/JSON):")
        for gateway in stack.gateway:
            print(f"    {workdir / gateway.name / 'traces.jsonl'}")
        print('\n  try in Prometheus: sum by (http_route) (rate(traces_span_metrics_calls_total[1m]))')
        print("[demo-stack] Ctrl-C stops everything" + (f" (or after {args.seconds:g}s)" if args.seconds else ""))
        end = time.monotonic() + args.seconds if args.seconds else None
        while not stop.is_set() and (end is None or time.monotonic() < end):
            stop.wait(1)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        print(f"\n[demo-stack] stopping (answers so far: {dict(sorted(counts.items()))})")
        if app is not None and app.poll() is None:
            app.send_signal(signal.SIGTERM)
            try:
                app.wait(20)
            except subprocess.TimeoutExpired:
                app.kill()
        if fake is not None:
            fake.shutdown()
        stack.stop()
        if args.dir is None:
            shutil.rmtree(workdir, ignore_errors=True)
        print("[demo-stack] stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
