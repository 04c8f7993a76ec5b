"""The agentwatch demo, end to end, on loopback only (``make demo``).

1. starts the fake Gemini (examples/fake_gemini.py) in this process, on a free port;
2. starts the demo agent service (examples/agent_service/app.py) unchanged, under
   ``opentelemetry-instrument`` with ``AGENTWATCH_EXPORT=local`` (OTLP-JSON files for traces,
   metrics and logs + a Prometheus scrape endpoint), its pipeline steps named only by the
   ``AGENTWATCH_*_TARGETS`` variables (intent classifier, FTS5 retrieval, planner and critic)
   and its knowledge base watched by the health checks (``AGENTWATCH_HEALTH_SQLITE_PATH``);
3. probes ``/health/detailed``, then drives a few dozen realistic requests (document lookups
   and 404s, every intent, plans that need one to three critique iterations, one model
   failure that must come back as 502 and one unhandled exception (``#crash``) that must come
   back as agentwatch's JSON 500 carrying the request id) and checks every answer; then the
   resilience signals: a Gemini 429 the SDK retries (one call span with its attempts), and
   three model failures in a row that open the app's ``gemini`` circuit breaker, which then
   refuses a chat (503);
4. scrapes the Prometheus endpoint once;
5. stops the service with SIGTERM (the way Kubernetes does; the final flush must happen);
6. runs ``agentwatch report <dir>`` on what was written and prints it: the last requests as
   span trees with waterfall bars (server span -> intent -> retrieval -> plan with its critiques
   -> Gemini), latency per route, cost, the errors with their request ids and the agent metrics;
   then writes the same report as one self-contained page, ``<out>/report.html``
   (``agentwatch report <dir> --html <out>/report.html``), and prints its path.

Exit status: 0 when every request was answered as expected and the report is non-empty;
1 when the service misbehaved; 2 when the telemetry/report is missing.

    .venv/bin/python examples/run_demo.py [--dir DIR] [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
APP = EXAMPLES / "agent_service" / "app.py"
sys.path.insert(0, str(EXAMPLES))

from fake_gemini import start_fake_gemini  # noqa: E402

STARTUP_TIMEOUT_S = 40.0
STOP_TIMEOUT_S = 20.0
REQUEST_TIMEOUT_S = 15.0
REPORT_TIMEOUT_S = 60.0

# The app's own pipeline functions, traced with zero code (module:function or
# module:Class.method, "=name" names the classifier / data source / agent / critic). They live
# in modules app.py imports: the script run as __main__ cannot be reached by name.
AGENT_TARGETS = {
    "AGENTWATCH_INTENT_TARGETS": "intents:classify=keyword",
    "AGENTWATCH_RAG_TARGETS": "knowledge:search=kb",
    "AGENTWATCH_PLANNER_TARGETS": "planner:Planner.plan=support",
    "AGENTWATCH_CRITIC_TARGETS": "planner:Critic.review=reviewer",
    # Not a pipeline step: the knowledge base's lru_cache of FTS5 expressions, read for its hit ratio.
    "AGENTWATCH_CACHE_TARGETS": "knowledge:_match_expression=fts-query",
    # A hand-written function-calling loop (POST /chat/tools): the tool and the loop around it.
    "AGENTWATCH_TOOL_TARGETS": "order_tools:get_order_status",
    "AGENTWATCH_AGENT_TARGETS": "order_tools:answer_with_tools=order-helper",
}

# (message, expected intent). Sessions are assigned round-robin, so some turns carry history.
# The last three end the run (their traces are the report's "recent requests" with the two
# failures): a plan accepted at once, one whose first draft cited nothing, one needing three.
CHAT_SCRIPT: list[tuple[str, str]] = [
    ("Hi! How are you today?", "smalltalk"),
    ("How much does the Team plan cost per member?", "billing"),
    ("Can I get a refund on my annual subscription?", "billing"),
    ("I was charged twice this month, what happened?", "billing"),
    ("Where do I download my invoices with our VAT number?", "billing"),
    ("How do I cancel my subscription?", "billing"),
    ("Which payment methods do you accept? Can I pay by card?", "billing"),
    ("I want to downgrade our plan at the end of the billing period", "billing"),
    ("Boards are stuck and sync is slow since this morning", "technical"),
    ("The desktop app crashes on start after the update", "technical"),
    ("How do I import tasks from a CSV file?", "technical"),
    ("We get HTTP 429 from the API, what is the rate limit?", "technical"),
    ("Our webhook deliveries are failing, is there a retry?", "technical"),
    ("I see an error 500 when saving a board", "technical"),
    ("Does the calendar integration work with Outlook?", "technical"),
    ("Is there an offline mode on the desktop app?", "technical"),
    ("The web app does not load in my browser", "technical"),
    ("I forgot my password, how do I reset it?", "account"),
    ("How do I turn on two-factor authentication (2FA)?", "account"),
    ("My account is locked after too many sign in attempts", "account"),
    ("How do I change the email address of my profile?", "account"),
    ("How can I invite new members to the workspace?", "account"),
    ("Do you support SSO with Okta?", "account"),
    ("How do I transfer ownership of our workspace to another admin?", "account"),
    ("Please delete my account", "account"),
    ("Thanks a lot, that was helpful!", "smalltalk"),
    ("What keyboard shortcuts are there?", "other"),
    ("Where is my data stored?", "other"),
    ("Tell me about Orbitly", "other"),
    ("How do I export the whole workspace as JSON?", "other"),
    ("Goodbye!", "smalltalk"),
    ("Can I start a board from a template for sprint planning?", "other"),
]
DOCUMENT_LOOKUPS: list[tuple[str, int]] = [("kb-001", 200), ("kb-017", 200), ("kb-404", 404), ("kb-999", 404)]
# The fake Gemini fails on "#fail-503": the service must turn that into a 502 JSON error.
FAILING_MESSAGE = "The desktop app shows an error on sync #fail-503"
# The demo planner raises on "#crash" and the app has no handler for it: agentwatch must answer
# a JSON 500 whose request_id is the X-Request-ID we sent (and that the server span carries).
CRASH_MESSAGE = "Why is the timeline view empty? #crash"
# The fake Gemini answers the first request of this body 429 (with RetryInfo), the retry 200.
RATE_LIMITED_MESSAGE = "Is there an API rate limit on exports? #flaky-429-1"
CRASH_REQUEST_ID = "demo-crash-0001"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tool(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"run_demo: cannot find the `{name}` command next to {sys.executable} or on PATH")
    return found


_SHOWN_LABELS = ("http_request_method", "http_route", "http_response_status_code", "server_address",
                 "gen_ai_operation_name", "gen_ai_request_model", "gen_ai_token_type")


def _compact_sample(line: str) -> str:
    """``name{many labels} value`` -> ``name{the few labels worth reading} value``."""
    match = re.match(r"^([^{\s]+)(?:\{(.*)\})?\s+(\S+)", line)
    if not match:
        return line
    name, labels, value = match.groups()
    pairs = re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels or "")
    kept = ",".join(f'{k}="{v}"' for k, v in pairs if k in _SHOWN_LABELS)
    return f"{name}{{{kept}}} {value}"


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Demo:
    def __init__(self, out_dir: Path, latency_ms: float):
        self.out_dir = out_dir
        self.latency_ms = latency_ms
        self.telemetry_dir = out_dir / "telemetry"
        self.service_log = out_dir / "service.log"
        self.failures: list[str] = []
        self.proc: subprocess.Popen | None = None
        self.fake = None

    # ------------------------------------------------------------------ steps
    def start(self) -> tuple[str, int]:
        self.health_token = secrets.token_urlsafe(24)
        self.fake, fake_url = start_fake_gemini(port=0, latency_ms=self.latency_ms)
        print(f"[demo] fake Gemini on {fake_url} (answers after {self.latency_ms:g} ms)")
        app_port, prom_port = _free_port(), _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_"))}
        env.update(
            AGENTWATCH_EXPORT="local",
            AGENTWATCH_FILE_DIR=str(self.telemetry_dir),
            OTEL_EXPORTER_PROMETHEUS_PORT=str(prom_port),
            OTEL_SERVICE_NAME="agent-service",
            OTEL_METRIC_EXPORT_INTERVAL="1000",
            GEMINI_BASE_URL=fake_url,
            GEMINI_API_KEY="demo-key-not-a-secret",
            AGENT_DB_PATH=str(self.out_dir / "knowledge.sqlite3"),
            AGENTWATCH_HEALTH_SQLITE_PATH=str(self.out_dir / "knowledge.sqlite3"),
            AGENTWATCH_HEALTH_TOKEN=self.health_token,  # the full /health/detailed is for token holders only
            PYTHONUNBUFFERED="1",
            **AGENT_TARGETS,
        )
        command = [_tool("opentelemetry-instrument"), sys.executable, str(APP), "--port", str(app_port)]
        print(f"[demo] starting: {' '.join(command[0:1] + ['python'] + command[2:])}")
        print(f"[demo]   AGENTWATCH_EXPORT=local AGENTWATCH_FILE_DIR={self.telemetry_dir}")
        print(f"[demo]   AGENTWATCH_HEALTH_SQLITE_PATH={self.out_dir / 'knowledge.sqlite3'}")
        for name, value in AGENT_TARGETS.items():
            print(f"[demo]   {name}={value}")
        with open(self.service_log, "wb") as log:
            self.proc = subprocess.Popen(
                command, env=env, cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return f"http://127.0.0.1:{app_port}", prom_port

    def wait_ready(self, base: str, client: httpx.Client) -> None:
        started = time.monotonic()
        while time.monotonic() - started < STARTUP_TIMEOUT_S:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service exited with status {self.proc.returncode} before answering")
            try:
                if client.get(f"{base}/", timeout=1.0).status_code == 200:
                    print(f"[demo] service answering after {time.monotonic() - started:.2f}s")
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the service did not answer within {STARTUP_TIMEOUT_S:.0f}s")

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.failures.append(what)
            print(f"[demo]   FAIL {what}")

    def health(self, base: str, client: httpx.Client) -> None:
        """``/health/detailed`` once, in a few lines; the sqlite check watches the knowledge base."""
        response = None
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:  # /health/detailed answers 503 until startup checks pass
            response = client.get(f"{base}/health/detailed", headers={"Authorization": f"Bearer {self.health_token}"})
            if response.status_code == 200:
                break
            time.sleep(0.2)
        try:
            body = response.json()
        except ValueError:
            body = {}
        checks = body.get("checks") or {}
        self.check(
            response.status_code == 200 and body.get("status") in ("healthy", "degraded"),
            f"/health/detailed: HTTP {response.status_code} {response.text[:300]}",
        )
        self.check((checks.get("sqlite") or {}).get("status") == "healthy", f"/health/detailed: sqlite check {checks.get('sqlite')}")
        service = body.get("service") or {}
        process = body.get("process") or {}
        print(
            f"[demo] GET /health/detailed -> HTTP {response.status_code} status={body.get('status')} "
            f"service={service.get('name')} uptime={body.get('uptime_seconds')}s "
            f"rss={(process.get('memory_rss_bytes') or 0) / 2**20:.0f} MiB"
        )
        for name, check in sorted(checks.items()):
            check = check or {}
            error = f" error={check.get('error')!r}" if check.get("error") else ""
            print(
                f"[demo]   check {name:<8} {check.get('status', '?'):<9} critical={check.get('critical')} "
                f"latency={check.get('latency_ms')} ms{error}"
            )

    def drive(self, base: str, client: httpx.Client) -> int:
        sent = 0
        for doc_id, expected in DOCUMENT_LOOKUPS:
            response = client.get(f"{base}/documents/{doc_id}")
            sent += 1
            self.check(response.status_code == expected, f"/documents/{doc_id}: HTTP {response.status_code} != {expected}")
        print(f"[demo] {len(DOCUMENT_LOOKUPS)} document lookups ({sum(1 for _, s in DOCUMENT_LOOKUPS if s == 404)} expected 404)")

        intents: dict[str, int] = {}
        for i, (message, expected) in enumerate(CHAT_SCRIPT):
            session = f"demo-session-{i % 4 + 1}"
            response = client.post(f"{base}/chat", json={"message": message, "session_id": session})
            sent += 1
            if response.status_code != 200:
                self.check(False, f"/chat {message!r}: HTTP {response.status_code} {response.text[:200]}")
                continue
            body = response.json()
            intents[body.get("intent")] = intents.get(body.get("intent"), 0) + 1
            self.check(body.get("intent") == expected, f"/chat {message!r}: intent {body.get('intent')} != {expected}")
            self.check(len(body.get("sources") or []) == 3, f"/chat {message!r}: sources {body.get('sources')}")
            self.check(bool(body.get("answer")) and body.get("session_id") == session, f"/chat {message!r}: {body}")
        print(f"[demo] {len(CHAT_SCRIPT)} chats answered; intents: {dict(sorted(intents.items()))}")

        response = client.post(f"{base}/chat", json={"message": FAILING_MESSAGE, "session_id": "demo-session-1"})
        sent += 1
        error = response.json().get("error", {}) if response.headers.get("content-type", "").startswith("application/json") else {}
        self.check(
            response.status_code == 502 and error.get("upstream_status") == 503,
            f"model failure: HTTP {response.status_code} {response.text[:200]} (expected 502 with upstream_status 503)",
        )
        print(f"[demo] model failure (fake Gemini 503) answered HTTP {response.status_code}")
        sent += self.tools(base, client)
        sent += self.resilience(base, client)

        response = client.post(
            f"{base}/chat",
            json={"message": CRASH_MESSAGE, "session_id": "demo-session-2"},
            headers={"X-Request-ID": CRASH_REQUEST_ID},
        )
        sent += 1
        try:
            body = response.json()
        except ValueError:
            body = {}
        self.check(
            response.status_code == 500
            and set(body) == {"error", "message", "request_id"}
            and body.get("request_id") == CRASH_REQUEST_ID == response.headers.get("x-request-id"),
            f"unhandled exception: HTTP {response.status_code} {response.text[:200]} "
            f"(expected 500 JSON with request_id {CRASH_REQUEST_ID})",
        )
        print(f"[demo] unhandled exception (#crash) answered HTTP {response.status_code} {response.text[:200]}")
        return sent

    def tools(self, base: str, client: httpx.Client) -> int:
        """A hand-written function-calling loop: model -> tool -> model."""
        response = client.post(f"{base}/chat/tools", json={"message": "Where is my order?", "session_id": "demo-tools"})
        body = response.json() if response.status_code == 200 else {}
        self.check(response.status_code == 200 and body.get("tool_calls") == 1 and "get_order_status" in body.get("answer", ""),
                   f"/chat/tools: HTTP {response.status_code} {response.text[:200]}")
        print(f"[demo] function-calling loop: {body.get('tool_calls')} tool call, answer {body.get('answer', '')[:80]!r}")
        return 1

    def resilience(self, base: str, client: httpx.Client) -> int:
        """A 429 retried by the SDK, then the ``gemini`` breaker opened by three failures and refusing a chat."""
        response = client.post(f"{base}/chat", json={"message": RATE_LIMITED_MESSAGE, "session_id": "demo-session-3"})
        self.check(response.status_code == 200, f"429 then retry: HTTP {response.status_code} {response.text[:200]}")
        print(f"[demo] Gemini answered 429, the SDK retried: HTTP {response.status_code} (one call span, 2 attempts)")
        for i in range(3):
            response = client.post(f"{base}/chat", json={"message": f"{FAILING_MESSAGE} ({i + 1})", "session_id": "demo-session-4"})
            self.check(response.status_code == 502, f"breaker failure {i + 1}: HTTP {response.status_code} {response.text[:200]}")
        response = client.post(f"{base}/chat", json={"message": "Is the model back?", "session_id": "demo-session-4"})
        self.check(response.status_code == 503, f"open breaker: HTTP {response.status_code} {response.text[:200]} (expected 503)")
        print(f"[demo] three model failures opened the 'gemini' circuit breaker; the next chat: HTTP {response.status_code}")
        return 5

    def scrape(self, prom_port: int, client: httpx.Client) -> None:
        url = f"http://127.0.0.1:{prom_port}/metrics"
        text = ""
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            try:
                response = client.get(url, timeout=2.0)
                if response.status_code == 200:
                    text = response.text
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        if not text:
            print(f"[demo] WARNING: no Prometheus endpoint answered on {url}")
            return
        families = sorted({line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")})
        print(f"[demo] Prometheus {url}: {len(families)} metric families")
        shown = 0
        for line in text.splitlines():
            if line.startswith("#") or "_count" not in line:
                continue
            if "request_duration" in line or "server_duration" in line or line.startswith("gen_ai_"):
                print(f"[demo]   {_compact_sample(line)}")
                shown += 1
            if shown >= 8:
                break
        if not shown and families:
            print(f"[demo]   families: {', '.join(families[:8])}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            print(f"[demo] WARNING: the service ignored SIGTERM for {STOP_TIMEOUT_S:.0f}s; killing it")
            self.proc.kill()
            self.proc.wait(timeout=5)
            return
        how = "by SIGTERM" if code in (-signal.SIGTERM, 128 + signal.SIGTERM) else f"with status {code}"
        print(f"[demo] service stopped {how}")

    def report(self) -> bool:
        files = sorted(p for p in self.telemetry_dir.glob("*") if p.is_file()) if self.telemetry_dir.exists() else []
        if files:
            print("[demo] telemetry files: " + ", ".join(f"{p.name} ({p.stat().st_size} B)" for p in files))
        else:
            print(f"[demo] no telemetry files in {self.telemetry_dir}")
        command = [_tool("agentwatch"), "report", str(self.telemetry_dir)]
        env = dict(os.environ)
        if sys.stdout.isatty():  # the report's output is captured here: give it this terminal's width and colours
            env["COLUMNS"] = str(shutil.get_terminal_size().columns)
            if not os.environ.get("NO_COLOR"):
                command.append("--color")
        print(f"[demo] $ agentwatch report {self.telemetry_dir}\n")
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=REPORT_TIMEOUT_S, cwd=str(ROOT),
                                  env=env)
        except subprocess.TimeoutExpired:
            print(f"[demo] `agentwatch report` did not finish within {REPORT_TIMEOUT_S:.0f}s")
            return False
        print(done.stdout.rstrip())
        if done.returncode != 0 or not done.stdout.strip():
            print(f"\n[demo] `agentwatch report` exited {done.returncode}; stderr:\n{done.stderr.strip()[-3000:]}")
            return False
        # The same report as one self-contained page (waterfalls, histograms, cost, errors), next to the files.
        page = self.out_dir / "report.html"
        try:
            done = subprocess.run([_tool("agentwatch"), "report", str(self.telemetry_dir), "--html", str(page)],
                                  capture_output=True, text=True, timeout=REPORT_TIMEOUT_S, cwd=str(ROOT))
        except subprocess.TimeoutExpired:
            print(f"[demo] `agentwatch report --html` did not finish within {REPORT_TIMEOUT_S:.0f}s")
            return False
        if done.returncode != 0 or not page.is_file():
            print(f"\n[demo] `agentwatch report --html` exited {done.returncode}; stderr:\n{done.stderr.strip()[-3000:]}")
            return False
        print(f"\n[demo] HTML report: {page}  (open it in a browser; it needs no network)")
        return True

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        if self.fake is not None:
            self.fake.shutdown()
            self.fake.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=None, help="output directory (default .agentwatch/demo-<time>)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="fake Gemini delay per model call")
    args = parser.parse_args(argv)

    out_dir = (args.dir or ROOT / ".agentwatch" / time.strftime("demo-%Y%m%d-%H%M%S")).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"[demo] output in {out_dir}")
    demo = Demo(out_dir, args.latency_ms)
    served_ok = False
    report_ok = False
    try:
        base, prom_port = demo.start()
        with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
            demo.wait_ready(base, client)
            demo.health(base, client)
            sent = demo.drive(base, client)
            served_ok = not demo.failures
            print(f"[demo] {sent} requests, {len(demo.failures)} unexpected answers")
            demo.scrape(prom_port, client)
        demo.stop()
        report_ok = demo.report()
    except (RuntimeError, httpx.HTTPError) as exc:
        print(f"[demo] ERROR: {exc}")
        print(f"[demo] last lines of {demo.service_log}:\n{_tail(demo.service_log)}")
    except KeyboardInterrupt:
        print("[demo] interrupted")
    finally:
        demo.cleanup()

    print()
    if not served_ok:
        print(f"[demo] FAILED: the service did not answer every request as expected (log: {demo.service_log})")
        for failure in demo.failures[:10]:
            print(f"[demo]   - {failure}")
        return 1
    if not report_ok:
        print(f"[demo] FAILED: no usable telemetry report from {demo.telemetry_dir} (service log: {demo.service_log})")
        return 2
    print(f"[demo] OK: every request answered as expected; telemetry in {demo.telemetry_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
