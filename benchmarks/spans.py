"""What one span's lifecycle costs: the stock SDK's TracerProvider against agentwatch's (in-process).

    .venv/bin/python benchmarks/spans.py                 # ~1 min
    .venv/bin/python benchmarks/spans.py --quick         # fewer spans and rounds
    .venv/bin/python benchmarks/spans.py --json benchmarks/results/spans.json

The same span-making code runs against two providers built the same way: the SDK's ``TracerProvider``
(what ``AGENTWATCH_LEAN_SPANS=false`` installs) and agentwatch's ``LeanTracerProvider``
(``agentwatch/distro/tracing.py``, the default), each with no processor and with agentwatch's
processors (the GenAI roll-up, then a ``BatchSpanProcessor`` whose exporter drops everything: what is
measured is the application thread's work, not the export thread's). Time is the calling thread's CPU
time (``time.thread_time``: on a shared machine, time spent waiting for a core does not count). Rounds
alternate the providers; each figure is the best round's mean, µs of CPU per span (a case that makes several spans per iteration
is divided by their number).

Cases:

- ``start_span+end``: ``tracer.start_span("x").end()``
- ``current, 8 attributes``: ``with tracer.start_as_current_span("x", attributes=<8 plain values>)``
- ``nested 3, +4 set_attribute``: three nested ``start_as_current_span`` (SERVER, INTERNAL, CLIENT), four
  ``set_attribute`` calls inside
- ``GenAI-like, 14 attributes + event``: a CLIENT span under a SERVER span carrying the GenAI attributes
  the roll-up reads, ``set_attributes`` of 10 more values (one a tuple) and one event
- ``decorated function``: a function decorated with ``@tracer.start_as_current_span``
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from agentwatch.distro.rollup import GenAIRollupSpanProcessor
from agentwatch.distro.tracing import LeanTracerProvider

ATTRIBUTES = {
    "http.request.method": "POST", "url.path": "/chat", "http.route": "/chat", "server.port": 8000,
    "agentwatch.ok": True, "ratio": 0.5, "network.protocol.version": "1.1", "user_agent.original": "bench",
}
GENAI = {
    "gen_ai.operation.name": "generate_content", "gen_ai.provider.name": "gcp.gemini",
    "gen_ai.request.model": "gemini-2.5-flash", "gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 40,
    "agentwatch.gen_ai.usage.cost": 0.00012,
}
MORE = {f"gen_ai.extra.{i}": f"value {i}" for i in range(8)} | {"gen_ai.response.finish_reasons": ("stop",), "n": 3}


class DropExporter(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS


def provider(kind: type[TracerProvider], processors: bool) -> TracerProvider:
    made = kind(resource=Resource.create({"service.name": "bench"}), shutdown_on_exit=False)
    if processors:
        made.add_span_processor(GenAIRollupSpanProcessor())
        made.add_span_processor(BatchSpanProcessor(DropExporter(), max_queue_size=1 << 20, schedule_delay_millis=200))
    return made


def case_bare(tracer, n: int) -> None:
    for _ in range(n):
        tracer.start_span("x").end()


def case_current(tracer, n: int) -> None:
    for _ in range(n):
        with tracer.start_as_current_span("x", attributes=ATTRIBUTES):
            pass


def case_nested(tracer, n: int) -> None:
    for _ in range(n):
        with tracer.start_as_current_span("POST /chat", kind=SpanKind.SERVER) as server:
            server.set_attribute("http.response.status_code", 200)
            with tracer.start_as_current_span("plan support") as plan:
                plan.set_attribute("agentwatch.plan.iterations", 2)
                plan.set_attribute("agentwatch.plan.accepted", True)
                with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT) as query:
                    query.set_attribute("db.system.name", "sqlite")


def case_genai(tracer, n: int) -> None:
    for _ in range(n):
        with tracer.start_as_current_span("POST /chat", kind=SpanKind.SERVER):
            with tracer.start_as_current_span("generate_content gemini", kind=SpanKind.CLIENT, attributes=GENAI) as span:
                span.set_attributes(MORE)
                span.add_event("gen_ai.choice", {"index": 0})


def case_decorated(tracer, n: int) -> None:
    @tracer.start_as_current_span("decorated")
    def work(x: int) -> int:
        return x + 1

    for i in range(n):
        work(i)


CASES: dict[str, tuple[Callable, int]] = {  # name: (function, spans per iteration)
    "start_span+end": (case_bare, 1),
    "current, 8 attributes": (case_current, 1),
    "nested 3, +4 set_attribute": (case_nested, 3),
    "GenAI-like, 14 attributes + event": (case_genai, 2),
    "decorated function": (case_decorated, 1),
}


def measure(rounds: int, spans: int) -> list[dict]:
    rows = []
    for processors in (False, True):
        providers = {"stock SDK": provider(TracerProvider, processors), "agentwatch": provider(LeanTracerProvider, processors)}
        tracers = {name: p.get_tracer("bench") for name, p in providers.items()}
        for case, (function, per) in CASES.items():
            iterations = max(1, spans // per)
            best = dict.fromkeys(tracers, float("inf"))
            for round_ in range(rounds):
                order = list(tracers) if round_ % 2 == 0 else list(reversed(tracers))
                for name in order:
                    gc.collect()
                    start = time.thread_time()
                    function(tracers[name], iterations)
                    best[name] = min(best[name], (time.thread_time() - start) / (iterations * per) * 1e6)
            rows.append({
                "processors": "roll-up + batch" if processors else "none",
                "case": case,
                "stock_us": round(best["stock SDK"], 2),
                "agentwatch_us": round(best["agentwatch"], 2),
                "speed-up": round(best["stock SDK"] / best["agentwatch"], 2),
            })
        for p in providers.values():
            p.shutdown()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="rounds per provider (best is kept)")
    parser.add_argument("--spans", type=int, default=3000, help="spans per round")
    parser.add_argument("--quick", action="store_true", help="5 rounds of 1000 spans")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    rounds, spans = (5, 1000) if args.quick else (args.rounds, args.spans)
    rows = measure(rounds, spans)
    import opentelemetry.sdk.version as sdk_version

    print(f"# Span lifecycle, µs per span (Python {platform.python_version()}, opentelemetry-sdk "
          f"{sdk_version.__version__}; thread CPU time, best of {rounds} rounds x {spans} spans, providers alternated)\n")
    print("| processors | case | stock SDK µs | agentwatch µs | speed-up |")
    print("|---|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['processors']} | {row['case']} | {row['stock_us']:.2f} | {row['agentwatch_us']:.2f} | {row['speed-up']:.2f}x |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"python": platform.python_version(), "rounds": rounds, "spans": spans, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
