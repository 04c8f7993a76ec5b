"""``agentwatch report --html``: the page, opened in a real headless Chromium.

The input is what the demo writes (``examples/run_demo.py``: the demo agent service under
``opentelemetry-instrument``, the real exporters, a fake Gemini on loopback); the demo itself writes
the page and prints its path. Chromium's DOM after the page's script ran (``--dump-dom``) must show
a waterfall for every request, and the numbers (requests, per-route counts and latencies, histogram
buckets, costs, the request ids of the errors) must be those of the terminal report of the same
directory. A second page is built from attacker-controlled telemetry (``<script>``, quotes,
``</style>``, non-ASCII, lone surrogates, huge values) and must stay inert and well-formed.

Chromium comes from Debian (``make test`` installs it with the system tools); without it these tests
skip, except under ``CI=true`` where they fail. Nothing is downloaded at run time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
from _service import clean_env

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from run_demo import CRASH_REQUEST_ID  # noqa: E402

from agentwatch.report import render, render_html  # noqa: E402
from agentwatch.report._model import build  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.single_env(
    reason='Chromium renders the report of the demo: a browser check, the same at both resolutions (the demo runs in test_end_to_end.py)'
)]

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--mute-audio"]


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing under CI=true (the Makefile's system-tools stamp installs it: "
                        "apt-get install chromium)")
        pytest.skip("chromium is not installed (Debian: apt-get install chromium; `make test` installs it)")
    return found


BROWSER_SECONDS: list[float] = []


def _browse(page: Path, tmp: Path, *args: str) -> str:
    """Chromium on ``page`` with a fresh profile; its stdout (the DOM with ``--dump-dom``)."""
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    started = time.monotonic()
    done = subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=180)
    BROWSER_SECONDS.append(time.monotonic() - started)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


# --------------------------------------------------------------------------- a small DOM


class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None]) -> None:
        self.tag, self.attrs = tag, attrs
        self.children: list[Node | str] = []

    @property
    def text(self) -> str:
        return "".join(child if isinstance(child, str) else child.text for child in self.children)

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def all(self, tag: str = "", cls: str = "") -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if (not tag or child.tag == tag) and (not cls or cls in child.classes):
                    found.append(child)
                found.extend(child.all(tag, cls))
        return found

    def one(self, tag: str = "", cls: str = "") -> Node:
        found = self.all(tag, cls)
        assert found, f"no <{tag} class={cls}>"
        return found[0]


class _Builder(HTMLParser):
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]
        self.unbalanced = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                self.unbalanced += len(self.stack) - 1 - depth
                del self.stack[depth:]
                return
        self.unbalanced += 1

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def dom(markup: str) -> tuple[Node, int]:
    """The tree, and how many elements were not closed where they should be (0 when well-formed)."""
    builder = _Builder()
    builder.feed(markup)
    builder.close()
    return builder.root, builder.unbalanced + len(builder.stack) - 1


def _cells(table: Node) -> list[list[str]]:
    return [[td.text.strip() for td in tr.all("td")] for tr in table.one("tbody").all("tr")]


# --------------------------------------------------------------------------- the terminal report, parsed


def _split(line: str) -> list[str]:
    return [cell for cell in re.split(r"\s{2,}", line.strip()) if cell]


def _table_after(report: str, *header: str) -> list[list[str]]:
    """The rows of the terminal table whose header starts with the cells ``header`` (cells: split on 2+ spaces)."""
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines) if _split(line)[:len(header)] == list(header))
    indent = len(lines[start]) - len(lines[start].lstrip())
    rows = []
    for line in lines[start + 1:]:
        if not line.strip() or len(line) - len(line.lstrip()) < indent or line.strip().startswith("latency"):
            break
        rows.append(_split(line))
    return rows


def _terminal_histograms(report: str) -> dict[str, list[tuple[str, int]]]:
    section = report[report.index("Latency per route"):].split("\n\n")[0].splitlines()[1:]
    found: dict[str, list[tuple[str, int]]] = {}
    route = ""
    for line in section:
        if not line.startswith("    "):
            route = _split(line)[0]
            found[route] = []
        else:
            label = re.match(r"\s+([≤>] [\d.]+ m?s)", line).group(1)  # pyright: ignore[reportOptionalMemberAccess]
            found[route].append((label, int(line.split()[-1])))
    return found


# --------------------------------------------------------------------------- PNG


def _png(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the decompressed (still filtered) image data of a PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, width, height, idat = 8, 0, 0, b""
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        chunk = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", chunk[:8])
        elif kind == b"IDAT":
            idat += chunk
        position += 12 + length
    return width, height, zlib.decompress(idat)


# --------------------------------------------------------------------------- the demo's page


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, Path, str]:
    """One run of ``examples/run_demo.py``: (telemetry dir, the page it wrote, its output)."""
    out = tmp_path_factory.mktemp("demo_html")
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "run_demo.py"), "--dir", str(out),
                           "--latency-ms", "5"], env=clean_env(), capture_output=True, text=True, timeout=300,
                          cwd=str(ROOT))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    page = out / "report.html"
    assert f"[demo] HTML report: {page}" in done.stdout
    return out / "telemetry", page, done.stdout


def test_the_demo_page_matches_the_terminal_report_in_chromium(demo, tmp_path: Path) -> None:
    telemetry, page, _ = demo
    markup = page.read_text(encoding="utf-8")
    # self-contained: nothing to fetch (no src/href leaving the page, no CSS url()/@import)
    links = re.findall(r"""\b(?:src|href|action|srcset)\s*=\s*["']?([^"'\s>]*)""", markup)
    assert links and all(link.startswith("#") for link in links), links
    assert "url(" not in markup and "@import" not in markup
    assert "default-src 'none'" in markup

    started = time.monotonic()
    page_dom, unbalanced = dom(_browse(page, tmp_path, "--dump-dom"))
    assert unbalanced == 0
    model = build(str(telemetry), traces=200, logs=50)
    terminal = render(str(telemetry))
    html_root = page_dom.one("html")

    # the page's own script ran (CSP allows it by hash) and parsed the embedded JSON
    assert html_root.attrs.get("data-ready") == str(len(model.recent)) == str(len(model.traces.trace_ids))
    requests = page_dom.all("details", "request")
    assert len(requests) == len(model.recent) and page_dom.one(cls="tools").text.endswith(
        f"{len(model.recent)} requests loaded")

    # a waterfall per request: one row per span, each with its bar, the root's spanning the whole trace
    by_trace = {node.attrs["data-trace-id"]: node for node in requests}
    for request in model.recent:
        node = by_trace[request.trace_id]
        rows = node.all("details", "span")
        assert len(rows) == len(request.rows)
        bars = [row.one("span", "bar").attrs["style"] for row in rows]
        assert all(re.fullmatch(r"left:[\d.]+%;width:[\d.]+%", style) for style in bars)
        if request.route == "/chat" and request.status == "200":
            roles = [row.attrs["data-role"] for row in rows]
            assert roles[0] == "server" and {"intent", "rag", "db", "planner", "critic", "model", "http"} <= set(roles)
            assert bars[0].endswith("width:100.000%")
    crash = next(node for node in requests if node.attrs["data-request-id"] == CRASH_REQUEST_ID)
    assert "PlanningError" in crash.text and crash.attrs["data-status"] == "500"

    # the numbers are the terminal report's
    total = re.search(r"(\d+) requests, ", terminal).group(1)  # pyright: ignore[reportOptionalMemberAccess]
    assert page_dom.one(cls="card").one(cls="v").text == total
    assert _cells(page_dom.one("table", "route-stats")) == _table_after(terminal, "route", "count", "errors")
    assert _cells(page_dom.one("table", "requests-by-status")) == _table_after(terminal, "route", "method")
    assert _cells(page_dom.one("table", "model-costs")) == _table_after(terminal, "model", "calls")
    assert _cells(page_dom.one("table", "route-costs")) == _table_after(terminal, "route", "requests")
    assert any("USD" in cell for cell in _cells(page_dom.one("table", "route-costs"))[0])  # a "tool calls" column comes and goes
    # the demo's function-calling loop (POST /chat/tools): its agent and its tool, as the terminal shows them
    agents = _cells(page_dom.one("table", "agent-stats"))
    assert agents == _table_after(terminal, "agent", "invocations")
    assert [row[:4] + row[6:8] for row in agents] == [["order-helper", "1", "0", "2", "1", "0"]]
    tools = _cells(page_dom.one("table", "tool-stats"))
    assert tools == [row for row in _table_after(terminal, "tool", "via") if not row[0].startswith(("loops:", "unknown:"))]
    assert [row[:5] for row in tools] == [["get_order_status", "execute_tool", "1", "0", "0.0%"]]
    histograms = {figure.attrs["data-route"]: [(col.attrs["data-bucket"], int(col.attrs["data-count"] or 0))
                                               for col in figure.all(cls="col")]
                  for figure in page_dom.all("figure", "histogram")}
    # every /chat the demo sends: 34, and its resilience steps (a 429 then a retry, three failures opening the
    # "gemini" breaker, the chat it refuses)
    assert histograms == _terminal_histograms(terminal) and sum(n for _, n in histograms["/chat"]) == 34 + 5
    page_ids = [a.attrs["data-request-id"] for a in page_dom.one("table", "errors").all(cls="rid")]
    terminal_ids = [row[1] for row in _table_after(terminal, "time", "request id") if len(row) == 5]
    # the model failure and the crash, and the resilience steps' five failed chats (429, three 502s, the 503)
    assert page_ids == terminal_ids and CRASH_REQUEST_ID in page_ids and len(page_ids) == 2 + 5
    data = json.loads(page_dom.one("script").text)  # the embedded data says the same
    assert data["requests"] == int(total) and [e["request_id"] for e in data["errors"]] == page_ids

    # a screenshot of the whole page: the right size, and not blank
    shot = tmp_path / "report.png"
    _browse(page, tmp_path, "--window-size=1400,3000", f"--screenshot={shot}")
    width, height, pixels = _png(shot)
    assert (width, height) == (1400, 3000)
    assert shot.stat().st_size > 50_000 and len(set(pixels)) > 64, "the screenshot looks blank"
    print(f"\nbrowser runs: {', '.join(f'{s:.2f}s' for s in BROWSER_SECONDS)}; "
          f"test body {time.monotonic() - started:.2f}s")


def test_the_demo_prints_the_html_report_path(demo) -> None:
    _, page, output = demo
    assert page.stat().st_size > 10_000
    assert output.index("Recent requests") < output.index("[demo] HTML report:")


# --------------------------------------------------------------------------- hostile telemetry

SCRIPT = "</script><script>document.documentElement.dataset.pwned=1</script>"
IMG = "\"'><img src=x onerror=\"document.documentElement.dataset.pwned=2\">"
STYLE = "</style><style>body{display:none}</style><!--"
UNICODE = "日本語 ✓ café \u2028\u2029 🚀 \u202e"
HUGE = "A" * 200_000


def _hostile_telemetry(directory: Path) -> None:
    """Spans and metrics through the real SDK and file exporters, every string chosen by an attacker."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind, Status, StatusCode

    from agentwatch.distro.file_exporter import OTLPJsonFileMetricExporter, OTLPJsonFileSpanExporter

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPJsonFileSpanExporter(str(directory))))
    reader = PeriodicExportingMetricReader(OTLPJsonFileMetricExporter(str(directory)), export_interval_millis=3_600_000)
    meter_provider = MeterProvider(metric_readers=[reader])
    tracer = tracer_provider.get_tracer("evil")
    duration = meter_provider.get_meter("evil").create_histogram("http.server.request.duration", unit="s")
    try:
        for index, evil in enumerate((SCRIPT, IMG, STYLE, UNICODE)):
            with tracer.start_as_current_span(f"POST {evil}", kind=SpanKind.SERVER, attributes={
                "http.route": evil, "http.response.status_code": 500, "agentwatch.request.id": evil,
                "agentwatch.request.gen_ai.cost": 0.5, "agentwatch.huge": HUGE, "agentwatch.quote": IMG,
            }) as server:
                with tracer.start_as_current_span(evil, attributes={"gen_ai.operation.name": "plan"}) as step:
                    step.set_status(Status(StatusCode.ERROR, evil + HUGE))
                server.set_status(Status(StatusCode.ERROR, evil))
            duration.record(0.01 * (index + 1), {"http.route": evil, "http.response.status_code": 500,
                                                 "http.request.method": evil})
        meter_provider.force_flush()
    finally:
        meter_provider.shutdown()
        tracer_provider.shutdown()
    # what no SDK writes but a damaged or forged file can hold: a lone surrogate, NaN, a bogus kind
    forged = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "ee" * 16, "spanId": "ee" * 8, "name": "\\ud800 lone </script>", "kind": 2,
        "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000001000000",
        "status": {"code": 2, "message": "\\udfff"},
        "attributes": [{"key": "agentwatch.request.gen_ai.cost", "value": {"doubleValue": "NaN"}},
                       {"key": "agentwatch.request.id", "value": {"stringValue": "\\ud83d"}}]}]}]}]}
    with open(directory / "traces.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(forged).replace("\\\\u", "\\u") + "\n")


def test_hostile_telemetry_stays_text_in_the_page(tmp_path: Path) -> None:
    telemetry = tmp_path / "telemetry"
    telemetry.mkdir()
    _hostile_telemetry(telemetry)
    markup = render_html(str(telemetry))
    page = tmp_path / "evil.html"
    page.write_text(markup, encoding="utf-8")  # no lone surrogate left to break UTF-8

    # statically: only the page's own elements, and balanced
    assert markup.count("<script") == 2 and markup.count("</script>") == 2
    assert markup.count("<style") == 1 and markup.count("</style>") == 1
    assert "<img" not in markup and "<!--" not in markup
    assert HUGE[:1000] not in markup and len(markup) < 200_000
    _, unbalanced = dom(markup)
    assert unbalanced == 0

    # in Chromium: nothing injected ran or rendered as markup, the page's script did run
    page_dom, unbalanced = dom(_browse(page, tmp_path, "--dump-dom"))
    html_root = page_dom.one("html")
    assert "data-pwned" not in html_root.attrs and html_root.attrs.get("data-ready") == "5"
    assert unbalanced == 0 and not page_dom.all("img") and len(page_dom.all("script")) == 2
    assert len(page_dom.all("style")) == 1
    names = [node.text for node in page_dom.all(cls="name")]
    for evil in (SCRIPT, IMG, STYLE):
        assert any(evil in name for name in names), evil
    assert any("日本語 ✓ café" in name for name in names)
    rids = {a.attrs["data-request-id"] for a in page_dom.one("table", "errors").all(cls="rid")}
    assert {SCRIPT, IMG, STYLE} <= rids
    data = json.loads(page_dom.all("script")[0].text)
    assert data["traces"] and {SCRIPT, IMG, STYLE} <= {t["request_id"] for t in data["traces"]}
    assert all(r["route"] for r in data["routes"])  # NaN cost and all: still valid JSON

    # the terminal report of the same files: no control characters, fits its width
    terminal = render(str(telemetry), width=60, color=True)
    assert "\u2028" not in terminal and "\ud800" not in terminal
    from agentwatch.report._text import display_width

    assert max(display_width(line) for line in terminal.splitlines()) <= 60

