"""Instructions per request of the demo app under each mode, counted by callgrind.

Wall-clock and CPU-time figures (``overhead.py``) need a quiet core; instruction counts do not:
valgrind's callgrind counts the instructions the app's process executes (every thread: the event
loop and the export threads), the same for the same code and inputs whatever else the machine runs.
So this is the figure to iterate on while the machine is shared, and ``overhead.py`` on a quiet
machine is the figure to quote. Instructions are not cycles (cache misses, branch mispredictions
and system calls count as one instruction or are not counted), so read the ratios as the CPU work
each mode adds, not as time.

Per mode: the app is started under ``valgrind --tool=callgrind --instr-atstart=no`` (not counting
until told), warmed up with ``--warmup`` requests, then ``callgrind_control -i on``, N sequential
``POST /chat`` requests on one keep-alive connection (the messages of ``overhead.py``) and SIGINT,
counted to the process's end, so the shutdown's export of what is still queued is in. Two runs,
N = ``--requests`` and a quarter of it; the figure is the difference over the difference in requests,
so what does not grow with the requests (the shutdown, the warm-up's queued items) cancels out.

Under valgrind the app serves a request or two per second, so the batch processors' clocks (spans
every 5 s, log records every 1 s) would export one or two items at a time and charge each request
a whole HTTP export: a service at full speed sends full batches of 512. So every mode runs with the
batch schedule delays and the metric export interval at one hour: spans and log records leave in
full batches or at shutdown (their export counts), metric points only at shutdown (once per run:
their export cancels out; recording them counts).

    .venv/bin/python benchmarks/instructions.py                       # 4 modes, ~10 min
    .venv/bin/python benchmarks/instructions.py --modes otel-distro,agentwatch-ai --requests 100

Modes are those of ``overhead.py`` (same environments, same fake Gemini and OTLP sink).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import overhead

#: valgrind's closing line per process: "==PID== Collected : N" (the events counted while instrumenting)
_HOUR_MS = "3600000"
TOTALS = re.compile(rb"^==\d+== Collected : (\d+)", re.M)


def _post(conn: http.client.HTTPConnection, i: int) -> None:
    body = json.dumps({"message": overhead.MESSAGES[i % len(overhead.MESSAGES)], "session_id": f"ir-{i % 4}"})
    conn.request("POST", "/chat", body=body, headers={"Content-Type": "application/json", "User-Agent": "agentwatch-bench"})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"POST /chat answered {response.status}")


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True, timeout=120)


def _count_once(mode: str, requests: int, ctx: dict, args: argparse.Namespace, extra_env: dict[str, str]) -> int:
    """Instructions of ``requests`` requests of ``mode`` plus the export of all they made and the shutdown."""
    workdir = Path(tempfile.mkdtemp(prefix=f"ir-{mode}-", dir=ctx["tmp"]))
    port = overhead.free_port()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_"))}
    base_env.update(
        GEMINI_BASE_URL=ctx["fake_url"], GEMINI_API_KEY="bench-key", AGENT_DB_PATH=str(workdir / "kb.sqlite3"),
        PYTHONUNBUFFERED="1",
    )
    base_env.update(overhead.cache_env(mode, ctx))
    command, env = overhead.mode_command_and_env(mode, base_env, ctx["sink_url"], argparse.Namespace(metric_interval_ms=0))
    # Batches as a service at full speed sends them: full (512) or at shutdown, never by the clock, which
    # under valgrind's ~50x slowdown would export a record or two at a time (see the module docstring).
    env.update(OTEL_METRIC_EXPORT_INTERVAL=_HOUR_MS, OTEL_BSP_SCHEDULE_DELAY=_HOUR_MS, OTEL_BLRP_SCHEDULE_DELAY=_HOUR_MS)
    env.update(extra_env)
    valgrind = [
        "valgrind", "--tool=callgrind", "--trace-children=yes", "--instr-atstart=no",
        f"--callgrind-out-file={workdir}/callgrind.out.%p", "--dump-instr=no",
    ]
    with open(workdir / "app.log", "wb") as log:
        proc = subprocess.Popen(
            valgrind + command + ["--port", str(port)], env=env, cwd=str(overhead.APP.parent),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        overhead.wait_first_answer(proc, port, time.monotonic(), args.startup_timeout)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        for i in range(args.warmup):
            _post(conn, i)
        _control(proc.pid, "-i", "on")
        for i in range(requests):
            _post(conn, args.warmup + i)
        conn.close()
        proc.send_signal(signal.SIGINT)  # counted to the end: the shutdown exports what is queued
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    total = sum(int(n) for n in TOTALS.findall((workdir / "app.log").read_bytes()))
    if not total:
        raise RuntimeError(f"{mode}: no callgrind totals; log: {overhead.tail(workdir / 'app.log')}")
    return total


def count_mode(mode: str, ctx: dict, args: argparse.Namespace, extra_env: dict[str, str] | None = None, label: str = "") -> dict:
    """Instructions per request of ``mode`` (plus ``extra_env``): two runs, ``--requests`` and a quarter of
    it, subtracted, so what does not grow with the requests (the shutdown, the warm-up's queued items, the
    last partial batch) cancels out."""
    many, few = args.requests, max(1, args.requests // 4)
    t0 = time.monotonic()
    high = _count_once(mode, many, ctx, args, extra_env or {})
    low = _count_once(mode, few, ctx, args, extra_env or {})
    return {
        "mode": label or mode, "env": extra_env or {}, "requests": [few, many], "instructions": [low, high],
        "per_request": (high - low) / (many - few), "seconds": time.monotonic() - t0,
    }


#: Requests of the longer run from which ratios are quoted: two or three full garbage collections in it.
RATIO_REQUESTS = 800


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="uninstrumented,otel-distro,agentwatch,agentwatch-ai")
    parser.add_argument("--requests", type=int, default=80, help="requests of the longer run (the shorter has a quarter)")
    parser.add_argument(
        "--variant", action="append", default=[], metavar="LABEL=MODE:VAR=VALUE[;VAR=VALUE]",
        help="also count MODE with these variables set (an ablation: what a component costs is the difference)",
    )
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--startup-timeout", type=float, default=240.0)
    parser.add_argument("--out", type=Path, default=overhead.RESULTS)
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        parser.error("valgrind (with callgrind_control) is needed: apt-get install valgrind")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    tmp = tempfile.mkdtemp(prefix="agentwatch-ir-")
    fake = sink = None
    results = []
    try:
        fake, sink, fake_url, sink_url = overhead.start_fake_and_sink()
        ctx = {"tmp": tmp, "fake_url": fake_url, "sink_url": sink_url, "agentwatch_cache": Path(tmp) / "agentwatch-cache"}
        runs = [(m, {}, m) for m in modes]
        for spec in args.variant:
            label, mode, env = overhead.parse_variant(spec)
            runs.append((mode, env, label))
        for mode, env, label in runs:
            r = count_mode(mode, ctx, args, env, label)
            results.append(r)
            print(f"{label:15s} {r['per_request'] / 1e6:8.2f} M instructions/request  ({r['seconds']:.0f} s)", flush=True)
    finally:
        overhead.stop_helper(fake)
        overhead.stop_helper(sink)
        shutil.rmtree(tmp, ignore_errors=True)
    base = {r["mode"]: r["per_request"] for r in results}
    if "otel-distro" in base:
        for r in results:
            line = f"{r['mode']:15s} x{r['per_request'] / base['otel-distro']:.3f} of otel-distro"
            if "uninstrumented" in base:
                line += f", x{r['per_request'] / base['uninstrumented']:.3f} of uninstrumented"
            print(line)
    if args.requests < RATIO_REQUESTS:
        # A full collection comes every ~450 requests on the demo: a shorter window holds one or none.
        print(f"note: with --requests {args.requests} a figure can move by ~1 M per request with a full garbage "
              f"collection in the window or not; quote ratios from --requests {RATIO_REQUESTS} (benchmarks/README.md)")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"instructions-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
