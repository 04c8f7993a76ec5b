"""How fast the PII scrubber is, and what it catches, next to Logfire's scrubber in the same run.

    .venv/bin/python benchmarks/scrubber.py            # ~10 s
    .venv/bin/python benchmarks/scrubber.py --quick    # smaller inputs, fewer repeats
    .venv/bin/python benchmarks/scrubber.py --json benchmarks/results/scrubber.json
    .venv/bin/python benchmarks/scrubber.py --against /tmp/old   # this scrubber against another checkout's

``--against DIR`` (a checkout of another release, e.g. ``git archive 6b41f47 | tar -x -C /tmp/old``)
loads that release's scrubber into the same process and times both on the same units (each log
batch, each 100 lines, each block, each span case), alternating them unit by unit, ``--repeats``
times (default 15), and sums the best time of each unit: on a loaded machine, drift in load then
hits both alike. It prints the time ratio of each row (the speed figures of
docs/measurements.md).

Three measurements, on the same inputs for both scrubbers (best of ``--repeats`` runs):

1. **Log text, MB/s**: a realistic agent-service log (uvicorn access lines, intent/RAG/
   planner/Gemini lines, user questions, JSON payloads, a stack trace now and then, 2% of
   lines with PII), scrubbed three ways: as the SDK log records the logging handler makes of
   it (with agentwatch's request id attribute), through ``scrub_logs`` on batches of 512
   (what agentwatch's log exporter does with each batch of the BatchLogRecordProcessor: the
   headline figure; MB/s counts the bodies' bytes only); line by line with
   ``Scrubber.scrub_text`` (one call per string, the path of the stdout formatter); and in
   64 KiB blocks. Logfire: ``Scrubber.scrub_value`` on the log body path (what ``scrub_log``
   does for a string body), which works record by record.
2. **µs per span**: a server span with 20 attributes (HTTP + GenAI semantic conventions),
   clean, and with PII (a real client IP and a user e-mail). agentwatch: ``scrub_spans`` on
   a batch of 512 (what the exporter guard does) and ``scrub_span`` on one; Logfire: what its
   span processor does per span (``span_to_dict`` -> ``scrub_span`` -> ``ReadableSpan(**dict)``).
3. **What each catches**: a fixture with one value of each PII kind, as free text and as an
   attribute value under a neutral key; plus sensitive keys.

agentwatch is measured twice: with its default engine (one Hyperscan pass per batch or text
says which strings each detector family must look at; ``agentwatch/distro/scrub/hints.py``) and with
``engine="re"`` (Python's ``re`` alone: what runs where the ``hyperscan`` wheel does not exist,
or with ``AGENTWATCH_SCRUB_ENGINE=re``). Both give the same output (tests/test_scrub_engines.py).

Targets (issue 5): >= 50 MB/s of log text, <= 20 µs per 20-attribute span.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import _pii  # noqa: E402  (fake secrets, assembled at run time)
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult  # noqa: E402

from agentwatch.distro.scrub import Scrubber  # noqa: E402

try:
    from logfire._internal.scrubbing import Scrubber as LogfireScrubber
    from logfire._internal.utils import span_to_dict
    from logfire.version import VERSION as LOGFIRE_VERSION
except Exception:  # noqa: BLE001 - the comparison is optional
    LogfireScrubber = None  # type: ignore[assignment,misc]
    LOGFIRE_VERSION = "not installed"

# --- inputs ----------------------------------------------------------------------------------

TEMPLATES = [
    'INFO:     {ip}:{port} - "POST /chat HTTP/1.1" 200 OK',
    'INFO:     {ip}:{port} - "GET /health/ready HTTP/1.1" 200 OK',
    "agent ready documents={n} model=gemini-2.5-flash",
    "classified intent={intent} confidence={conf:.2f} in {ms:.1f} ms",
    "retrieved {k} documents for session {sid} (top score {conf:.2f}, {ms:.1f} ms)",
    "calling gemini-2.5-flash with {tok} input tokens, max_output_tokens=1024",
    "gemini answered in {ms:.0f} ms: finish_reason=STOP input_tokens={tok} output_tokens={tok2}",
    'planner iteration {k}/5: critique verdict=revise reason="answer does not cite a source"',
    'user asked: "Where is my order {order}? It was supposed to arrive on {date}, can you check the status?"',
    "refund of ${price:.2f} approved for order {order} (policy refund-30d, customer tier gold)",
    "model call failed reason=timeout upstream_status=504 after {ms:.0f} ms, retrying (attempt {k}/3)",
    "cache miss for key intent:{intent}:v2, computing embeddings for {k} chunks",
    "request {uuid} handled in {ms:.1f} ms trace_id={trace} span_id={span}",
    "sqlite query took {ms:.2f} ms: SELECT doc_id, title, body FROM documents WHERE category = ? LIMIT {k}",
    '{{"event": "tool_call", "tool": "lookup_order", "arguments": {{"order_id": "{order}"}}, "latency_ms": {ms:.1f}, '
    '"result": {{"status": "in_transit", "carrier": "UPS", "eta": "{date}"}}}}',
    'answer: "Your order {order} left our warehouse on {date} and should arrive within 2 business days. '
    'You can follow it on the carrier website; I have also sent the tracking link to your account."',
]
STACKTRACE = (
    "Traceback (most recent call last):\n"
    '  File "/srv/app/agent/planner.py", line 142, in plan\n'
    "    result = await self.llm.generate(prompt)\n"
    '  File "/srv/app/agent/gemini_client.py", line 88, in generate\n'
    "    response.raise_for_status()\n"
    '  File "/usr/lib/python3.11/site-packages/httpx/_models.py", line 829, in raise_for_status\n'
    "    raise HTTPStatusError(message, request=request, response=self)\n"
    "httpx.HTTPStatusError: Server error '503 Service Unavailable' for url 'http://gemini.internal:8080/v1beta/models'"
)


def pii_lines(rnd: random.Random) -> list[str]:
    keys = _pii.secrets(rnd)
    return [
        "user alice.martin@example.com asked about invoice {order}",
        "customer called from +1 415 555 0134 about a late delivery",
        f"payment declined for card {_pii.card(rnd)} (insufficient funds)",
        f"GET https://generativelanguage.googleapis.com/v1beta/models?key={keys['google_api_key']} failed",
        "login from 203.0.113.77 with password=hunter2",
        f"retrying with Authorization: Bearer {_pii.body(rnd, 32)}",
    ]


def log_corpus(lines: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    pii = pii_lines(rnd)
    out = []
    for i in range(lines):
        if i % 50 == 0:
            template = rnd.choice(pii)
        elif i % 400 == 1:
            template = STACKTRACE
        else:
            template = rnd.choice(TEMPLATES)
        out.append(
            template.format(
                ip="127.0.0.1" if rnd.random() < 0.7 else f"10.0.{rnd.randrange(256)}.{rnd.randrange(256)}",
                port=rnd.randrange(30000, 60000),
                n=rnd.randrange(1, 500),
                intent=rnd.choice(["refund", "order_status", "shipping", "other"]),
                conf=rnd.random(),
                ms=rnd.random() * 900,
                k=rnd.randrange(1, 6),
                sid=f"s-{rnd.randrange(10**6):06d}",
                tok=rnd.randrange(50, 4000),
                tok2=rnd.randrange(10, 800),
                order=rnd.randrange(10**5, 10**6),
                date=f"2026-11-{rnd.randrange(1, 29):02d}",
                price=rnd.random() * 200,
                uuid=f"{rnd.getrandbits(32):08x}-{rnd.getrandbits(16):04x}-4{rnd.getrandbits(12):03x}-a{rnd.getrandbits(12):03x}-{rnd.getrandbits(48):012x}",
                trace=f"{rnd.getrandbits(128):032x}",
                span=f"{rnd.getrandbits(64):016x}",
            )
        )
    return out


def blocks(lines: list[str], size: int = 64 * 1024) -> list[str]:
    out, current, length = [], [], 0
    for line in lines:
        current.append(line)
        length += len(line) + 1
        if length >= size:
            out.append("\n".join(current))
            current, length = [], 0
    if current:
        out.append("\n".join(current))
    return out


ATTRIBUTES = {
    "http.request.method": "POST",
    "http.route": "/chat",
    "url.path": "/chat",
    "url.scheme": "http",
    "url.query": "lang=en&stream=false",
    "server.address": "agent.internal",
    "server.port": 8000,
    "client.address": "127.0.0.1",
    "network.protocol.version": "1.1",
    "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "http.response.status_code": 200,
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "gcp.gemini",
    "gen_ai.request.model": "gemini-2.5-flash",
    "gen_ai.response.model": "gemini-2.5-flash",
    "gen_ai.usage.input_tokens": 812,
    "gen_ai.usage.output_tokens": 95,
    "gen_ai.response.finish_reasons": ("stop",),
    "gen_ai.conversation.id": "s-123456",
    "agentwatch.intent.name": "refund",
}


def log_records(lines: list[str]) -> list:
    """The SDK log records of ``lines`` as the exporter receives them from an agentwatch service:
    body, ``code.*`` attributes and ``agentwatch.request.id`` (a new uuid4 hex every 5 lines, as
    one request logs several)."""
    rnd = random.Random(17)
    ids = [f"{rnd.getrandbits(128):032x}" for _ in range(0, len(lines), 5)]
    return _pii.sdk_log_records(lines, lambda index: {"agentwatch.request.id": ids[index // 5]})


def make_spans() -> dict[str, ReadableSpan]:
    kept: list[ReadableSpan] = []

    class Keep(SpanExporter):
        def export(self, spans):
            kept.extend(spans)
            return SpanExportResult.SUCCESS

    provider = TracerProvider(resource=Resource.create({"service.name": "agent"}))
    provider.add_span_processor(SimpleSpanProcessor(Keep()))
    tracer = provider.get_tracer("bench")
    pii = dict(ATTRIBUTES, **{"client.address": "203.0.113.77", "enduser.id": "alice.martin@example.com"})
    for attributes in (ATTRIBUTES, pii):
        with tracer.start_as_current_span("POST /chat", attributes=attributes):
            pass
    provider.shutdown()
    assert len(ATTRIBUTES) == 20
    return {"clean": kept[0], "with PII": kept[1]}


# --- timing ------------------------------------------------------------------------------------


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def text_throughput(name: str, scrub, inputs: list[str], repeats: int) -> float:
    size = sum(len(t.encode()) for t in inputs)

    def run() -> None:
        for text in inputs:
            scrub(text)

    seconds = best(run, repeats)
    return size / seconds / 1e6


def load_other(root: Path):
    """The ``Scrubber`` class of the checkout at ``root``, loaded beside this one: its ``agentwatch``
    modules are imported first and renamed (``_other_agentwatch...``), then this checkout's are."""
    import importlib

    here = [name for name in sys.modules if name == "agentwatch" or name.startswith("agentwatch.")]
    saved = {name: sys.modules.pop(name) for name in here}
    sys.path.insert(0, str(root))
    try:
        module = importlib.import_module("agentwatch.distro.scrub")
        if not Path(module.__file__ or "").resolve().is_relative_to(root.resolve()):
            raise SystemExit(f"{root}: no agentwatch package there")
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == "agentwatch" or n.startswith("agentwatch.")]:
            sys.modules["_other_" + name] = sys.modules.pop(name)
        sys.modules.update(saved)
    return module.Scrubber


def compare(other_root: Path, engine: str, repeats: int) -> dict:
    """This scrubber against the one at ``other_root``, unit by unit, alternated (see the module doc)."""
    clock = time.thread_time
    scrubbers = {"other": load_other(other_root)(engine=engine), "this": Scrubber(engine=engine)}
    lines = log_corpus(5_000)
    size = sum(len(line.encode()) for line in lines)
    records = log_records(lines)
    spans = make_spans()
    rows: dict[str, tuple[list, int]] = {
        "scrub_logs, batches of 512 (MB/s)": ([lambda s, b=records[i : i + 512]: s.scrub_logs(b) for i in range(0, len(records), 512)], size),
        "one scrub_text per line (MB/s)": ([lambda s, p=lines[i : i + 100]: [s.scrub_text(t) for t in p] for i in range(0, len(lines), 100)], size),
        "64 KiB blocks (MB/s)": ([lambda s, c=c: s.scrub_text(c) for c in blocks(lines)], size),
    }
    for label, span in spans.items():
        rows[f"span {label}, batch of 512 (µs)"] = ([lambda s, b=[span] * 512: s.scrub_spans(b)], 512)
        rows[f"span {label}, one (µs)"] = ([lambda s, span=span: [s.scrub_span(span) for _ in range(200)]], 200)
    for scrubber in scrubbers.values():  # engines compiled, caches warm
        for units, _ in rows.values():
            for unit in units:
                unit(scrubber)
    print(f"# This scrubber against {other_root} (engine {engine}; {repeats} alternated runs per unit, best of each, summed)\n")
    print("| row | other | this | time this/other |\n|---|---|---|---|")
    out = {}
    for key, (units, n) in rows.items():
        total = {"other": 0.0, "this": 0.0}
        for unit in units:
            best_of = {"other": float("inf"), "this": float("inf")}
            for repeat in range(repeats):
                for name in ("other", "this") if repeat % 2 == 0 else ("this", "other"):
                    start = clock()
                    unit(scrubbers[name])
                    best_of[name] = min(best_of[name], clock() - start)
            for name in total:
                total[name] += best_of[name]
        ratio = total["this"] / total["other"]
        if key.endswith("(MB/s)"):
            other, this = n / total["other"] / 1e6, n / total["this"] / 1e6
        else:
            other, this = total["other"] / n * 1e6, total["this"] / n * 1e6
        out[key] = {"other": round(other, 2), "this": round(this, 2), "time_ratio": round(ratio, 3)}
        print(f"| {key} | {other:.2f} | {this:.2f} | {100 * (ratio - 1):+.1f} % |", flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs, fewer repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--against", type=Path, default=None, help="compare with the scrubber of this checkout")
    parser.add_argument("--engine", default="auto", help="with --against: auto (hint engine) or re")
    args = parser.parse_args()
    if args.against is not None:
        results = compare(args.against, args.engine, args.repeats or 15)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=2))
        return 0
    repeats = args.repeats or (3 if args.quick else 7)
    lines = log_corpus(5_000 if args.quick else 40_000)
    chunks = blocks(lines)

    ours = Scrubber()
    ours_re = Scrubber(engine="re")
    engines = (("agentwatch", ours), ("agentwatch (re only)", ours_re))
    theirs = LogfireScrubber(None) if LogfireScrubber is not None else None
    results: dict = {
        "python": platform.python_version(),
        "logfire": LOGFIRE_VERSION,
        "corpus": {"lines": len(lines), "bytes": sum(len(x.encode()) for x in lines), "avg_line": 0},
    }
    results["corpus"]["avg_line"] = round(results["corpus"]["bytes"] / len(lines), 1)

    results["engine"] = ours.engine_name
    print(f"# PII scrubber benchmark (Python {results['python']}, logfire {LOGFIRE_VERSION}, engine {ours.engine_name})\n")
    print(
        f"Log corpus: {len(lines)} lines, {results['corpus']['bytes'] / 1e6:.1f} MB, "
        f"{results['corpus']['avg_line']} bytes per line on average; best of {repeats}.\n"
    )

    # 1. log text ---------------------------------------------------------------------------------
    # What the log exporter really does: scrub_logs on the batches the BatchLogRecordProcessor
    # hands it (512 records), every body and attribute of a batch checked in one pass.
    records = log_records(lines)
    batches = [records[i : i + 512] for i in range(0, len(records), 512)]
    size = results["corpus"]["bytes"]
    text_rows = [{"input": "log records through the exporter (scrub_logs, batches of 512)"}]
    for name, scrubber in engines:
        seconds = best(lambda: [scrubber.scrub_logs(batch) for batch in batches], repeats)
        text_rows[0][name] = round(size / seconds / 1e6, 1)
    for label, inputs in (("per line (one call per log record)", lines), ("64 KiB blocks", chunks)):
        row = {"input": label}
        for name, scrubber in engines:
            row[name] = round(text_throughput(name, scrubber.scrub_text, inputs, repeats), 1)
        if theirs is not None:
            row["logfire"] = round(
                text_throughput("logfire", lambda t: theirs.scrub_value(("log_body",), t), inputs, repeats), 1
            )
        text_rows.append(row)
    if theirs is not None:
        text_rows[0]["logfire"] = text_rows[1].get("logfire")  # Logfire scrubs each record's body on its own
    results["log_text"] = text_rows
    print("## Log text, MB/s (target >= 50 MB/s)\n")
    print("| input | agentwatch | agentwatch (re only) | Logfire |\n|---|---|---|---|")
    for row in text_rows:
        print(f"| {row['input']} | {row['agentwatch']} | {row['agentwatch (re only)']} | {row.get('logfire', '-')} |")
    print(
        "\nLogfire replaces a whole string as soon as it contains a sensitive word (its 64 KiB blocks all hold"
        " one, so each ends after one regex hit and becomes `[Scrubbed due to '...']`); it looks for no"
        " e-mail, card, phone, IP or vendor key formats (table 3). agentwatch keeps the text and replaces only"
        " what it detects."
    )

    # 2. spans --------------------------------------------------------------------------------------
    spans = make_spans()
    span_rows = []
    for label, span in spans.items():
        batch = [span] * 512
        row = {"span": label}
        for name, scrubber in engines:
            row[f"{name}, batch"] = round(best(lambda: scrubber.scrub_spans(batch), repeats) / len(batch) * 1e6, 2)
            row[f"{name}, one"] = round(best(lambda: [scrubber.scrub_span(span) for _ in range(2000)], repeats) / 2000 * 1e6, 2)
        if theirs is not None:

            def logfire_one(span=span) -> ReadableSpan:
                span_dict = span_to_dict(span)
                theirs.scrub_span(span_dict)
                return ReadableSpan(**span_dict)

            row["logfire"] = round(best(lambda: [logfire_one() for _ in range(2000)], repeats) / 2000 * 1e6, 2)
        span_rows.append(row)
    results["spans"] = span_rows
    print("\n## One span with 20 attributes, HTTP + GenAI conventions, µs per span (target <= 20 µs)\n")
    columns = [f"{name}, {how}" for name, _ in engines for how in ("batch", "one")]
    print("| span | " + " | ".join(c.replace(", batch", ", batch of 512").replace(", one", ", one span") for c in columns) + " | Logfire |")
    print("|---" * (len(columns) + 2) + "|")
    for row in span_rows:
        print(f"| {row['span']} | " + " | ".join(str(row[c]) for c in columns) + f" | {row.get('logfire', '-')} |")

    # 3. what each catches ------------------------------------------------------------------------------
    catch_rows = []
    for kind, text, secret in _pii.fixture_table():
        row = {"kind": kind, "agentwatch_text": secret not in ours.scrub_text(text)}
        row["agentwatch_attr"] = secret not in str(ours.scrub_attributes({"note": text}))
        if theirs is not None:
            row["logfire_text"] = secret not in str(theirs.scrub_value(("log_body",), text)[0])
            row["logfire_attr"] = secret not in str(theirs.scrub_value(("attributes",), {"note": text})[0])
        catch_rows.append(row)
    for key in ("password", "db.password", "http.request.header.authorization", "x-goog-api-key", "session_id"):
        row = {"kind": f"key `{key}`", "agentwatch_text": None}
        row["agentwatch_attr"] = "s3cr3t-value" not in str(ours.scrub_attributes({key: "s3cr3t-value"}))
        if theirs is not None:
            row["logfire_text"] = None
            row["logfire_attr"] = "s3cr3t-value" not in str(theirs.scrub_value(("attributes",), {key: "s3cr3t-value"})[0])
        catch_rows.append(row)
    for key, value in (("gen_ai.usage.input_tokens", 812), ("gen_ai.token.type", "input"), ("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")):
        row = {"kind": f"kept: `{key}`", "agentwatch_text": None}
        row["agentwatch_attr"] = ours.scrub_attributes({key: value}) == {key: value}
        if theirs is not None:
            row["logfire_text"] = None
            row["logfire_attr"] = theirs.scrub_value(("attributes",), {key: value})[0] == {key: value}
        catch_rows.append(row)
    results["catches"] = catch_rows
    mark = {True: "yes", False: "**no**", None: ""}
    print("\n## What each catches (yes = the secret is gone; last rows: the value is kept, as it should be)\n")
    print("| kind | agentwatch, free text | agentwatch, attribute | Logfire, free text | Logfire, attribute |\n|---|---|---|---|---|")
    for row in catch_rows:
        print(
            f"| {row['kind']} | {mark[row['agentwatch_text']]} | {mark[row['agentwatch_attr']]} | "
            f"{mark[row.get('logfire_text')]} | {mark[row.get('logfire_attr')]} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
