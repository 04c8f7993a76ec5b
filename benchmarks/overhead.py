"""Overhead of zero-code instrumentation on the demo agent service, five modes in one run.

Modes (alternated within each round, order reversed every other round):

    uninstrumented  python examples/agent_service/app.py
    otel-distro     opentelemetry-instrument with OTEL_PYTHON_DISTRO=distro,
                    OTEL_PYTHON_CONFIGURATOR=configurator: the stock opentelemetry-distro,
                    traces+metrics+logs over OTLP/HTTP, the same contrib instrumentors
                    (agentwatch's own instrumentors disabled)
    agentwatch      opentelemetry-instrument with the default selection (agentwatch),
                    traces+metrics+logs over OTLP/HTTP, no AI targets (no AGENTWATCH_*_TARGETS)
    agentwatch-ai   the same with the demo's AGENTWATCH_{INTENT,RAG,PLANNER,CRITIC}_TARGETS
                    (examples/run_demo.py's AGENT_TARGETS): the app's pipeline steps traced too
    openlit         .venv-openlit/bin/openlit-instrument .venv-openlit/bin/python app.py: OpenLIT
                    (a user's other choice) with its defaults, traces+metrics+events (log records)
                    over OTLP/HTTP, in its own venv (benchmarks/requirements-openlit.lock: the app's
                    runtime needs + openlit, no agentwatch; `make bench` builds it). Its one
                    non-default: OPENLIT_PRICING_JSON, a local price file (the demo model's prices
                    from agentwatch's table) instead of OpenLIT fetching prices from GitHub at start-up.
                    Without the venv the mode is reported as unavailable and skipped

The instrumented modes export to the same local OTLP/HTTP sink (benchmarks/otlp_sink.py).
The app is pinned to one core; the load generator (this process: asyncio, raw HTTP/1.1
keep-alive sockets, fixed concurrency), the fake Gemini and the sink to another. Per run:
requests/s, latency p50/p90/p99, CPU per request of the app process and of the app with
every process it started (utime+stime from /proc, descendants found by walking /proc),
start-up time (process start -> first successful POST /chat), peak RSS (VmHWM) of the app
and summed over it and its descendants, and what reached the sink (spans and log records
per request). The app is stopped with SIGINT, which flushes under every distro. Ratios are
taken against the uninstrumented (and the otel-distro) run of the same round; the tables
show, for each figure, the median and min-max over rounds, and for each ratio the median
and min-max of the per-round ratios. Results go to benchmarks/results/.

    .venv/bin/python benchmarks/overhead.py [--rounds 5] [--duration 10] [--warmup 3]
        [--concurrency 16] [--modes uninstrumented,otel-distro,agentwatch,agentwatch-ai,openlit]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import importlib.metadata as md
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "examples" / "agent_service" / "app.py"
FAKE_GEMINI = ROOT / "examples" / "fake_gemini.py"
SINK = ROOT / "benchmarks" / "otlp_sink.py"
RESULTS = ROOT / "benchmarks" / "results"
BIN = Path(sys.executable).parent
#: OpenLIT's own venv (Makefile: OPENLIT_VENV, synced from benchmarks/requirements-openlit.lock).
OPENLIT_VENV = ROOT / ".venv-openlit"
#: Touched by the Makefile once the venv is exactly the lock (a half-synced venv has none).
OPENLIT_STAMP = ".openlit-installed"
OPENLIT_MAKE = "make .venv-openlit/.openlit-installed"
#: agentwatch's bundled Gemini prices (USD per 1M tokens), the source of OpenLIT's price file.
GEMINI_PRICES = ROOT / "agentwatch" / "instrumentors" / "data" / "gemini_prices.json"

MODES = ("uninstrumented", "otel-distro", "agentwatch", "agentwatch-ai", "openlit")
#: Modes whose spans must carry telemetry.distro.name=agentwatch (the sink reports it).
AGENTWATCH_MODES = ("agentwatch", "agentwatch-ai")
CLK_TCK = os.sysconf("SC_CLK_TCK")

MESSAGES = [
    "How much does the Team plan cost per member?",
    "I was charged twice this month, can I get a refund?",
    "Where do I download my invoices?",
    "The desktop app crashes on start after the update",
    "Boards are stuck and sync is slow",
    "We get HTTP 429 from the API, what is the rate limit?",
    "How do I import tasks from a CSV file?",
    "I forgot my password, how do I reset it?",
    "How do I turn on two-factor authentication?",
    "Do you support SSO with Okta?",
    "How can I invite new members to the workspace?",
    "Hello, how are you?",
    "What keyboard shortcuts are there?",
    "How do I export the whole workspace as JSON?",
    "Is there an offline mode on mobile?",
    "Thanks, goodbye!",
]


# ----------------------------------------------------------------------------- /proc helpers
def proc_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def proc_status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def _stat_fields(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (0: state, 1: ppid, 11-14: utime..cstime)."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    return data[data.rindex(")") + 2 :].split()


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` (children, grandchildren, ...), found by walking /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(_stat_fields(int(entry))[1])
            except (OSError, ValueError, IndexError):  # gone meanwhile
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, stack = [], [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            found.append(child)
            stack.append(child)
    return found


def tree_cpu_seconds(root: int) -> tuple[float, float, int]:
    """(CPU seconds of ``root`` and every live process below it, of ``root`` alone, number of descendants).

    Each process counts utime+stime+cutime+cstime: a child that exits and is reaped moves its
    time into its parent's cutime/cstime, so the difference of two snapshots is the CPU the
    whole tree used between them, children born or reaped in between included (a child
    re-parented away from the tree, e.g. a double-forked daemon, is lost).
    """
    fields = _stat_fields(root)  # read once with the tree, so that the two figures agree
    own = int(fields[11]) + int(fields[12])
    total = own + int(fields[13]) + int(fields[14])
    below = descendants(root)
    for pid in below:
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        total += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return total / CLK_TCK, own / CLK_TCK, len(below)


def tree_peak_rss_kib(root: int) -> int:
    """VmHWM summed over ``root`` and its live descendants (pages shared after fork count in each)."""
    total = 0
    for pid in [root, *descendants(root)]:
        try:
            total += proc_status_kib(pid, "VmHWM")
        except OSError:
            continue
    return total


def core_times(cpu: int) -> tuple[float, float, float]:
    """(busy, steal, total) seconds of one core from /proc/stat."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                v = [int(x) for x in line.split()[1:]]
                idle = v[3] + (v[4] if len(v) > 4 else 0)
                steal = v[7] if len(v) > 7 else 0
                total = sum(v[:8])
                return (total - idle - steal) / CLK_TCK, steal / CLK_TCK, total / CLK_TCK
    return 0.0, 0.0, 0.0


def wait_for_quiet_core(core: int | None, max_wait: float, threshold: float = 0.15) -> float:
    """Wait (bounded) until ``core`` is less than ``threshold`` busy over half a second; return the last load."""
    if core is None or max_wait <= 0:
        return 0.0
    deadline = time.monotonic() + max_wait
    while True:
        b0, _, t0 = core_times(core)
        time.sleep(0.5)
        b1, _, t1 = core_times(core)
        load = (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
        if load < threshold or time.monotonic() >= deadline:
            return load
        time.sleep(0.5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get_json(url: str, timeout: float = 2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


# ----------------------------------------------------------------------------- load generator
def build_requests(host: str, port: int, worker: int) -> list[bytes]:
    out = []
    for i, message in enumerate(MESSAGES):
        body = json.dumps({"message": message, "session_id": f"bench-{worker}-{i % 4}"}).encode()
        head = (
            f"POST /chat HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json\r\nUser-Agent: agentwatch-bench\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        out.append(head + body)
    return out


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    pos = lower.find(b"\r\ncontent-length:")
    if pos >= 0:
        end = lower.index(b"\r\n", pos + 2)
        length = int(lower[pos + 17 : end])
        if length:
            await reader.readexactly(length)
    elif b"transfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


@dataclass
class LoadState:
    measuring: bool = False
    stop: bool = False
    window_end: float = 0.0
    latencies: list = field(default_factory=list)
    completed_total: int = 0
    errors: int = 0
    error_samples: list = field(default_factory=list)


async def worker(host: str, port: int, idx: int, state: LoadState) -> None:
    requests = build_requests(host, port, idx)
    i = idx  # workers start at different messages
    reader = writer = None
    reconnects = 0
    try:
        while not state.stop:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
                writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            request = requests[i % len(requests)]
            i += 1
            t0 = time.perf_counter()
            try:
                writer.write(request)
                status = await read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                state.errors += 1
                if len(state.error_samples) < 5:
                    state.error_samples.append(f"{type(exc).__name__}: {exc}")
                writer.close()
                writer = None
                reconnects += 1
                if reconnects > 50:
                    return
                await asyncio.sleep(0.05)
                continue
            t1 = time.perf_counter()
            state.completed_total += 1
            if status != 200:
                state.errors += 1
                if len(state.error_samples) < 5:
                    state.error_samples.append(f"HTTP {status}")
            elif state.measuring and t1 <= state.window_end:
                state.latencies.append(t1 - t0)
    finally:
        if writer is not None:
            writer.close()


@dataclass
class Window:
    seconds: float
    app_cpu_s: float
    helper_cpu_s: float
    core_busy_s: float
    core_steal_s: float
    tree_cpu_s: float = 0.0  # the app and every process below it (see tree_cpu_seconds)
    children: int = 0  # descendants of the app alive at the end of the window


async def drive_load(
    host: str, port: int, *, concurrency: int, warmup: float, duration: float, app_pid: int,
    helper_pids: list[int], app_core: int | None,
) -> tuple[LoadState, Window]:
    state = LoadState()
    tasks = [asyncio.create_task(worker(host, port, i, state)) for i in range(concurrency)]

    def snapshot():
        busy, steal, _ = core_times(app_core) if app_core is not None else (0.0, 0.0, 0.0)
        tree, app, below = tree_cpu_seconds(app_pid)
        return time.perf_counter(), app, sum(proc_cpu_seconds(p) for p in helper_pids), busy, steal, tree, below

    await asyncio.sleep(warmup)
    start = snapshot()
    state.window_end = start[0] + duration
    state.measuring = True
    await asyncio.sleep(duration)
    end = snapshot()
    state.measuring = False
    state.stop = True
    done, pending = await asyncio.wait(tasks, timeout=30)
    for task in pending:
        task.cancel()
    window = Window(
        seconds=end[0] - start[0], app_cpu_s=end[1] - start[1], helper_cpu_s=end[2] - start[2],
        core_busy_s=end[3] - start[3], core_steal_s=end[4] - start[4], tree_cpu_s=end[5] - start[5],
        children=end[6],
    )
    return state, window


# ----------------------------------------------------------------------------- modes
def agentwatch_instrumentor_names() -> list[str]:
    names = []
    for ep in md.entry_points(group="opentelemetry_instrumentor"):
        dist = getattr(ep, "dist", None)
        if dist is not None and (dist.metadata["Name"] or "").lower() == "agentwatch":
            names.append(ep.name)
    return sorted(names)


def demo_ai_targets() -> dict[str, str]:
    """The demo's AGENTWATCH_{INTENT,RAG,PLANNER,CRITIC}_TARGETS (examples/run_demo.py is their one source)."""
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from run_demo import AGENT_TARGETS
    finally:
        sys.path.remove(str(ROOT / "examples"))
    return dict(AGENT_TARGETS)


def unavailable_reason(mode: str, openlit_venv: Path = OPENLIT_VENV) -> str | None:
    """Why ``mode`` cannot run (None: it can). Only OpenLIT is optional: it runs from its own venv."""
    if mode != "openlit":
        return None
    if not (openlit_venv / OPENLIT_STAMP).exists():
        what = "is not set up" if not openlit_venv.exists() else "is not completely synced from its lock"
        return f"not installed ({openlit_venv} {what}: run `{OPENLIT_MAKE}`, which `make bench` does)"
    for name in ("python", "openlit-instrument"):
        if not (openlit_venv / "bin" / name).exists():
            return f"not runnable ({openlit_venv}/bin/{name} is missing: rebuild it with `rm -rf {openlit_venv}; {OPENLIT_MAKE}`)"
    return None


def openlit_version(openlit_venv: Path = OPENLIT_VENV) -> str | None:
    """The version of ``openlit`` installed in ``openlit_venv`` (None: not there)."""
    for dist in md.distributions(path=[str(p) for p in openlit_venv.glob("lib/python*/site-packages")]):
        if (dist.metadata["Name"] or "").lower() == "openlit":
            return dist.version
    return None


def write_openlit_pricing(directory: Path, prices: Path = GEMINI_PRICES) -> Path:
    """OpenLIT's price file (``{"chat": {model: {"promptPrice", "completionPrice"}}}``, USD per 1K tokens)
    made from agentwatch's Gemini table (USD per 1M): both price the demo's calls alike, and OpenLIT
    does not fetch its table from GitHub at start-up (its default; a network call that would put the
    network's latency, or a 20 s timeout, into the start-up figure)."""
    table = json.loads(prices.read_text(encoding="utf-8"))
    chat = {
        name: {"promptPrice": float(p["input"]) / 1000, "completionPrice": float(p.get("output", 0.0)) / 1000}
        for name, p in table.get("models", table).items()
        if not name.startswith("_") and isinstance(p, dict) and "input" in p
    }
    path = directory / "openlit-pricing.json"
    path.write_text(json.dumps({"chat": chat, "embeddings": {}, "images": {}, "audio": {}}), encoding="utf-8")
    return path


def mode_command_and_env(
    mode: str, base_env: dict, sink_url: str, args, workdir: Path | None = None, openlit_venv: Path = OPENLIT_VENV,
) -> tuple[list[str], dict]:
    """The command line and environment of the demo app under ``mode``.

    ``base_env`` has no OTEL_*/AGENTWATCH_* variables (see :func:`start_app`), so only what is
    set here applies: in particular ``agentwatch`` runs without any AGENTWATCH_*_TARGETS.
    ``workdir`` (the run's directory) holds OpenLIT's price file.
    """
    env = dict(base_env)
    app = [sys.executable, str(APP)]
    if mode == "uninstrumented":
        return app, env
    env.update(
        OTEL_SERVICE_NAME="agent-service",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT=sink_url,
    )
    if args.metric_interval_ms:
        env["OTEL_METRIC_EXPORT_INTERVAL"] = str(args.metric_interval_ms)
    if mode == "openlit":
        # OpenLIT's CLI puts its sitecustomize on PYTHONPATH and execs the given python (one process),
        # which calls openlit.init() from the environment: OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_ENDPOINT
        # (all three signals; http/protobuf unless OTEL_EXPORTER_OTLP_PROTOCOL=grpc). Its defaults
        # otherwise, but for the local price file (see write_openlit_pricing).
        if workdir is None:
            raise ValueError("the openlit mode needs a workdir for its price file")
        env["OPENLIT_PRICING_JSON"] = str(write_openlit_pricing(workdir))
        env.pop("PYTHONPATH", None)  # the app imports from OpenLIT's venv only (and its own directory)
        bin_dir = openlit_venv / "bin"
        return [str(bin_dir / "openlit-instrument"), str(bin_dir / "python"), str(APP)], env
    instrument = str(BIN / "opentelemetry-instrument")
    if mode == "otel-distro":
        env.update(
            OTEL_PYTHON_DISTRO="distro",
            OTEL_PYTHON_CONFIGURATOR="configurator",
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_METRICS_EXPORTER="otlp",
            OTEL_LOGS_EXPORTER="otlp",
        )
        ours = agentwatch_instrumentor_names()
        if ours:  # opentelemetry-instrument loads every installed instrumentor, whatever the distro
            env["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] = ",".join(ours)
    elif mode == "agentwatch":
        env["AGENTWATCH_EXPORT"] = "otlp"
    elif mode == "agentwatch-ai":
        env["AGENTWATCH_EXPORT"] = "otlp"
        env.update(demo_ai_targets())
    else:
        raise ValueError(mode)
    return [instrument] + app, env


@dataclass
class RunResult:
    mode: str
    round: int
    ok: bool
    error: str = ""
    rps: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    cpu_ms_per_req: float = 0.0  # the app process
    tree_cpu_ms_per_req: float = 0.0  # the app and every process below it
    startup_s: float = 0.0
    peak_rss_mib: float = 0.0  # the app process (VmHWM)
    tree_peak_rss_mib: float = 0.0  # VmHWM summed over the app and its descendants
    children: int = 0  # descendants of the app alive at the end of the window
    requests_measured: int = 0
    requests_total: int = 0
    errors: int = 0
    spans_per_req: float = 0.0
    logs_per_req: float = 0.0
    metric_points: int = 0
    export_kib_per_req: float = 0.0
    distro_seen: str = ""
    sdk_seen: str = ""  # telemetry.sdk.name of the trace batches ("openlit" under OpenLIT)
    helper_core_busy: float = 0.0
    app_core_other_busy: float = 0.0
    app_core_steal: float = 0.0
    exit_code: int | None = None
    shutdown_s: float = 0.0


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


def wait_first_answer(proc: subprocess.Popen, port: int, t0: float, timeout: float) -> float:
    body = json.dumps({"message": "hello, are you up?", "session_id": "probe"})
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited with status {proc.returncode} before answering")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("POST", "/chat", body, {"Content-Type": "application/json"})
            if conn.getresponse().status == 200:
                return time.monotonic() - t0
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.01)
    raise RuntimeError(f"no successful POST /chat within {timeout:.0f}s")


def stop_app(proc: subprocess.Popen) -> tuple[int | None, float]:
    if proc.poll() is not None:
        return proc.returncode, 0.0
    t0 = time.monotonic()
    for sig, wait in ((signal.SIGINT, 15), (signal.SIGTERM, 5)):
        proc.send_signal(sig)
        try:
            return proc.wait(timeout=wait), time.monotonic() - t0
        except subprocess.TimeoutExpired:
            continue
    proc.kill()
    proc.wait(timeout=5)
    return proc.returncode, time.monotonic() - t0


def tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def cache_env(mode: str, ctx: dict) -> dict[str, str]:
    """``AGENTWATCH_CACHE_DIR`` for an agentwatch mode: the run's folder ``ctx["agentwatch_cache"]`` (the
    scrubber's compiled database kept between starts like the bytecode, written by the first start),
    ``off`` without one (every start compiles it); nothing for the other modes. Never the user's cache."""
    if mode not in AGENTWATCH_MODES:
        return {}
    cache = ctx.get("agentwatch_cache")
    return {"AGENTWATCH_CACHE_DIR": str(cache) if cache else "off"}


def start_app(
    mode: str, endpoint: str, ctx: dict, workdir: Path, args, extra_env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen, int, float]:
    """The demo app under ``mode`` exporting to ``endpoint``, on a free port, pinned to ``ctx["app_core"]``,
    its database and output (``app.log``) in ``workdir``, without the caller's OTEL_*/AGENTWATCH_* variables
    (``extra_env`` is added last). Returns (process, port, launch time for :func:`wait_first_answer`).

    With ``ctx["pycache"]`` the app keeps its bytecode there (``PYTHONPYCACHEPREFIX``, whatever
    ``PYTHONDONTWRITEBYTECODE`` says), as an installed service has its ``.pyc`` files: see
    :func:`warm_bytecode`; agentwatch's modes keep their compiled scrubber database in
    ``ctx["agentwatch_cache"]`` (:func:`cache_env`)."""
    port = free_port()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_"))}
    base_env.update(
        GEMINI_BASE_URL=ctx["fake_url"], GEMINI_API_KEY="bench-key", AGENT_DB_PATH=str(workdir / "kb.sqlite3"),
        PYTHONUNBUFFERED="1",
    )
    if ctx.get("pycache"):
        base_env.pop("PYTHONDONTWRITEBYTECODE", None)
        base_env["PYTHONPYCACHEPREFIX"] = str(ctx["pycache"])
    base_env.update(cache_env(mode, ctx))
    command, env = mode_command_and_env(mode, base_env, endpoint, args, workdir)
    env.update(extra_env or {})
    command += ["--port", str(port)]
    app_core = ctx["app_core"]
    preexec = (lambda: os.sched_setaffinity(0, {app_core})) if app_core is not None else None
    with open(workdir / "app.log", "wb") as log:
        t0 = time.monotonic()
        proc = subprocess.Popen(
            command, env=env, cwd=str(APP.parent), stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=preexec, start_new_session=True,
        )
    return proc, port, t0


def warm_bytecode(modes: list[str], ctx: dict, args) -> None:
    """Start each mode once, to its first answer, so every module it imports has its bytecode in
    ``ctx["pycache"]`` (and agentwatch its compiled scrubber database in ``ctx["agentwatch_cache"]``)
    before anything is measured. Without it, on a machine that keeps no ``.pyc``
    files (``PYTHONDONTWRITEBYTECODE``, or a venv installed without compiling, as uv does), each start
    compiles every module from source: two thirds of the start-up, and more for the mode that imports
    more modules, which is not what a deployed service pays."""
    for mode in modes:
        base, extra_env = mode_of(mode, ctx)
        workdir = Path(tempfile.mkdtemp(prefix=f"warm-{mode}-", dir=ctx["tmp"]))
        proc = None
        try:
            proc, port, t0 = start_app(base, ctx["sink_url"], ctx, workdir, args, extra_env)
            wait_first_answer(proc, port, t0, args.startup_timeout)
        except Exception as exc:  # noqa: BLE001 - the measured run of this mode will fail and say why
            print(f"  (warming {mode}'s bytecode failed: {exc}; its first start-up compiles from source)")
        finally:
            if proc is not None and proc.poll() is None:
                stop_app(proc)


def identity_error(mode: str, distro_seen: str, sdk_seen: str) -> str | None:
    """Why the telemetry that reached the sink is not from what ``mode`` claims to run (None: it is).

    ``distro_seen``/``sdk_seen``: the comma-separated ``telemetry.distro.name``/``telemetry.sdk.name``
    resource values of the run's trace batches. agentwatch's resource names it as the distro, the stock
    distro's names none; OpenLIT's names no distro and says ``telemetry.sdk.name=openlit``.
    """
    distros, sdks = distro_seen.split(","), sdk_seen.split(",")
    if mode in AGENTWATCH_MODES and "agentwatch" not in distros:
        return f"the agentwatch distro did not run (telemetry.distro.name seen: {distro_seen or 'none'})"
    if mode not in AGENTWATCH_MODES and "agentwatch" in distros:
        return "the agentwatch distro ran in a mode that must not use it"
    if mode == "openlit" and "openlit" not in sdks:
        return f"OpenLIT did not set up tracing (telemetry.sdk.name seen: {sdk_seen or 'none'})"
    if mode != "openlit" and "openlit" in sdks:
        return "OpenLIT ran in a mode that must not use it"
    return None


def _seen_during(before: dict, after: dict, key: str) -> str:
    """The names the sink counted under ``key`` ("distros", "sdks") between two of its /stats, comma-joined."""
    counted, earlier = after.get(key, {}), before.get(key, {})
    return ",".join(sorted(name for name, n in counted.items() if n - earlier.get(name, 0) > 0))


def parse_variant(spec: str) -> tuple[str, str, dict[str, str]]:
    """``LABEL=MODE:VAR=VALUE[;VAR=VALUE]`` -> (label, mode, variables); ValueError says what is wrong."""
    label, _, rest = spec.partition("=")
    mode, _, assignments = rest.partition(":")
    pairs = [a for a in assignments.split(";") if a]
    if not label or not mode or not pairs or any("=" not in a or not a.partition("=")[0] for a in pairs):
        raise ValueError(f"variant {spec!r} is not LABEL=MODE:VAR=VALUE[;VAR=VALUE]")
    return label, mode, dict(a.split("=", 1) for a in pairs)


def mode_of(label: str, ctx: dict) -> tuple[str, dict[str, str]]:
    """The mode a run label starts and the variables it adds: a ``--variant``'s, or the mode itself."""
    return ctx.get("variants", {}).get(label, (label, {}))


def exports_no_spans(extra_env: dict[str, str]) -> bool:
    """A variant that switches the span exporter or the whole SDK off (``OTEL_SDK_DISABLED=true``: the
    instrumentations' wrappers over a no-op API): nothing reaches the sink to check its identity by."""
    return (extra_env.get("OTEL_TRACES_EXPORTER", "").strip() == "none"
            or extra_env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true")


def run_mode(mode: str, rnd: int, ctx: dict, args) -> RunResult:
    """One run of ``mode``: a mode of MODES, or the label of a ``--variant`` (``ctx["variants"]``: its
    mode and the variables it adds)."""
    result = RunResult(mode=mode, round=rnd, ok=False)
    base, extra_env = mode_of(mode, ctx)
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{mode}-", dir=ctx["tmp"]))
    log_path = workdir / "app.log"
    app_core = ctx["app_core"]
    sink_before = http_get_json(ctx["sink_url"] + "/stats")
    proc = None
    try:
        proc, port, t0 = start_app(base, ctx["sink_url"], ctx, workdir, args, extra_env)
        result.startup_s = wait_first_answer(proc, port, t0, args.startup_timeout)
        state, window = asyncio.run(
            drive_load(
                "127.0.0.1", port, concurrency=args.concurrency, warmup=args.warmup, duration=args.duration,
                app_pid=proc.pid, helper_pids=[os.getpid()] + ctx["helper_pids"], app_core=app_core,
            )
        )
        result.peak_rss_mib = proc_status_kib(proc.pid, "VmHWM") / 1024
        result.tree_peak_rss_mib = tree_peak_rss_kib(proc.pid) / 1024
        result.children = window.children
        if proc.poll() is not None:
            raise RuntimeError(f"app died during the load (status {proc.returncode})")
        lat = sorted(state.latencies)
        n = len(lat)
        result.requests_measured = n
        result.requests_total = state.completed_total + 1  # + the start-up probe
        result.errors = state.errors
        result.rps = n / window.seconds if window.seconds else 0.0
        result.p50_ms, result.p90_ms, result.p99_ms = (percentile(lat, q) * 1000 for q in (0.5, 0.9, 0.99))
        result.cpu_ms_per_req = window.app_cpu_s * 1000 / n if n else 0.0
        result.tree_cpu_ms_per_req = window.tree_cpu_s * 1000 / n if n else 0.0
        result.helper_core_busy = window.helper_cpu_s / window.seconds
        if app_core is not None:  # the app's children inherit its core
            result.app_core_other_busy = max(0.0, (window.core_busy_s - window.tree_cpu_s) / window.seconds)
            result.app_core_steal = window.core_steal_s / window.seconds
        result.exit_code, result.shutdown_s = stop_app(proc)
        time.sleep(0.2)
        sink_after = http_get_json(ctx["sink_url"] + "/stats")
        delta = {s: {k: sink_after[s][k] - sink_before[s][k] for k in ("requests", "bytes", "items")} for s in ("traces", "metrics", "logs")}
        total = result.requests_total
        result.spans_per_req = delta["traces"]["items"] / total
        result.logs_per_req = delta["logs"]["items"] / total
        result.metric_points = delta["metrics"]["items"]
        result.export_kib_per_req = sum(d["bytes"] for d in delta.values()) / 1024 / total
        result.distro_seen = _seen_during(sink_before, sink_after, "distros")
        result.sdk_seen = _seen_during(sink_before, sink_after, "sdks")
        if n == 0:
            raise RuntimeError("no request completed in the measured window")
        if state.errors:
            raise RuntimeError(f"{state.errors} failed requests, e.g. {state.error_samples[:3]}")
        if exports_no_spans(extra_env):
            if delta["traces"]["items"]:
                raise RuntimeError("spans reached the OTLP sink although the variant switched the span exporter off")
        elif base != "uninstrumented" and delta["traces"]["items"] == 0:
            raise RuntimeError("no spans reached the OTLP sink (is the distro/configurator installed and working?)")
        elif wrong := identity_error(base, result.distro_seen, result.sdk_seen):
            raise RuntimeError(wrong)
        result.ok = True
    except Exception as exc:  # noqa: BLE001 - one failed mode must not end the benchmark
        result.error = f"{type(exc).__name__}: {exc}"
        log_tail = tail(log_path)
        if log_tail:
            result.error += "\n    app log tail:\n      " + log_tail.replace("\n", "\n      ")
    finally:
        if proc is not None and proc.poll() is None:
            result.exit_code, result.shutdown_s = stop_app(proc)
    return result


# ----------------------------------------------------------------------------- helpers' processes
def start_helper(command: list[str], ready_url: str, name: str) -> subprocess.Popen:
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited: {proc.stderr.read().decode(errors='replace')[-500:]}")
        try:
            http_get_json(ready_url, timeout=1)
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{name} did not start")


def stop_helper(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def start_fake_and_sink(fake_latency_ms: float = 0.0) -> tuple[subprocess.Popen, subprocess.Popen, str, str]:
    """The fake Gemini and the OTLP sink every harness runs the app against: (fake, sink, fake URL, sink
    URL). If the sink does not start, the fake is stopped again before the error propagates."""
    fake_port, sink_port = free_port(), free_port()
    fake_cmd = [sys.executable, str(FAKE_GEMINI), "--port", str(fake_port)]
    if fake_latency_ms:
        fake_cmd += ["--latency-ms", str(fake_latency_ms)]
    fake = start_helper(fake_cmd, f"http://127.0.0.1:{fake_port}/healthz", "fake Gemini")
    try:
        sink = start_helper([sys.executable, str(SINK), "--port", str(sink_port)], f"http://127.0.0.1:{sink_port}/stats", "OTLP sink")
    except BaseException:
        stop_helper(fake)
        raise
    return fake, sink, f"http://127.0.0.1:{fake_port}", f"http://127.0.0.1:{sink_port}"


# ----------------------------------------------------------------------------- summary
#: (label, RunResult field, format, compared as a ratio)
METRICS = [
    ("requests/s", "rps", "{:.0f}", True),
    ("p50 ms", "p50_ms", "{:.0f}", True),
    ("p90 ms", "p90_ms", "{:.0f}", True),
    ("p99 ms", "p99_ms", "{:.0f}", True),
    ("CPU ms/request, app", "cpu_ms_per_req", "{:.2f}", True),
    ("CPU ms/request, all processes", "tree_cpu_ms_per_req", "{:.2f}", True),
    ("peak RSS MiB, app", "peak_rss_mib", "{:.0f}", True),
    ("peak RSS MiB, all processes", "tree_peak_rss_mib", "{:.0f}", True),
    ("start-up s", "startup_s", "{:.2f}", True),
    ("processes below the app", "children", "{:.0f}", False),
    ("spans/request", "spans_per_req", "{:.2f}", False),
    ("log records/request", "logs_per_req", "{:.2f}", False),
    ("export KiB/request", "export_kib_per_req", "{:.2f}", False),
]
RATIO_KEYS = [key for _, key, _, ratio in METRICS if ratio]


def spread(values: list[float]) -> dict:
    """Median, min and max of per-round values (the figures the tables show)."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "rounds": len(values)}


def summarize(runs: list[RunResult], modes: list[str], skipped: dict[str, str] | None = None) -> dict:
    summary: dict = {
        "absolute": {}, "ratio_vs_uninstrumented": {}, "ratio_vs_otel_distro": {}, "failed": {},
        "skipped": dict(skipped or {}), "warnings": [],
    }
    by_mode = {m: [r for r in runs if r.mode == m and r.ok] for m in modes}
    for mode in modes:
        failed = [r for r in runs if r.mode == mode and not r.ok]
        if failed:
            summary["failed"][mode] = [f"round {r.round}: {r.error}" for r in failed]
        if by_mode[mode]:
            summary["absolute"][mode] = {key: spread([getattr(r, key) for r in by_mode[mode]]) for _, key, _, _ in METRICS}

    def ratios(num_mode: str, den_mode: str) -> dict:
        """Per key, the spread of the per-round ratios num/den (rounds where both ran)."""
        out: dict = {}
        for key in RATIO_KEYS:
            values = []
            for r in by_mode.get(num_mode, []):
                base = next((b for b in by_mode.get(den_mode, []) if b.round == r.round), None)
                if base is not None and getattr(base, key):
                    values.append(getattr(r, key) / getattr(base, key))
            if values:
                out[key] = spread(values)
        return out

    for mode in modes:
        if mode != "uninstrumented" and (found := ratios(mode, "uninstrumented")):
            summary["ratio_vs_uninstrumented"][mode] = found
        if mode not in ("uninstrumented", "otel-distro") and (found := ratios(mode, "otel-distro")):
            summary["ratio_vs_otel_distro"][mode] = found

    absolute = summary["absolute"]
    if "agentwatch" in absolute and "agentwatch-ai" in absolute:
        plain, ai = absolute["agentwatch"]["spans_per_req"]["median"], absolute["agentwatch-ai"]["spans_per_req"]["median"]
        if ai <= plain:
            summary["warnings"].append(
                f"agentwatch-ai exported no more spans per request than agentwatch ({ai:.2f} vs {plain:.2f}): "
                "the AI targets did not take effect"
            )
    ok = [r for r in runs if r.ok]
    if any(r.helper_core_busy > 0.85 for r in ok):
        summary["warnings"].append("the load-generator core was over 85% busy in some runs: the app may not have been saturated")
    if any(r.app_core_other_busy > 0.1 for r in ok):
        worst = max(r.app_core_other_busy for r in ok)
        summary["warnings"].append(
            f"something else used over 10% of the app core in some runs (up to {worst:.0%}): the machine is not quiet"
        )
    return summary


def _cell(figures: dict | None, fmt: str) -> str:
    if not figures:
        return "-"
    median = fmt.format(figures["median"])
    if figures["rounds"] < 2:
        return median
    return f"{median} ({fmt.format(figures['min'])}-{fmt.format(figures['max'])})"


def markdown_tables(summary: dict, modes: list[str]) -> str:
    """The summary as Markdown tables: each cell is the median over rounds (min-max)."""
    lines: list[str] = []

    def table(title: str, columns: list[str], rows: list[tuple[str, list[str]]]) -> None:
        lines.extend(["", title, "", "| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"])
        lines.extend(f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows)

    shown = [m for m in modes if m in summary["absolute"]]
    if shown:
        table(
            "Per run, median over rounds (min-max):", shown,
            [(label, [_cell(summary["absolute"][m].get(key), fmt) for m in shown]) for label, key, fmt, _ in METRICS],
        )
    for name, title in (
        ("ratio_vs_uninstrumented", "Ratio to the uninstrumented run of the same round, median of per-round ratios (min-max):"),
        ("ratio_vs_otel_distro", "Ratio to the otel-distro run of the same round, median of per-round ratios (min-max):"),
    ):
        compared = [m for m in modes if m in summary[name]]
        if compared:
            table(
                title, compared,
                [(label, [_cell(summary[name][m].get(key), "{:.2f}") for m in compared])
                 for label, key, _, ratio in METRICS if ratio],
            )
    return "\n".join(lines)


def print_table(summary: dict, modes: list[str]) -> None:
    print(markdown_tables(summary, modes))
    for mode, reason in summary["skipped"].items():
        print(f"\n{mode}: {reason}; skipped")
    for mode, errors in summary["failed"].items():
        print(f"\nFAILED runs of {mode}:")
        for error in errors:
            print("  " + error)
    for warning in summary["warnings"]:
        print(f"\nWARNING: {warning}")


def environment_info(args, app_core, load_core) -> dict:
    def version(name):
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    cpu_model = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu_model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": cpu_model,
        "cpus": sorted(os.sched_getaffinity(0)),
        "app_core": app_core,
        "load_core": load_core,
        "args": vars(args),
        "versions": {n: version(n) for n in (
            "agentwatch", "opentelemetry-sdk", "opentelemetry-distro", "opentelemetry-instrumentation",
            "opentelemetry-instrumentation-fastapi", "fastapi", "uvicorn", "httpx")},
        "openlit_venv": {"path": str(OPENLIT_VENV), "openlit": openlit_version()},
        "agentwatch_instrumentors_disabled_in_otel_distro_mode": agentwatch_instrumentor_names(),
        "agentwatch_ai_targets": demo_ai_targets(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--app-cpu", type=int, default=None, help="core for the app (default: last allowed)")
    parser.add_argument("--load-cpu", type=int, default=None, help="core for load+helpers (default: first allowed)")
    parser.add_argument("--fake-latency-ms", type=float, default=0.0)
    parser.add_argument("--metric-interval-ms", type=int, default=0, help="OTEL_METRIC_EXPORT_INTERVAL for every instrumented mode (default: each distro's own)")
    parser.add_argument("--startup-timeout", type=float, default=60.0)
    parser.add_argument("--quiet-wait", type=float, default=20.0, help="before each run, wait up to this many seconds for the app core to be idle (0: don't)")
    parser.add_argument(
        "--variant", action="append", default=[], metavar="LABEL=MODE:VAR=VALUE[;VAR=VALUE]",
        help="also run MODE with these variables set, reported as LABEL (an ablation: what a part costs is the "
             "difference); a variant with OTEL_TRACES_EXPORTER=none is not checked at the sink (nothing reaches it)",
    )
    parser.add_argument(
        "--no-bytecode-cache", action="store_true",
        help="let the app compile every module from source at each start when this machine keeps no .pyc "
             "files (default: a bytecode cache of the run's own, warmed by one unmeasured start per mode)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(MODES)
    if unknown or not modes:
        parser.error(f"unknown modes {sorted(unknown)}; choose from {', '.join(MODES)}")
    if args.rounds < 1 or args.duration <= 0:
        parser.error("--rounds must be >= 1 and --duration > 0")
    variants: dict[str, tuple[str, dict[str, str]]] = {}
    for spec in args.variant:
        try:
            label, mode, env = parse_variant(spec)
        except ValueError as error:
            parser.error(str(error))
        if mode not in MODES or label in MODES or label in variants:
            parser.error(f"variant {spec!r}: MODE must be one of {', '.join(MODES)} and LABEL a new name")
        variants[label] = (mode, env)
    modes += list(variants)
    skipped = {m: reason for m in modes if (reason := unavailable_reason(variants.get(m, (m,))[0]))}
    for mode, reason in skipped.items():
        print(f"{mode}: {reason}; skipped")
    modes = [m for m in modes if m not in skipped]
    if not modes:
        parser.error("no mode left to run")

    cpus = sorted(os.sched_getaffinity(0))
    app_core = load_core = None
    if len(cpus) >= 2:
        app_core = args.app_cpu if args.app_cpu is not None else cpus[-1]
        load_core = args.load_cpu if args.load_cpu is not None else next(c for c in cpus if c != app_core)
        os.sched_setaffinity(0, {load_core})  # this process and the helpers it starts
        print(f"app pinned to CPU {app_core}; load generator, fake Gemini and OTLP sink on CPU {load_core}")
    else:
        print("WARNING: only one CPU available: no pinning; app and load generator compete, ratios are rough")

    info = environment_info(args, app_core, load_core)
    tmp = tempfile.mkdtemp(prefix="agentwatch-bench-")
    fake = sink = None
    runs: list[RunResult] = []
    try:
        fake, sink, fake_url, sink_url = start_fake_and_sink(args.fake_latency_ms)
        ctx = {
            "tmp": tmp, "fake_url": fake_url, "sink_url": sink_url,
            "app_core": app_core, "helper_pids": [fake.pid, sink.pid], "variants": variants,
            "pycache": None if args.no_bytecode_cache else Path(tmp) / "pycache",
            "agentwatch_cache": None if args.no_bytecode_cache else Path(tmp) / "agentwatch-cache",
        }
        if ctx["pycache"] is not None:
            print("warming each mode's bytecode cache (one start each, not measured)")
            warm_bytecode(modes, ctx, args)
        per_run = args.warmup + args.duration + 3
        print(f"{args.rounds} rounds x {len(modes)} modes, ~{per_run:.0f}s each (~{args.rounds * len(modes) * per_run / 60:.1f} min)"
              f" plus start-up and up to {args.quiet_wait:.0f}s of quiet wait per run")
        for rnd in range(1, args.rounds + 1):
            order = modes if rnd % 2 else list(reversed(modes))
            for mode in order:
                load = wait_for_quiet_core(app_core, args.quiet_wait)
                if load >= 0.15:
                    print(f"  (CPU {app_core} still {load:.0%} busy with other work after {args.quiet_wait:.0f}s; running anyway)")
                r = run_mode(mode, rnd, ctx, args)
                runs.append(r)
                if r.ok:
                    print(f"  round {rnd} {mode:15s} {r.rps:7.1f} req/s  cpu {r.cpu_ms_per_req:5.2f} (all {r.tree_cpu_ms_per_req:5.2f}) ms/req  "
                          f"p50 {r.p50_ms:6.1f}  p90 {r.p90_ms:6.1f} ms  start {r.startup_s:4.2f}s  "
                          f"rss {r.peak_rss_mib:4.0f} (all {r.tree_peak_rss_mib:4.0f}, {r.children} below) MiB  "
                          f"spans/req {r.spans_per_req:4.2f}  logs/req {r.logs_per_req:4.2f}  KiB/req {r.export_kib_per_req:4.2f}  helper core {r.helper_core_busy:4.0%}  other load on app core {r.app_core_other_busy:4.0%}")
                else:
                    print(f"  round {rnd} {mode:15s} FAILED: {r.error}")
    except KeyboardInterrupt:
        print("interrupted; summarising what ran")
    finally:
        stop_helper(fake)
        stop_helper(sink)
        shutil.rmtree(tmp, ignore_errors=True)

    summary = summarize(runs, modes, skipped)
    print_table(summary, modes)

    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"overhead-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"environment": info, "variants": variants, "runs": [asdict(r) for r in runs], "summary": summary},
                              indent=2, default=str))
    print(f"\nresults: {out}")
    return 0 if runs and all(r.ok for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
