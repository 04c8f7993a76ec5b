"""Start-up of the demo agent service per mode: process start -> first successful ``POST /chat``.

The modes, the app, the fake Gemini and the OTLP sink are those of ``overhead.py`` (imported as a
module). Wall-clock start-up on a shared machine moves by +-0.5 s on ~2.3 s, so beside it this
reports figures that do not depend on the machine's load:

- ``wall``: per round, each mode started in turn (order reversed every other round), app pinned to
  one core as in ``overhead.py``: the seconds to the first answer, and the CPU seconds
  (utime+stime of the app process, ``opentelemetry-instrument``'s exec included) used by then.
- ``--importtime``: the app run once per mode with ``PYTHONPROFILEIMPORTTIME=1`` (``-X importtime``):
  modules imported by the first answer, how many of them are agentwatch's, and the sum of their
  own import times (times vary with load; the counts do not).
- ``--cprofile``: the app run once per mode under cProfile (``_startup_child.py``: the
  auto-instrumentation's ``initialize()`` and the app, main thread) until the first answer:
  Python function calls, a count that only changes when the code does.
- ``--callgrind``: the app run once per mode under valgrind's callgrind, counting to the first
  answer (``callgrind_control -i off`` then): instructions of every thread, the best figure to
  compare on a loaded machine (each run takes minutes).

    .venv/bin/python benchmarks/startup.py                              # 5 rounds, wall + CPU
    .venv/bin/python benchmarks/startup.py --rounds 3 --importtime --cprofile
    .venv/bin/python benchmarks/startup.py --rounds 0 --callgrind --modes otel-distro,agentwatch-ai

Ratios are against otel-distro (of the same round for ``wall``).
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import overhead

CHILD = Path(__file__).resolve().parent / "_startup_child.py"
DEFAULT_MODES = "uninstrumented,otel-distro,agentwatch,agentwatch-ai"
_HOUR_MS = "3600000"
#: ``-X importtime`` lines: "import time: self [us] | cumulative | imported package" (the header too)
IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", re.M)
COLLECTED = re.compile(rb"^==\d+== Collected : (\d+)", re.M)


def _workdir(ctx: dict, mode: str, kind: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"startup-{kind}-{mode}-", dir=ctx["tmp"]))


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        overhead.stop_app(proc)


def wall_once(mode: str, ctx: dict, args: argparse.Namespace) -> dict:
    """Seconds and app CPU seconds from process start to the first successful POST /chat."""
    workdir = _workdir(ctx, mode, "wall")
    proc = None
    try:
        proc, port, t0 = overhead.start_app(mode, ctx["sink_url"], ctx, workdir, args)
        wall = overhead.wait_first_answer(proc, port, t0, args.startup_timeout)
        cpu = overhead.proc_cpu_seconds(proc.pid)
        return {"wall_s": wall, "cpu_s": cpu}
    except Exception as exc:
        raise RuntimeError(f"{mode}: {exc}\n{overhead.tail(workdir / 'app.log')}") from exc
    finally:
        _stop(proc)


def importtime_once(mode: str, ctx: dict, args: argparse.Namespace) -> dict:
    """Modules imported by the first answer (``-X importtime`` of every Python process of the launch)."""
    workdir = _workdir(ctx, mode, "importtime")
    proc = None
    try:
        proc, port, t0 = overhead.start_app(mode, ctx["sink_url"], ctx, workdir, args, {"PYTHONPROFILEIMPORTTIME": "1"})
        overhead.wait_first_answer(proc, port, t0, args.startup_timeout)
        time.sleep(0.2)  # stderr is unbuffered; let the last lines land
        text = (workdir / "app.log").read_text(errors="replace")
    finally:
        _stop(proc)
    modules = [(int(m[1]), m[4]) for m in IMPORT_LINE.finditer(text)]
    ours = sorted((name, us) for us, name in modules if name == "agentwatch" or name.startswith("agentwatch."))
    return {
        "modules": len(modules),
        "agentwatch_modules": len(ours),
        "import_self_ms": sum(us for us, _ in modules) / 1000,
        "agentwatch_self_ms": sum(us for _, us in ours) / 1000,
        "agentwatch_modules_us": dict(ours),
        "modules_us": {name: us for us, name in modules},
    }


def cprofile_once(mode: str, ctx: dict, args: argparse.Namespace) -> dict:
    """Python function calls of the main thread to the first answer (``_startup_child.py``)."""
    workdir = _workdir(ctx, mode, "cprofile")
    out = workdir / "startup.prof"
    port = overhead.free_port()
    command, env = _mode_env(mode, ctx, workdir, args)
    instrumented = command[0] != sys.executable
    # What opentelemetry-instrument would set: the app's folder on PYTHONPATH (its sitecustomize runs in the child).
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(overhead.APP.parent), os.environ.get("PYTHONPATH")) if p)
    command = [sys.executable, str(CHILD), str(out), "1" if instrumented else "0", str(overhead.APP), "--port", str(port)]
    proc = None
    try:
        with open(workdir / "app.log", "wb") as log:
            t0 = time.monotonic()
            proc = subprocess.Popen(command, env=env, cwd=str(overhead.APP.parent), stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        overhead.wait_first_answer(proc, port, t0, args.startup_timeout)
        proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 60
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = pstats.Stats(str(out))
        if args.keep_profiles:
            args.keep_profiles.mkdir(parents=True, exist_ok=True)
            shutil.copy(out, args.keep_profiles / f"startup-{mode}.prof")
    except Exception as exc:
        raise RuntimeError(f"{mode}: {exc}\n{overhead.tail(workdir / 'app.log')}") from exc
    finally:
        _stop(proc)
    result: dict = {"calls": stats.total_calls, "primitive_calls": stats.prim_calls}  # type: ignore[attr-defined]
    entries = stats.stats  # type: ignore[attr-defined]
    by_package: dict[str, int] = {}
    for (path, _, _), v in entries.items():
        by_package[_package(path)] = by_package.get(_package(path), 0) + v[1]
    result["calls_by_package"] = dict(sorted(by_package.items(), key=lambda item: -item[1]))
    if args.top:
        top = sorted(entries.items(), key=lambda item: item[1][3], reverse=True)
        result["top_cumulative"] = [
            {"function": f"{path}:{line}({name})", "calls": v[1], "cumulative_s": round(v[3], 4)}
            for (path, line, name), v in top if "agentwatch" in path
        ][: args.top]
    return result


def _package(path: str) -> str:
    """Where a profiled function lives: ``agentwatch``, a site-packages distribution's top folder, ``stdlib``, ..."""
    if "/site-packages/" in path:
        return path.split("/site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/agentwatch/" in path and "/site-packages/" not in path:
        return "agentwatch"
    if path.startswith("<frozen importlib") or "importlib" in path:
        return "importlib"
    if str(overhead.APP.parent) in path:
        return "app"
    return "stdlib" if path.startswith(("/", "<frozen")) else path


def callgrind_once(mode: str, ctx: dict, args: argparse.Namespace) -> dict:
    """Instructions (every thread) from process start to the first answer, counted by callgrind."""
    workdir = _workdir(ctx, mode, "callgrind")
    port = overhead.free_port()
    command, env = _mode_env(mode, ctx, workdir, args)
    # Under valgrind's slowdown the batch and metric clocks would fire during start-up: an hour, as instructions.py.
    env.update(OTEL_METRIC_EXPORT_INTERVAL=_HOUR_MS, OTEL_BSP_SCHEDULE_DELAY=_HOUR_MS, OTEL_BLRP_SCHEDULE_DELAY=_HOUR_MS)
    valgrind = ["valgrind", "--tool=callgrind", "--trace-children=yes", f"--callgrind-out-file={workdir}/callgrind.out.%p",
                "--dump-instr=no"]
    proc = None
    try:
        with open(workdir / "app.log", "wb") as log:
            t0 = time.monotonic()
            proc = subprocess.Popen(valgrind + command + ["--port", str(port)], env=env, cwd=str(overhead.APP.parent),
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        overhead.wait_first_answer(proc, port, t0, args.callgrind_timeout)
        subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)], check=True, capture_output=True, timeout=300)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=900)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
    if args.keep_profiles:  # for callgrind_annotate --inclusive=yes: where the instructions went
        args.keep_profiles.mkdir(parents=True, exist_ok=True)
        for out in workdir.glob("callgrind.out.*"):
            shutil.copy(out, args.keep_profiles / f"startup-{mode}.{out.name}")
    totals = [int(n) for n in COLLECTED.findall((workdir / "app.log").read_bytes())]
    if not totals:
        raise RuntimeError(f"{mode}: no callgrind totals; log: {overhead.tail(workdir / 'app.log')}")
    return {"instructions": sum(totals), "per_process": totals}  # (opentelemetry-instrument's exec: one process, two images)


def _mode_env(mode: str, ctx: dict, workdir: Path, args: argparse.Namespace) -> tuple[list[str], dict]:
    """``overhead.start_app``'s command (without ``--port``) and environment, for a launch done here."""
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_"))}
    base_env.update(GEMINI_BASE_URL=ctx["fake_url"], GEMINI_API_KEY="bench-key",
                    AGENT_DB_PATH=str(workdir / "kb.sqlite3"), PYTHONUNBUFFERED="1")
    base_env.update(overhead.cache_env(mode, ctx))
    return overhead.mode_command_and_env(mode, base_env, ctx["sink_url"], args)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} [{min(values):.3f}-{max(values):.3f}]" if values else "-"


def summarize(modes: list[str], wall: list[dict], single: dict[str, dict[str, dict]]) -> str:
    lines = []
    if wall:
        lines += ["| mode | start-up s | CPU s to first answer | x otel-distro (start-up) | x otel-distro (CPU) |",
                  "|---|---|---|---|---|"]
        for mode in modes:
            runs = [r for r in wall if r["mode"] == mode]
            ratios_wall, ratios_cpu = [], []
            for r in runs:
                base = next((b for b in wall if b["mode"] == "otel-distro" and b["round"] == r["round"]), None)
                if base:
                    ratios_wall.append(r["wall_s"] / base["wall_s"])
                    ratios_cpu.append(r["cpu_s"] / base["cpu_s"])
            lines.append(f"| {mode} | {spread([r['wall_s'] for r in runs])} | {spread([r['cpu_s'] for r in runs])} "
                         f"| {spread(ratios_wall)} | {spread(ratios_cpu)} |")
        lines.append("")
    for kind, keys in (("importtime", ("modules", "agentwatch_modules", "import_self_ms", "agentwatch_self_ms")),
                       ("cprofile", ("calls", "primitive_calls")), ("callgrind", ("instructions",))):
        found = single.get(kind)
        if not found:
            continue
        lines += [f"| {kind} | " + " | ".join(keys) + " | x otel-distro |", "|---" * (len(keys) + 2) + "|"]
        base = found.get("otel-distro", {}).get(keys[0])
        for mode in modes:
            r = found.get(mode)
            if r is None:
                continue
            ratio = f"{r[keys[0]] / base:.3f}" if base else "-"
            lines.append(f"| {mode} | " + " | ".join(f"{r[k]:,.0f}" if isinstance(r[k], int) else f"{r[k]:.1f}" for k in keys)
                         + f" | {ratio} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="wall-clock rounds (0: none)")
    parser.add_argument("--modes", default=DEFAULT_MODES)
    parser.add_argument("--importtime", action="store_true", help="one -X importtime run per mode")
    parser.add_argument("--cprofile", action="store_true", help="one cProfile run per mode (function calls)")
    parser.add_argument("--top", type=int, default=0, help="with --cprofile: keep agentwatch's N costliest functions")
    parser.add_argument("--keep-profiles", type=Path, default=None, help="with --cprofile / --callgrind: keep each mode's profile here (pstats, callgrind.out)")
    parser.add_argument("--callgrind", action="store_true", help="one callgrind run per mode (instructions; minutes each)")
    parser.add_argument(
        "--bytecode", choices=("cached", "none"), default="cached",
        help="cached: the apps write and reuse .pyc files (PYTHONPYCACHEPREFIX in a temporary folder, after one "
             "unmeasured start per mode), as an installed service does; none: as this process's environment says "
             "(PYTHONDONTWRITEBYTECODE=1 and no __pycache__: every module compiled from source at every start)",
    )
    parser.add_argument("--startup-timeout", type=float, default=60.0)
    parser.add_argument("--callgrind-timeout", type=float, default=900.0)
    parser.add_argument("--quiet-wait", type=float, default=5.0, help="before each wall run, wait up to this long for the app core to idle")
    parser.add_argument("--metric-interval-ms", type=int, default=0)
    parser.add_argument("--out", type=Path, default=overhead.RESULTS)
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(overhead.MODES)
    if unknown:
        parser.error(f"unknown modes {sorted(unknown)}")
    modes = [m for m in modes if overhead.unavailable_reason(m) is None]
    if args.callgrind and (shutil.which("valgrind") is None or shutil.which("callgrind_control") is None):
        parser.error("--callgrind needs valgrind (with callgrind_control)")
    cpus = sorted(os.sched_getaffinity(0))
    app_core = cpus[-1] if len(cpus) >= 2 else None
    if app_core is not None:
        os.sched_setaffinity(0, {c for c in cpus if c != app_core})
    tmp = tempfile.mkdtemp(prefix="agentwatch-startup-")
    fake = sink = None
    wall: list[dict] = []
    single: dict[str, dict[str, dict]] = {}
    try:
        fake, sink, fake_url, sink_url = overhead.start_fake_and_sink()
        ctx = {"tmp": tmp, "fake_url": fake_url, "sink_url": sink_url,
               "app_core": app_core}
        if args.bytecode == "cached":
            # Inherited by every launch (start_app copies this environment): .pyc files written once, in a
            # folder of our own (nothing written into the venv or the checkout), then reused.
            os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
            os.environ["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
            ctx["agentwatch_cache"] = Path(tmp) / "agentwatch-cache"  # agentwatch's compiled scrubber database, alike
            for mode in modes:
                wall_once(mode, ctx, args)
            if args.cprofile:  # its child script and the auto-instrumentation's sitecustomize, compiled too
                for mode in modes:
                    cprofile_once(mode, ctx, args)
        print(f"bytecode: {args.bytecode}", flush=True)
        for rnd in range(1, args.rounds + 1):
            for mode in modes if rnd % 2 else list(reversed(modes)):
                overhead.wait_for_quiet_core(app_core, args.quiet_wait)
                r = {"mode": mode, "round": rnd, **wall_once(mode, ctx, args)}
                wall.append(r)
                print(f"round {rnd} {mode:15s} start-up {r['wall_s']:.3f} s, CPU {r['cpu_s']:.2f} s", flush=True)
        for kind, once in (("importtime", importtime_once), ("cprofile", cprofile_once), ("callgrind", callgrind_once)):
            if getattr(args, kind):
                for mode in modes:
                    single.setdefault(kind, {})[mode] = once(mode, ctx, args)
                    print(f"{kind} {mode:15s} " + ", ".join(f"{k}={v}" for k, v in single[kind][mode].items()
                                                             if not isinstance(v, (list, dict))), flush=True)
    finally:
        overhead.stop_helper(fake)
        overhead.stop_helper(sink)
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(summarize(modes, wall, single))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"startup-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"bytecode": args.bytecode, "wall": wall, **single}, indent=2))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
