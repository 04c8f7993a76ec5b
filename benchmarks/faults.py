"""Fault benchmark (issue 8, item 5): the demo endpoint under agentwatch while its OTLP receiver is healthy,
down, or blackholed, measured in one run and printed as ratios against the healthy run.

Phases, each a fresh ``opentelemetry-instrument`` app (agentwatch, traces+metrics+logs over OTLP/HTTP),
driven by the same fixed-concurrency ``POST /chat`` load as ``benchmarks/overhead.py`` (whose helpers this
reuses: pinning, load generator, fake Gemini and OTLP sink subprocesses):

    healthy     the OTLP sink answers for the whole run
    down        the sink answers during warm-up, then is stopped: an outage of ``--outage`` seconds under
                load; throughput / p99 are measured over the outage and the app's RSS (VmRSS) is sampled
                every 0.5 s, giving the peak and the growth over the outage
    blackhole   the endpoint accepts connections and never answers (exports hang until their timeout)

    .venv/bin/python benchmarks/faults.py [--outage 60] [--duration 20] [--warmup 3] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import (  # noqa: E402
    FAKE_GEMINI,
    RESULTS,
    SINK,
    drive_load,
    free_port,
    percentile,
    proc_status_kib,
    start_app,
    start_helper,
    stop_app,
    stop_helper,
    tail,
    wait_first_answer,
)

PHASES = ("healthy", "down", "blackhole")


class Blackhole:
    """Accepts connections and never reads or answers (bounded: at most 256 held, oldest closed first)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.held.append(conn)
            if len(self.held) > 256:
                self.held.pop(0).close()

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(2)
        for conn in self.held:
            conn.close()
        self.sock.close()


class RssSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.samples.append((time.monotonic(), proc_status_kib(self.pid, "VmRSS")))
            except (OSError, ValueError):
                return


def run_phase(phase: str, ctx: dict, args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"faults-{phase}-", dir=ctx["tmp"]))
    sink = blackhole = None
    if phase in ("healthy", "down"):
        sink_port = free_port()
        sink = start_helper([sys.executable, str(SINK), "--port", str(sink_port), "--no-decode"],
                            f"http://127.0.0.1:{sink_port}/stats", "OTLP sink")
        endpoint = f"http://127.0.0.1:{sink_port}"
    else:
        blackhole = Blackhole()
        endpoint = f"http://127.0.0.1:{blackhole.port}"
    app_core = ctx["app_core"]
    log_path = workdir / "app.log"
    duration = args.outage if phase == "down" else args.duration
    result: dict = {"phase": phase, "seconds": duration}
    proc = None
    sampler = None
    outage_started: list[float] = []  # when the sink was stopped (set by the timer's thread)

    def start_outage() -> None:
        stop_helper(sink)
        outage_started.append(time.monotonic())

    try:
        proc, port, t0 = start_app("agentwatch", endpoint, ctx, workdir, args)
        wait_first_answer(proc, port, t0, 60)
        if phase == "down":  # the outage starts when the measurement does
            threading.Timer(max(0.0, args.warmup - 0.1), start_outage).start()
            sampler = RssSampler(proc.pid)
            sampler.start()
        state, window = asyncio.run(drive_load(
            "127.0.0.1", port, concurrency=args.concurrency, warmup=args.warmup, duration=duration,
            app_pid=proc.pid, helper_pids=[], app_core=app_core,
        ))
        latencies = sorted(state.latencies)
        result.update(
            requests=len(latencies), failed=state.errors, error_samples=state.error_samples,
            rps=len(latencies) / window.seconds, p50_ms=percentile(latencies, 0.5) * 1000,
            p99_ms=percentile(latencies, 0.99) * 1000, peak_rss_mib=proc_status_kib(proc.pid, "VmHWM") / 1024,
        )
        if sampler is not None:
            sampler.stopped.set()
            sampler.join(2)
            # Only the samples taken once the sink was down (the sampler starts with the warm-up).
            outage = [kib for at, kib in sampler.samples if outage_started and at >= outage_started[0]]
            if outage:
                result.update(rss_start_mib=outage[0] / 1024, rss_peak_mib=max(outage) / 1024,
                              rss_end_mib=outage[-1] / 1024, rss_growth_mib=(max(outage) - outage[0]) / 1024)
    finally:
        if sampler is not None:
            sampler.stopped.set()
        if proc is not None:
            code, exit_s = stop_app(proc)
            result.update(exit_code=code, exit_s=exit_s)
        stop_helper(sink)
        if blackhole is not None:
            blackhole.close()
    warnings = [l for l in log_path.read_text(errors="replace").splitlines() if l.startswith("agentwatch ")]
    result["agentwatch_lines"] = warnings
    if result.get("requests") is None:
        print(tail(log_path))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outage", type=float, default=60.0, help="seconds the receiver is down under load")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds of the healthy/blackhole runs")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--metric-interval-ms", type=int, default=0)
    args = parser.parse_args(argv)

    cpus = sorted(os.sched_getaffinity(0))
    app_core = None
    if len(cpus) >= 2:
        app_core = cpus[-1]
        os.sched_setaffinity(0, {next(c for c in cpus if c != app_core)})
        print(f"app pinned to CPU {app_core}; load generator, fake Gemini and OTLP sink on another core")
    tmp = tempfile.mkdtemp(prefix="agentwatch-faults-")
    fake = None
    results: list[dict] = []
    try:
        fake_port = free_port()
        fake = start_helper([sys.executable, str(FAKE_GEMINI), "--port", str(fake_port)],
                            f"http://127.0.0.1:{fake_port}/healthz", "fake Gemini")
        ctx = {"tmp": tmp, "fake_url": f"http://127.0.0.1:{fake_port}", "app_core": app_core}
        for phase in PHASES:
            print(f"-- {phase} ({args.outage if phase == 'down' else args.duration:g} s measured)", flush=True)
            results.append(run_phase(phase, ctx, args))
    finally:
        stop_helper(fake)

    by = {r["phase"]: r for r in results}
    healthy = by["healthy"]
    print(f"\n{'phase':<10} {'requests':>9} {'failed':>7} {'req/s':>8} {'x healthy':>10} {'p99 ms':>8} {'x healthy':>10}")
    for r in results:
        print(f"{r['phase']:<10} {r['requests']:>9} {r['failed']:>7} {r['rps']:>8.1f} {r['rps'] / healthy['rps']:>10.3f} "
              f"{r['p99_ms']:>8.1f} {r['p99_ms'] / healthy['p99_ms']:>10.3f}")
    down = by["down"]
    if "rss_peak_mib" in down:
        print(f"\nRSS over the {args.outage:g} s outage under load: start {down['rss_start_mib']:.1f} MiB, "
              f"peak {down['rss_peak_mib']:.1f} MiB, end {down['rss_end_mib']:.1f} MiB, "
              f"growth {down['rss_growth_mib']:.1f} MiB")
    for r in results:
        print(f"exit after SIGINT ({r['phase']}): {r.get('exit_s', 0):.2f} s; agentwatch lines: {len(r['agentwatch_lines'])}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"faults-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    print(f"\nresults: {out}")
    return 0 if all(r["failed"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
