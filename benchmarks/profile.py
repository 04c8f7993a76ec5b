"""Where the CPU of one request goes: the demo service under load, sampled by py-spy, per component.

For each mode (``uninstrumented``, ``otel-distro`` and ``agentwatch`` as in ``overhead.py``, and
``agentwatch-agents``: agentwatch with the demo's intent / RAG / planner / critic targets, as
``examples/run_demo.py`` sets them) the app is started pinned to one core, loaded by
``overhead.py``'s closed-loop generator, and after the warm-up sampled for ``--duration`` seconds
by ``py-spy record --format speedscope --threads --nonblocking`` (idle threads not sampled). Over
the same window the script reads the CPU time of every thread of the app from
``/proc/<pid>/task/<tid>/stat`` and counts the requests answered.

Each sample is given to the innermost frame that matches a component rule (``RULES``: module
path prefixes, a few function names and source lines); frames of generic modules (``json``,
``re``, ``uuid``, ``threading``, ``contextlib`` ...) match none, so their time goes to the
component that called them. Within a thread, a component's CPU is the thread's CPU times its
share of the thread's samples; summed over threads and divided by the requests answered, that
gives CPU ms per request.

py-spy counts a thread as active when the kernel says it is runnable, which on a shared core
includes waiting for the CPU. Two corrections: a run of identical consecutive stacks of a thread
counts once (a thread computing moves on within one sampling interval; one that stays put was
preempted, and the wait would otherwise weigh like computing), and a sample whose innermost frame
is a blocking call (``IDLE``: a condition wait, ``epoll``, a socket read) is not counted.

py-spy sees Python frames only (its ``--native`` needs the blocking mode, where every thread looks
busy): time in C goes to the Python line that called it. Where that line is a wrapper's call of
C code (the dbapi cursor proxy's ``query_method(...)``, the app's ``conn.execute(...)``, the OTLP
exporters' ``SerializeToString()``), a rule on the source line gives the time to the callee
(``sqlite3 (C engine)``, ``OTLP encoding``). The garbage collector has no frame of its own: its
time goes to whatever allocation triggered it.

    .venv/bin/python benchmarks/profile.py                  # 4 modes x 3 rounds x 20 s, ~6 min
    .venv/bin/python benchmarks/profile.py --modes otel-distro,agentwatch --rounds 2 --duration 10
    .venv/bin/python benchmarks/profile.py --analyse benchmarks/results/profile-A.json profile-B.json
    .venv/bin/python benchmarks/profile.py --analyse ... --detail "span start/end"   # which frames

``--analyse`` re-classifies the stacks of earlier runs (kept next to their JSON; several JSONs
are pooled) without running anything; the ``.speedscope.json`` files open in speedscope as flame
graphs. ``--gil`` samples only the thread holding the GIL (py-spy ``--gil``): C code that
releases it (SQLite, socket calls) then drops out of the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import linecache
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

import overhead as oh  # noqa: E402
from run_demo import AGENT_TARGETS  # noqa: E402

ROOT = oh.ROOT
PY_SPY = oh.BIN / "py-spy"
MODES = ("uninstrumented", "otel-distro", "agentwatch", "agentwatch-agents")
INSTRUMENTATION, APP_STACK, RUNTIME = "instrumentation", "app and its stack", "runtime / unattributed"


# ----------------------------------------------------------------------------- components
@dataclass(frozen=True)
class Rule:
    component: str
    group: str
    prefixes: tuple[str, ...]  # of the normalised path (see normalise): "opentelemetry/sdk/trace/", "stdlib/asyncio/"
    function: str | None = None  # regex on the frame's function name (search)
    line: str | None = None  # regex on the frame's source line (search): a wrapper's call of C code
    threads: str = "any"  # "any", "request" (the event loop and other app threads) or "export" (the SDK's workers)


_I, _A, _R = INSTRUMENTATION, APP_STACK, RUNTIME
_ATTRIBUTE_FUNCTIONS = (
    r"(^|\.)(set_attributes?|add_event|record_exception|set_status|update_name|add_link|_new_events|_new_links)$"
)
_PROCESSORS, _EXPORT = "processors (on_start/on_end, batch queues)", "export: batching, HTTP, exporters"
_BATCHING = ("opentelemetry/sdk/trace/export/", "opentelemetry/sdk/_shared_internal/")

# Order matters only between rules that can match the same frame: the first rule matching a frame names
# its component, and the innermost frame that any rule matches names the sample's.
RULES: tuple[Rule, ...] = (
    # --- C code called straight from a Python line (py-spy shows no frame for it)
    Rule("sqlite3 (C engine)", _A, ("opentelemetry/instrumentation/dbapi/",), line=r"\bquery_method\("),
    Rule("sqlite3 (C engine)", _A, ("agentwatch/instrumentors/sqlite3.py", "examples/agent_service/knowledge.py"),
         line=r"\.(execute|executemany|executescript|fetchall|fetchone|fetchmany|cursor)\("),
    Rule("OTLP encoding", _I, ("opentelemetry/exporter/otlp/proto/",), line=r"Serialize\w*ToString\("),
    # --- export threads: reading finished spans and records is the work of whoever reads them (the
    # encoder, the scrubber): the data model's frames are transparent there ("" = no component)
    Rule("", _I, ("opentelemetry/sdk/trace/__init__.py", "opentelemetry/trace/", "opentelemetry/attributes/",
                  "opentelemetry/sdk/util/", "opentelemetry/sdk/resources/", "opentelemetry/sdk/_logs/_internal/__init__.py",
                  "opentelemetry/_logs/", "opentelemetry/util/"), threads="export"),
    Rule(_EXPORT, _I, ("opentelemetry/sdk/_logs/_internal/export/",), threads="export"),
    # shared helpers of the HTTP instrumentations: their time belongs to the instrumentation calling them
    Rule("", _I, ("opentelemetry/instrumentation/_semconv.py", "opentelemetry/instrumentation/utils.py",
                  "opentelemetry/util/http/", "wrapt/")),
    # --- server layers
    Rule("ASGI middleware (contrib)", _I, ("opentelemetry/instrumentation/asgi/",)),
    Rule("FastAPI instrumentor (contrib)", _I, ("opentelemetry/instrumentation/fastapi/",)),
    Rule("FastAPI's own OTel layer", _I, ("fastapi/telemetry/",)),
    Rule("agentwatch web layer", _I, ("agentwatch/web/", "agentwatch/instrumentors/web.py")),
    # --- the tracing SDK and API
    Rule("attributes & events", _I, ("opentelemetry/sdk/trace/__init__.py",), _ATTRIBUTE_FUNCTIONS),
    Rule("attributes & events", _I, ("opentelemetry/attributes/",)),
    Rule(_PROCESSORS, _I, ("opentelemetry/sdk/trace/__init__.py",), r"MultiSpanProcessor\."),
    Rule(_PROCESSORS, _I, _BATCHING + ("agentwatch/distro/rollup.py",), threads="request"),
    Rule(_EXPORT, _I, _BATCHING, threads="export"),
    Rule("context & propagation", _I, ("opentelemetry/context/", "opentelemetry/propagate/", "opentelemetry/propagators/",
                                       "opentelemetry/baggage/", "opentelemetry/trace/propagation/")),
    Rule("attributes & events", _I, ("agentwatch/distro/tracing.py",), r"_LeanAttributes\.|" + _ATTRIBUTE_FUNCTIONS),
    Rule("span start/end", _I, ("opentelemetry/sdk/trace/", "opentelemetry/trace/", "opentelemetry/util/_decorator.py",
                                "opentelemetry/sdk/util/", "agentwatch/distro/tracing.py")),
    # --- metrics and logs
    Rule("metrics: recording", _I, ("opentelemetry/sdk/metrics/", "opentelemetry/metrics/", "agentwatch/distro/lean_metrics.py"),
         threads="request"),
    Rule("metrics: collection (reader thread)", _I, ("opentelemetry/sdk/metrics/", "opentelemetry/metrics/"), threads="export"),
    Rule("logs: OTel handler & records", _I, ("opentelemetry/sdk/_logs/", "opentelemetry/_logs/", "opentelemetry/_events/",
                                              "opentelemetry/instrumentation/logging/")),
    Rule("logs: agentwatch formatter & context filter", _I, ("agentwatch/distro/logs.py", "agentwatch/distro/context.py")),
    # --- client instrumentations
    Rule("sqlite3 instrumentation", _I, ("opentelemetry/instrumentation/dbapi/", "opentelemetry/instrumentation/sqlite3/",
                                         "agentwatch/instrumentors/sqlite3.py")),
    Rule("httpx instrumentation", _I, ("opentelemetry/instrumentation/httpx/",)),
    Rule("Gemini instrumentor", _I, ("agentwatch/instrumentors/gemini/", "agentwatch/instrumentors/gemini.py",
                                     "agentwatch/instrumentors/_genai_common.py")),
    Rule("agent instrumentors (intent/RAG/planner)", _I, ("agentwatch/instrumentors/",)),
    # --- the export path
    Rule("scrubbing", _I, ("agentwatch/distro/scrub/", "agentwatch/distro/scrubbing.py", "agentwatch/distro/_hints.py",
                           "hyperscan/")),
    Rule("OTLP encoding", _I, ("opentelemetry/exporter/otlp/proto/common/", "opentelemetry/proto/", "google/protobuf/",
                               "agentwatch/distro/otlp_encoding.py")),
    Rule("export: agentwatch exporter guards", _I, ("agentwatch/distro/exporters.py",)),
    Rule(_EXPORT, _I, ("opentelemetry/exporter/", "requests/", "urllib3/")),
    Rule(_EXPORT, _I, ("stdlib/http/client.py", "stdlib/email/", "stdlib/socket.py"), threads="export"),
    # --- whatever else of the instrumentation
    Rule("other OTel / instrumentation helpers", _I, ("opentelemetry/", "wrapt/")),
    Rule("other agentwatch", _I, ("agentwatch/",)),
    # --- the app and its stack
    Rule("app code (examples/agent_service)", _A, ("examples/agent_service/",)),
    Rule("sqlite3 (C engine)", _A, ("stdlib/sqlite3/",)),
    Rule("uvicorn + h11", _A, ("uvicorn/", "h11/")),
    Rule("FastAPI + Starlette", _A, ("fastapi/", "starlette/")),
    Rule("pydantic (app models, genai types)", _A, ("pydantic/", "pydantic_core/")),
    Rule("google-genai SDK", _A, ("google/genai/", "google/auth/")),
    Rule("httpx + httpcore + anyio", _A, ("httpx/", "httpx2/", "httpcore/", "httpcore2/", "anyio/", "sniffio/", "h2/", "idna/")),
    Rule("stdlib logging (console)", _A, ("stdlib/logging/",)),
    Rule("asyncio event loop & sockets", _A, ("stdlib/asyncio/", "stdlib/selectors.py")),
)
# A sample whose innermost frame is one of these blocking calls is a thread that py-spy saw runnable
# (woken, waiting for the core or the GIL) rather than computing: it is not counted. (path prefix,
# function regex, source line regex)
IDLE: tuple[tuple[str, str, str], ...] = (
    ("stdlib/threading.py", r"\.(wait|acquire|join|_wait_for_tstate_lock)$", r"\.acquire\("),
    ("stdlib/selectors.py", r"\.select$", r"\.(poll|select|control)\("),
    ("stdlib/socket.py", r"\.(readinto|accept)$", r"\.(recv_into|_accept)\("),
    ("urllib3/util/wait.py", r"", r"\b(poll|select)\("),
)
UNATTRIBUTED = "unattributed (no rule matched)"
UNSAMPLED = "threads without samples"
EXPORT_THREADS = ("OtelBatchSpanRecordProcessor", "OtelBatchLogRecordProcessor", "OtelPeriodicExportingMetricReader")
THREAD_LABELS = {
    "MainThread": "event loop (MainThread)",
    "OtelBatchSpanRecordProcessor": "span export thread",
    "OtelBatchLogRecordProcessor": "log export thread",
    "OtelPeriodicExportingMetricReader": "metric reader thread",
}
COMPONENT_GROUPS = {r.component: r.group for r in RULES if r.component} | {UNATTRIBUTED: _R, UNSAMPLED: _R}
COMPONENT_ORDER = list(dict.fromkeys([r.component for r in RULES if r.component] + [UNATTRIBUTED, UNSAMPLED]))

_STDLIB = re.compile(r"/lib/python3\.\d+/(.*)$")
_SITE = "/site-packages/"
_THREAD = re.compile(r'^Thread (\d+|0x[0-9a-fA-F]+)(?: "(.*)")?$')


def normalise(path: str) -> str:
    """A frame's file as the rules see it: package-relative, ``stdlib/...``, or repo-relative."""
    if _SITE in path:
        return path.split(_SITE, 1)[1]
    root = str(ROOT) + "/"
    if path.startswith(root):
        return path[len(root):]
    m = _STDLIB.search(path)
    if m:
        return "stdlib/" + m.group(1)
    if path.startswith("<frozen"):
        return "stdlib/" + path
    return path


def thread_kind(name: str) -> str:
    return "export" if name in EXPORT_THREADS else "request"


@dataclass(frozen=True)
class Frame:
    function: str
    path: str  # as py-spy gave it (--full-filenames)
    line: int

    @property
    def short(self) -> str:
        return f"{self.function} ({normalise(self.path)}:{self.line})"


_cache: dict[tuple[Frame, str], str | None] = {}


def frame_component(frame: Frame, kind: str) -> str | None:
    """The component ``frame`` names in a thread of ``kind``; None: no rule (or a transparent one) matches."""
    key = (frame, kind)
    if key in _cache:
        return _cache[key]
    path = normalise(frame.path)
    found = None
    for rule in RULES:
        if rule.threads != "any" and rule.threads != kind:
            continue
        if not path.startswith(rule.prefixes) or (rule.function and not re.search(rule.function, frame.function)):
            continue
        if rule.line and not re.search(rule.line, linecache.getline(frame.path, frame.line)):
            continue
        found = rule.component or None
        break
    _cache[key] = found
    return found


_idle_cache: dict[Frame, bool] = {}


def is_idle(frame: Frame) -> bool:
    """Is ``frame`` (a sample's innermost) a blocking call (see ``IDLE``)?"""
    if frame not in _idle_cache:
        path = normalise(frame.path)
        _idle_cache[frame] = any(
            path.startswith(prefix) and re.search(function, frame.function)
            and re.search(line, linecache.getline(frame.path, frame.line))
            for prefix, function, line in IDLE
        )
    return _idle_cache[frame]


def classify(frames: list[Frame], kind: str) -> tuple[str, str]:
    """(component, the frame that decided it) of one sample, frames outermost first."""
    for frame in reversed(frames):
        component = frame_component(frame, kind)
        if component is not None:
            return component, frame.short
    return UNATTRIBUTED, frames[-1].short if frames else "?"


@dataclass
class ThreadSamples:
    name: str
    samples: int = 0  # counted (after collapsing, without the idle ones)
    recorded: int = 0  # as py-spy recorded them
    idle: int = 0  # innermost frame a blocking call (see IDLE)
    components: Counter = field(default_factory=Counter)
    deciding: dict = field(default_factory=lambda: defaultdict(Counter))  # component -> Counter(frame)


def parse_speedscope(path: Path, collapse: bool = True) -> dict[int, ThreadSamples]:
    """py-spy ``--format speedscope`` output (samples in time order, per thread), by OS thread id.

    With ``collapse``, a run of identical consecutive stacks (same frames, same lines) counts once. A
    running Python thread moves on within one sampling interval; a thread that stays put is nearly
    always one that was runnable but off the CPU (py-spy counts it as active): on a shared core one
    preemption would otherwise weigh as much as all the samples of its wait.
    """
    data = json.loads(path.read_text())
    frames = [Frame(f.get("name", "?"), f.get("file") or "", int(f.get("line") or 0)) for f in data["shared"]["frames"]]
    threads: dict[int, ThreadSamples] = {}
    for profile in data["profiles"]:
        m = _THREAD.match(profile.get("name", ""))
        tid, name = (int(m.group(1), 0), m.group(2) or "?") if m else (0, profile.get("name", "?"))
        entry = threads.setdefault(tid, ThreadSamples(name))
        kind = thread_kind(name)
        previous = None
        for stack in profile["samples"]:
            entry.recorded += 1
            key = tuple(stack)
            if collapse and key == previous:
                continue
            previous = key
            body = [frames[i] for i in stack if not frames[i].function.startswith("thread (")]
            if body and is_idle(body[-1]):
                entry.idle += 1
                continue
            component, deciding = classify(body, kind)
            entry.samples += 1
            entry.components[component] += 1
            entry.deciding[component][deciding] += 1
    return threads


def thread_label(name: str) -> str:
    if name in THREAD_LABELS:
        return THREAD_LABELS[name]
    return "other threads (" + re.sub(r"[-_]?\d+.*$", "", name or "?") + ")"


# ----------------------------------------------------------------------------- one profiled run
def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (utime+stime) of each live thread of ``pid``."""
    out: dict[int, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out[int(tid)] = _task_cpu(pid, int(tid))
        except (OSError, ValueError):
            continue
    return out


def _task_cpu(pid: int, tid: int) -> float:
    with open(f"/proc/{pid}/task/{tid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / oh.CLK_TCK


@dataclass
class ProfiledRun:
    mode: str
    round: int
    ok: bool = False
    error: str = ""
    raw: str = ""
    window_s: float = 0.0
    requests: int = 0
    errors: int = 0
    app_cpu_s: float = 0.0
    cpu_ms_per_req: float = 0.0
    rps: float = 0.0
    thread_cpu_s: dict = field(default_factory=dict)  # tid -> CPU seconds over the window
    spy_samples: int = 0
    spy_errors: int = 0
    app_core_other_busy: float = 0.0
    helper_core_busy: float = 0.0
    spans_per_req: float = 0.0  # what reached the sink over the app's life / all requests it answered
    logs_per_req: float = 0.0
    requests_total: int = 0


def spy_command(pid: int, out: Path, args) -> list[str]:
    command = [str(PY_SPY), "record", "--pid", str(pid), "--duration", str(int(args.duration)), "--rate", str(args.rate),
               "--format", "speedscope", "--threads", "--full-filenames", "--nonblocking", "--output", str(out)]
    if args.gil:
        command.append("--gil")
    return command


async def profile_under_load(port: int, proc: subprocess.Popen, out: Path, ctx: dict, args, run: ProfiledRun) -> None:
    state = oh.LoadState()
    tasks = [asyncio.create_task(oh.worker("127.0.0.1", port, i, state)) for i in range(args.concurrency)]
    app_core = ctx["app_core"]
    helpers = [os.getpid()] + ctx["helper_pids"]

    def snapshot():
        busy = oh.core_times(app_core)[0] if app_core is not None else 0.0
        return (time.perf_counter(), oh.proc_cpu_seconds(proc.pid), thread_cpu(proc.pid), state.completed_total,
                state.errors, busy, sum(oh.proc_cpu_seconds(p) for p in helpers))

    try:
        await asyncio.sleep(args.warmup)
        spy = await asyncio.create_subprocess_exec(
            *spy_command(proc.pid, out, args), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output: list[str] = []
        start = None
        while True:  # the window opens when py-spy says it samples
            line = (await asyncio.wait_for(spy.stdout.readline(), 30)).decode(errors="replace")
            if not line:
                break
            output.append(line)
            if "Sampling process" in line:
                start = snapshot()
                break
        rest = (await asyncio.wait_for(spy.stdout.read(), args.duration + 60)).decode(errors="replace")
        end = snapshot()
        await spy.wait()
        output.append(rest)
        text = "".join(output)
        if start is None or spy.returncode != 0:
            raise RuntimeError(f"py-spy failed (status {spy.returncode}): {text.strip()[-600:]}")
        m = re.search(r"Samples: (\d+) Errors: (\d+)", text)
        if m:
            run.spy_samples, run.spy_errors = int(m.group(1)), int(m.group(2))
        run.window_s = end[0] - start[0]
        run.app_cpu_s = end[1] - start[1]
        run.thread_cpu_s = {str(t): round(end[2][t] - start[2].get(t, 0.0), 4) for t in end[2]}
        run.requests = end[3] - start[3]
        run.errors = end[4] - start[4]
        run.rps = run.requests / run.window_s if run.window_s else 0.0
        run.cpu_ms_per_req = run.app_cpu_s * 1000 / run.requests if run.requests else 0.0
        if app_core is not None and run.window_s:
            run.app_core_other_busy = max(0.0, (end[5] - start[5] - run.app_cpu_s) / run.window_s)
        run.helper_core_busy = (end[6] - start[6]) / run.window_s if run.window_s else 0.0
    finally:
        state.stop = True
        done, pending = await asyncio.wait(tasks, timeout=30)
        for task in pending:
            task.cancel()
        run.requests_total = state.completed_total + 1  # + the start-up probe


VARIANTS: dict[str, tuple[str, dict[str, str]]] = {}  # --variant LABEL -> (mode, extra variables)


def mode_env(mode: str) -> tuple[str, dict[str, str]]:
    """overhead.py's mode and the extra environment of ``mode`` (a mode of MODES or a ``--variant``)."""
    if mode in VARIANTS:
        base, extra = VARIANTS[mode]
        base_mode, base_env = mode_env(base)
        return base_mode, {**base_env, **extra}
    if mode == "agentwatch-agents":
        return "agentwatch", dict(AGENT_TARGETS)
    return mode, {}


def run_mode(mode: str, rnd: int, ctx: dict, args, raw_dir: Path) -> ProfiledRun:
    run = ProfiledRun(mode=mode, round=rnd)
    workdir = Path(tempfile.mkdtemp(prefix=f"profile-{mode}-", dir=ctx["tmp"]))
    raw = raw_dir / f"{mode}-r{rnd}.speedscope.json"
    run.raw = raw.name
    base_mode, extra_env = mode_env(mode)
    proc = None
    sink_before = oh.http_get_json(ctx["sink_url"] + "/stats")
    try:
        proc, port, t0 = oh.start_app(base_mode, ctx["sink_url"], ctx, workdir, args, extra_env=extra_env)
        oh.wait_first_answer(proc, port, t0, args.startup_timeout)
        asyncio.run(profile_under_load(port, proc, raw, ctx, args, run))
        if proc.poll() is not None:
            raise RuntimeError(f"app died during the load (status {proc.returncode})")
        if run.requests == 0:
            raise RuntimeError("no request answered in the window")
        if run.errors:
            raise RuntimeError(f"{run.errors} failed requests")
        oh.stop_app(proc)  # SIGINT: both distros flush
        time.sleep(0.2)
        sink_after = oh.http_get_json(ctx["sink_url"] + "/stats")
        run.spans_per_req = (sink_after["traces"]["items"] - sink_before["traces"]["items"]) / run.requests_total
        run.logs_per_req = (sink_after["logs"]["items"] - sink_before["logs"]["items"]) / run.requests_total
        run.ok = True
    except Exception as exc:  # noqa: BLE001 - one failed mode must not end the profile
        run.error = f"{type(exc).__name__}: {exc}"
        log_tail = oh.tail(workdir / "app.log")
        if log_tail:
            run.error += "\n    app log tail:\n      " + log_tail.replace("\n", "\n      ")
    finally:
        if proc is not None:
            oh.stop_app(proc)
    return run


# ----------------------------------------------------------------------------- analysis
@dataclass
class ModeProfile:
    mode: str
    requests: int = 0
    app_cpu_ms: float = 0.0
    samples: int = 0
    recorded: int = 0
    idle: int = 0
    component_ms: Counter = field(default_factory=Counter)
    thread_ms: Counter = field(default_factory=Counter)
    thread_component_ms: dict = field(default_factory=lambda: defaultdict(Counter))
    deciding: dict = field(default_factory=lambda: defaultdict(Counter))

    def per_request(self, ms: float) -> float:
        return ms / self.requests if self.requests else 0.0

    def share(self, ms: float) -> float:
        return ms / self.app_cpu_ms if self.app_cpu_ms else 0.0


def analyse(runs: list[ProfiledRun], raw_dir: Path, collapse: bool = True) -> dict[str, ModeProfile]:
    """Pool the runs of each mode: component CPU = thread CPU x the component's share of that thread's samples."""
    profiles: dict[str, ModeProfile] = {}
    for run in runs:
        if not run.ok:
            continue
        profile = profiles.setdefault(run.mode, ModeProfile(run.mode))
        threads = parse_speedscope(raw_dir / run.raw, collapse=collapse)
        profile.requests += run.requests
        profile.app_cpu_ms += run.app_cpu_s * 1000
        accounted = 0.0
        for tid_text, cpu_s in run.thread_cpu_s.items():
            ms = cpu_s * 1000
            accounted += ms
            sampled = threads.get(int(tid_text))
            if sampled is None or sampled.samples == 0:
                profile.component_ms[UNSAMPLED] += ms
                profile.thread_ms["threads without samples"] += ms
                continue
            label = thread_label(sampled.name)
            profile.thread_ms[label] += ms
            profile.samples += sampled.samples
            profile.recorded += sampled.recorded
            profile.idle += sampled.idle
            for component, n in sampled.components.items():
                part = ms * n / sampled.samples
                profile.component_ms[component] += part
                profile.thread_component_ms[label][component] += part
            for component, frames in sampled.deciding.items():
                profile.deciding[component].update(frames)
        # CPU of threads that ended inside the window (process total minus the live threads' sum)
        gone = run.app_cpu_s * 1000 - accounted
        if gone > 0.5:
            profile.component_ms[UNSAMPLED] += gone
            profile.thread_ms["threads without samples"] += gone
    return profiles


def group_totals(profile: ModeProfile) -> dict[str, float]:
    totals: Counter = Counter()
    for component, ms in profile.component_ms.items():
        totals[COMPONENT_GROUPS.get(component, _R)] += ms
    return totals


def component_table(profiles: dict[str, ModeProfile], modes: list[str]) -> str:
    shown = [m for m in modes if m in profiles]
    head = "| component | " + " | ".join(f"{m} % | {m} ms/req" for m in shown) + " |"
    rule = "|---|" + "---:|---:|" * len(shown)
    lines = [head, rule]
    for group in (INSTRUMENTATION, APP_STACK, RUNTIME):
        components = [c for c in COMPONENT_ORDER if COMPONENT_GROUPS.get(c) == group
                      and any(profiles[m].component_ms.get(c, 0) > 0 for m in shown)]
        components.sort(key=lambda c: -max(profiles[m].per_request(profiles[m].component_ms.get(c, 0)) for m in shown))
        for component in components:
            cells = []
            for m in shown:
                ms = profiles[m].component_ms.get(component, 0.0)
                cells.append(f"{profiles[m].share(ms) * 100:.1f} | {profiles[m].per_request(ms):.3f}" if ms else "- | -")
            lines.append(f"| {component} | " + " | ".join(cells) + " |")
        cells = []
        for m in shown:
            ms = group_totals(profiles[m]).get(group, 0.0)
            cells.append(f"**{profiles[m].share(ms) * 100:.1f}** | **{profiles[m].per_request(ms):.3f}**")
        lines.append(f"| **{group}, total** | " + " | ".join(cells) + " |")
    cells = [f"100 | **{profiles[m].per_request(profiles[m].app_cpu_ms):.3f}**" for m in shown]
    lines.append("| **app process CPU (from /proc)** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def thread_table(profiles: dict[str, ModeProfile], modes: list[str]) -> str:
    shown = [m for m in modes if m in profiles]
    labels = list(dict.fromkeys(l for m in shown for l, _ in profiles[m].thread_ms.most_common()))
    lines = ["| thread | " + " | ".join(f"{m} % | {m} ms/req" for m in shown) + " |", "|---|" + "---:|---:|" * len(shown)]
    for label in labels:
        cells = []
        for m in shown:
            ms = profiles[m].thread_ms.get(label, 0.0)
            cells.append(f"{profiles[m].share(ms) * 100:.1f} | {profiles[m].per_request(ms):.3f}" if ms else "- | -")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def export_thread_breakdown(profiles: dict[str, ModeProfile], modes: list[str], top: int = 4) -> str:
    """What each non-event-loop thread spends its CPU on, per mode (the top components)."""
    lines = []
    for m in modes:
        if m not in profiles:
            continue
        p = profiles[m]
        for label, components in sorted(p.thread_component_ms.items()):
            if label.startswith("event loop"):
                continue
            total = sum(components.values())
            parts = ", ".join(f"{c} {ms / total * 100:.0f} %" for c, ms in components.most_common(top))
            lines.append(f"- {m}, {label} ({p.per_request(total):.3f} ms/req): {parts}")
    return "\n".join(lines)


def detail(profiles: dict[str, ModeProfile], component: str, top: int = 15) -> str:
    lines = []
    for m, p in profiles.items():
        frames = p.deciding.get(component)
        if not frames:
            continue
        total = sum(frames.values())
        lines.append(f"{m}: {component}: {total} samples; the frames that decided it:")
        for frame, n in frames.most_common(top):
            lines.append(f"  {n:6d} {n / total * 100:5.1f} %  {frame}")
    return "\n".join(lines) or f"no samples of {component!r}"


def report(runs: list[ProfiledRun], raw_dir: Path, modes: list[str], args) -> dict:
    profiles = analyse(runs, raw_dir, collapse=args.collapse)
    print()
    print("Per-run figures:")
    for r in runs:
        if r.ok:
            print(f"  {r.mode:18s} round {r.round}: {r.requests} requests in {r.window_s:.1f} s ({r.rps:.0f}/s), "
                  f"{r.cpu_ms_per_req:.2f} CPU ms/req, py-spy {r.spy_samples} samples ({r.spy_errors} errors), "
                  f"other load on the app core {r.app_core_other_busy:.0%}, load core {r.helper_core_busy:.0%}, "
                  f"{r.spans_per_req:.2f} spans and {r.logs_per_req:.2f} log records per request")
        else:
            print(f"  {r.mode:18s} round {r.round}: FAILED: {r.error}")
    for m in modes:
        if m in profiles:
            p = profiles[m]
            print(f"  {m}: {p.samples} samples counted of {p.recorded} recorded ({p.idle} in a blocking call"
                  + (", runs of identical consecutive stacks counted once)" if args.collapse else ")"))
    print("\nWhere the CPU goes (% of the app process's CPU; CPU ms per request), pooled over rounds:\n")
    print(component_table(profiles, modes))
    print("\nBy thread:\n")
    print(thread_table(profiles, modes))
    print("\nThe threads besides the event loop:\n")
    print(export_thread_breakdown(profiles, modes))
    for component in args.detail or []:
        print()
        print(detail(profiles, component))
    return {
        m: {
            "requests": p.requests, "app_cpu_ms": p.app_cpu_ms, "samples_counted": p.samples, "samples_recorded": p.recorded,
            "samples_idle": p.idle,
            "cpu_ms_per_req": p.per_request(p.app_cpu_ms),
            "components_ms_per_req": {c: p.per_request(ms) for c, ms in p.component_ms.most_common()},
            "groups_ms_per_req": {g: p.per_request(ms) for g, ms in group_totals(p).items()},
            "threads_ms_per_req": {t: p.per_request(ms) for t, ms in p.thread_ms.most_common()},
        }
        for m, p in profiles.items()
    }


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=20, help="sampled seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--collapse", action=argparse.BooleanOptionalAction, default=True,
                        help="count a run of identical consecutive stacks of a thread once (see parse_speedscope)")
    parser.add_argument("--gil", action="store_true", help="only samples of the thread holding the GIL")
    parser.add_argument("--metric-interval-ms", type=int, default=0)
    parser.add_argument("--startup-timeout", type=float, default=60.0)
    parser.add_argument("--quiet-wait", type=float, default=10.0)
    parser.add_argument("--app-cpu", type=int, default=None)
    parser.add_argument("--load-cpu", type=int, default=None)
    parser.add_argument("--out", type=Path, default=oh.RESULTS)
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL=MODE:VAR=VALUE[;VAR=VALUE]",
                        help="also profile MODE with these variables set, as LABEL (as overhead.py's --variant)")
    parser.add_argument("--analyse", type=Path, nargs="+", metavar="JSON",
                        help="re-classify (and pool) the stacks of earlier runs; run nothing")
    parser.add_argument("--detail", action="append", metavar="COMPONENT", help="print the frames that decided COMPONENT")
    args = parser.parse_args(argv)
    # As `make` does: logfire (in the dev group for the scrubber benchmark) must not hook pydantic in the app.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "logfire-plugin")

    if args.analyse:
        runs, modes = [], []
        for path in args.analyse:  # pooled: each run's stacks are in the folder named like its JSON
            saved = json.loads(path.read_text())
            for r in saved["runs"]:
                run = ProfiledRun(**r)
                run.raw = str(path.with_suffix("") / run.raw)
                runs.append(run)
            modes += [m for m in saved["environment"]["modes"] if m not in modes]
        report(runs, Path("."), modes, args)
        return 0

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if set(modes) - set(MODES) or not modes:
        parser.error(f"choose modes from {', '.join(MODES)}")
    for spec in args.variant:
        label, base, extra = oh.parse_variant(spec)
        if base not in MODES or label in MODES or label in VARIANTS:
            parser.error(f"--variant {spec!r}: a new label, then one of {', '.join(MODES)}")
        VARIANTS[label] = (base, extra)
        modes.append(label)
    if not PY_SPY.exists():
        parser.error(f"{PY_SPY} not found: install the dev group (make .venv/.agentwatch-installed)")
    cpus = sorted(os.sched_getaffinity(0))
    app_core = load_core = None
    if len(cpus) >= 2:
        app_core = args.app_cpu if args.app_cpu is not None else cpus[-1]
        load_core = args.load_cpu if args.load_cpu is not None else next(c for c in cpus if c != app_core)
        os.sched_setaffinity(0, {load_core})  # this process, py-spy and the helpers
        print(f"app pinned to CPU {app_core}; load generator, py-spy, fake Gemini and OTLP sink on CPU {load_core}")
    else:
        print("WARNING: one CPU: no pinning; py-spy and the load compete with the app")

    stamp = time.strftime("%Y%m%d-%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    raw_dir = args.out / f"profile-{stamp}"
    raw_dir.mkdir()
    info = oh.environment_info(args, app_core, load_core)
    info["modes"] = modes
    info["py_spy"] = subprocess.run([str(PY_SPY), "--version"], capture_output=True, text=True).stdout.strip()
    tmp = tempfile.mkdtemp(prefix="agentwatch-profile-")
    fake = sink = None
    runs: list[ProfiledRun] = []
    try:
        fake, sink, fake_url, sink_url = oh.start_fake_and_sink()
        ctx = {"tmp": tmp, "fake_url": fake_url, "sink_url": sink_url,
               "app_core": app_core, "helper_pids": [fake.pid, sink.pid]}
        per_run = args.warmup + args.duration + 4
        total_min = args.rounds * len(modes) * per_run / 60
        print(f"{args.rounds} rounds x {len(modes)} modes, ~{per_run:.0f} s each (~{total_min:.1f} min)")
        for rnd in range(1, args.rounds + 1):
            for mode in (modes if rnd % 2 else list(reversed(modes))):
                load = oh.wait_for_quiet_core(app_core, args.quiet_wait)
                if load >= 0.15:
                    print(f"  (CPU {app_core} still {load:.0%} busy with other work; running anyway)")
                run = run_mode(mode, rnd, ctx, args, raw_dir)
                runs.append(run)
                status = f"{run.requests} req, {run.cpu_ms_per_req:.2f} CPU ms/req" if run.ok else f"FAILED: {run.error}"
                print(f"  round {rnd} {mode:18s} {status}")
    except KeyboardInterrupt:
        print("interrupted; analysing what ran")
    finally:
        oh.stop_helper(fake)
        oh.stop_helper(sink)
        shutil.rmtree(tmp, ignore_errors=True)

    summary = report(runs, raw_dir, modes, args)
    out = args.out / f"profile-{stamp}.json"
    saved = {"environment": info, "runs": [asdict(r) for r in runs], "summary": summary}
    out.write_text(json.dumps(saved, indent=2, default=str))
    print(f"\nresults: {out} (raw py-spy stacks in {raw_dir}/; re-classify with --analyse {out})")
    return 0 if runs and all(r.ok for r in runs) else 1


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
