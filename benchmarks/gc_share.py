"""How much of a request's CPU goes to Python's garbage collector, per mode (`make bench`'s modes).

    .venv/bin/python benchmarks/gc_share.py                       # 4 modes, 1500 requests each, ~2 min
    .venv/bin/python benchmarks/gc_share.py --modes otel-distro,agentwatch-ai --requests 3000
    .venv/bin/python benchmarks/gc_share.py --modes otel-distro,agentwatch-ai --requests 600 --promoted 25

The demo app runs as in ``overhead.py`` (same environments, fake Gemini, OTLP sink), but started
through this file with ``--probe``: the probe adds a ``gc.callbacks`` hook, then runs ``app.py`` as
``__main__`` (``runpy``), so the app, its imports and the instrumentation are those of the real run.
At exit the probe writes the collections per generation and the CPU time spent in each (process
time between the callback's ``start`` and ``stop``). Sequential ``POST /chat`` requests, one client.

Why: instrumentation keeps objects alive for a while (spans and log records wait in the batch
queues, up to seconds), so more of them survive the young generations; the full collections this
triggers scan the whole heap of the app. Instruction counts (``instructions.py``) see that work, but
a full collection lands in one run or another, which is what makes those counts jump by millions.

``--promoted N`` also says what reaches the old generation: at each generation-1 collection the probe
notes the id and type of every object of the two young generations, and after it counts those found in
generation 2 (promoted: what a full collection will have to scan, and what counts towards triggering one).
It prints the N types most promoted per request. The probe's own work inflates the generation-1 times of
that run: read its GC times from a run without it.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import http.client
import json
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import overhead  # noqa: E402 - the modes and helpers of the overhead benchmark

_GENERATIONS = (0, 1, 2)


def _type_name(obj: object) -> str:
    kind = type(obj)
    return f"{getattr(kind, '__module__', '?')}.{kind.__qualname__}"


def _probe(out: str, app: str, argv: list[str]) -> None:
    """Run ``app`` as ``__main__`` with a GC probe; write the per-generation figures to ``out`` at exit."""
    stats = {g: [0, 0.0] for g in _GENERATIONS}
    started = [0.0]
    window = [time.process_time()]
    track_promoted = os.environ.pop("GC_SHARE_PROMOTED", "") == "1"  # not passed on to anything the app starts
    promoted: dict[str, int] = {}
    young: dict[int, str] = {}  # id -> type name of the young objects, during one generation-1 collection

    def reset(*_: object) -> None:  # SIGUSR1: the measured window starts (start-up and warm-up left out)
        for figures in stats.values():
            figures[0], figures[1] = 0, 0.0
        promoted.clear()
        window[0] = time.process_time()

    def note_promoted(phase: str) -> None:
        if phase == "start":
            # Ids and names only: holding the objects would keep them alive through the collection.
            young.update((id(o), _type_name(o)) for o in gc.get_objects(0) + gc.get_objects(1))
            return
        for obj in gc.get_objects(2):
            name = young.get(id(obj))
            if name is not None:
                promoted[name] = promoted.get(name, 0) + 1
        young.clear()

    def callback(phase: str, info: dict) -> None:
        if track_promoted and info["generation"] == 1:
            note_promoted(phase)
        if phase == "start":
            started[0] = time.process_time()
        else:
            figures = stats[info["generation"]]
            figures[0] += 1
            figures[1] += time.process_time() - started[0]

    def dump() -> None:
        Path(out).write_text(json.dumps({"generations": stats, "objects": len(gc.get_objects()),
                                         "cpu_s": time.process_time() - window[0], "promoted": promoted}))

    gc.callbacks.append(callback)
    signal.signal(signal.SIGUSR1, reset)
    atexit.register(dump)
    sys.argv = [app, *argv]
    sys.path.insert(0, str(Path(app).parent))
    runpy.run_path(app, run_name="__main__")


def measure(mode: str, requests: int, warmup: int, promoted: bool = False) -> dict:
    """One run of ``mode``: GC figures of the app process from after ``warmup`` requests to its exit."""
    port = overhead.free_port()
    fake, sink, fake_url, sink_url = overhead.start_fake_and_sink()
    workdir = Path(tempfile.mkdtemp(prefix="gc-share-"))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_"))}
    base.update(GEMINI_BASE_URL=fake_url, GEMINI_API_KEY="bench",
                AGENT_DB_PATH=str(workdir / "kb.sqlite3"))
    base.update(overhead.cache_env(mode, {"agentwatch_cache": workdir / "agentwatch-cache"}))
    command, env = overhead.mode_command_and_env(mode, base, sink_url,
                                                 argparse.Namespace(metric_interval_ms=60_000), workdir)
    if promoted:
        env["GC_SHARE_PROMOTED"] = "1"
    app = command.index(str(overhead.APP))
    out = workdir / "gc.json"
    command = [*command[:app], __file__, "--probe", str(out), str(overhead.APP), "--port", str(port)]
    log = (workdir / "app.log").open("wb")
    proc = subprocess.Popen(command, env=env, cwd=str(overhead.APP.parent), stdout=log, stderr=subprocess.STDOUT)
    try:
        overhead.wait_first_answer(proc, port, time.monotonic(), 90)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

        def post(i: int) -> None:
            body = json.dumps({"message": overhead.MESSAGES[i % len(overhead.MESSAGES)], "session_id": f"s{i % 4}"})
            connection.request("POST", "/chat", body=body, headers={"Content-Type": "application/json"})
            connection.getresponse().read()

        for i in range(warmup):
            post(i)
        proc.send_signal(signal.SIGUSR1)
        time.sleep(0.2)
        for i in range(requests):
            post(warmup + i)
        connection.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        overhead.stop_helper(fake)
        overhead.stop_helper(sink)
        log.close()
    if not out.exists():
        raise SystemExit(f"{mode}: the app wrote no GC figures; its output:\n{overhead.tail(workdir / 'app.log')}")
    figures = json.loads(out.read_text())
    total = requests  # the window ends at SIGINT: the shutdown's flush is in it, as in overhead.py's totals
    return {
        "mode": mode,
        "objects": figures["objects"],
        "cpu_ms_per_request": figures["cpu_s"] * 1000 / total,
        "promoted_per_request": {name: count / total for name, count in figures["promoted"].items()},
        **{f"gen{g}_runs": figures["generations"][str(g)][0] for g in _GENERATIONS},
        **{f"gen{g}_ms_per_request": figures["generations"][str(g)][1] * 1000 / total for g in _GENERATIONS},
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--probe"]:
        _probe(argv[1], argv[2], argv[3:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", default="uninstrumented,otel-distro,agentwatch,agentwatch-ai")
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--promoted", type=int, default=0, metavar="N",
                        help="also list the N object types most promoted to the old generation per request")
    args = parser.parse_args(argv)
    rows = []
    for mode in args.modes.split(","):
        reason = overhead.unavailable_reason(mode)
        if reason:
            print(f"{mode}: skipped ({reason})")
            continue
        rows.append(measure(mode, args.requests, args.warmup, promoted=args.promoted > 0))
    print("| mode | GC ms/request (gen0 / gen1 / gen2) | full collections | CPU ms/request | GC share | "
          "tracked objects at exit |")
    print("|---|---|---:|---:|---:|---:|")
    for row in rows:
        gc_ms = sum(row[f"gen{g}_ms_per_request"] for g in _GENERATIONS)
        print(f"| {row['mode']} | {gc_ms:.3f} ({row['gen0_ms_per_request']:.3f} / {row['gen1_ms_per_request']:.3f} / "
              f"{row['gen2_ms_per_request']:.3f}) | {row['gen2_runs']} | {row['cpu_ms_per_request']:.2f} | "
              f"{gc_ms / row['cpu_ms_per_request']:.1%} | {row['objects']} |")
    if args.promoted:
        print(promoted_table(rows, args.promoted))
    return 0


def promoted_table(rows: list[dict], top: int) -> str:
    """Objects promoted to the old generation per request, by type: the ``top`` types of any mode."""
    per_mode = [row["promoted_per_request"] for row in rows]
    names = sorted({n for p in per_mode for n in p}, key=lambda n: -max(p.get(n, 0.0) for p in per_mode))[:top]
    lines = ["", "| promoted to generation 2, per request | " + " | ".join(r["mode"] for r in rows) + " |",
             "|---|" + "---:|" * len(rows),
             "| **all types** | " + " | ".join(f"**{sum(p.values()):.1f}**" for p in per_mode) + " |"]
    lines += [f"| `{name}` | " + " | ".join(f"{p.get(name, 0.0):.2f}" for p in per_mode) + " |" for name in names]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
