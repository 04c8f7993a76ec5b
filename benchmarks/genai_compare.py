"""agentwatch's Gemini instrumentor next to the official opentelemetry-instrumentation-google-genai.

Runs the same google-genai calls against the local fake Gemini (examples/fake_gemini.py)
three ways, each in a fresh interpreter: uninstrumented, under agentwatch's
GeminiInstrumentor, and under the official instrumentor; prints side by side what each
emitted (span names and attribute keys per scenario, token totals, metrics) and the
per-call overhead against no instrumentation (same process layout, in-memory exporters,
httpx2 not instrumented in any mode, so only the GenAI layer is compared).

The official instrumentor is not a dependency of agentwatch and declares google-genai < 3;
install it somewhere aside and point this script at it (it is loaded with skip_dep_check):

    uv pip install --target /tmp/official-genai --no-deps \\
        opentelemetry-instrumentation-google-genai opentelemetry-util-genai
    python benchmarks/genai_compare.py --official-path /tmp/official-genai [--calls 300 --repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "gemini-2.5-flash"


def weather(city: str) -> str:
    """Get the weather of a city."""
    return f"sunny in {city}"


def _child(mode: str, calls: int, repeats: int) -> dict:
    sys.path.insert(0, str(ROOT / "examples"))
    from fake_gemini import start_fake_gemini
    from google import genai
    from google.genai import types
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    if mode == "agentwatch":
        from agentwatch.instrumentors.gemini import GeminiInstrumentor

        GeminiInstrumentor().instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    elif mode == "official":
        from opentelemetry.instrumentation.google_genai import GoogleGenAiSdkInstrumentor

        GoogleGenAiSdkInstrumentor().instrument(
            tracer_provider=tracer_provider, meter_provider=meter_provider, skip_dep_check=True
        )

    server, url = start_fake_gemini(port=0)
    client = genai.Client(api_key="bench-key", http_options=types.HttpOptions(base_url=url))
    thinking = types.GenerateContentConfig(
        temperature=0.2, max_output_tokens=64, thinking_config=types.ThinkingConfig(thinking_budget=128)
    )
    scenarios = {
        "generate (thinking)": lambda: client.models.generate_content(model=MODEL, contents="Say hi", config=thinking),
        "stream": lambda: list(client.models.generate_content_stream(model=MODEL, contents="Stream a few words")),
        "stream abandoned": lambda: next(iter(client.models.generate_content_stream(model=MODEL, contents="Stream"))),
        "AFC tool (2 requests)": lambda: client.models.generate_content(
            model=MODEL, contents="Weather in Paris?", config=types.GenerateContentConfig(tools=[weather])
        ),
        "embed_content": lambda: client.models.embed_content(model="gemini-embedding-001", contents=["a", "b"]),
        "count_tokens": lambda: client.models.count_tokens(model=MODEL, contents="count me"),
        "429 error": lambda: client.models.generate_content(model=MODEL, contents="x #fail-429"),
    }
    emitted: dict = {}
    for name, run in scenarios.items():
        exporter.clear()
        error = None
        try:
            run()
        except Exception as exc:  # noqa: BLE001
            error = type(exc).__name__
        import gc

        gc.collect()
        spans = [s for s in exporter.get_finished_spans() if s.name != "POST"]
        emitted[name] = {
            "error": error,
            "spans": [s.name for s in spans],
            "keys": sorted({k for s in spans for k in s.attributes}),
            "tokens": [
                (s.attributes.get("gen_ai.usage.input_tokens"), s.attributes.get("gen_ai.usage.output_tokens"))
                for s in spans
            ],
            "cost": [s.attributes.get("agentwatch.gen_ai.usage.cost") for s in spans],
        }
    data = reader.get_metrics_data()
    metric_names = sorted(
        {m.name for rm in (data.resource_metrics if data else []) for sm in rm.scope_metrics for m in sm.metrics}
    )

    # per-call time of a plain generate_content (min over repeats of the mean)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            client.models.generate_content(model=MODEL, contents="Say hi", config=thinking)
        best = min(best, (time.perf_counter() - started) / calls)
        exporter.clear()
    server.shutdown()
    return {"mode": mode, "emitted": emitted, "metrics": metric_names, "per_call_ms": best * 1000}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--official-path", default=os.environ.get("OFFICIAL_GENAI_PATH", "/tmp/official-genai"))
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.calls, args.repeats)))
        return 0

    results = {}
    for mode in ("none", "agentwatch", "official"):
        env = dict(os.environ, OTEL_SEMCONV_STABILITY_OPT_IN="gen_ai_latest_experimental")
        if mode == "official":
            if not Path(args.official_path).is_dir():
                print(f"[skip] official instrumentor not found at {args.official_path} (see --help)")
                continue
            env["PYTHONPATH"] = os.pathsep.join([args.official_path, env.get("PYTHONPATH", "")])
        out = subprocess.run(
            [sys.executable, __file__, "--child", mode, "--calls", str(args.calls), "--repeats", str(args.repeats)],
            env=env, capture_output=True, text=True, check=False,
        )
        if out.returncode != 0:
            print(f"[fail] {mode}: {out.stderr[-2000:]}")
            continue
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])

    modes = [m for m in ("agentwatch", "official") if m in results]
    print("\n## What each emitted (GenAI spans; the httpx2 request spans are not counted)\n")
    print("| scenario | " + " | ".join(modes) + " |")
    print("|---|" + "---|" * len(modes))
    for scenario in results[modes[0]]["emitted"]:
        cells = []
        for mode in modes:
            e = results[mode]["emitted"][scenario]
            tokens = ", ".join(f"{i}/{o}" for i, o in e["tokens"] if i is not None or o is not None) or "-"
            cells.append(f"{len(e['spans'])} span(s) {sorted(set(e['spans']))}; in/out tokens {tokens}")
        print(f"| {scenario} | " + " | ".join(cells) + " |")
    print("\n## Attribute keys of the generate span\n")
    for mode in modes:
        print(f"- **{mode}**: {', '.join(results[mode]['emitted']['generate (thinking)']['keys'])}")
    print("\n## Metrics\n")
    for mode in modes:
        print(f"- **{mode}**: {', '.join(results[mode]['metrics'])}")
    if "none" in results:
        base = results["none"]["per_call_ms"]
        print(f"\n## Per-call time of generate_content against the local fake ({args.calls} calls x {args.repeats}, best)\n")
        print("| mode | ms per call | overhead vs none |")
        print("|---|---|---|")
        print(f"| none | {base:.3f} | - |")
        for mode in modes:
            value = results[mode]["per_call_ms"]
            print(f"| {mode} | {value:.3f} | +{value - base:.3f} ms ({value / base:.2f}x) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
