"""The report as one self-contained HTML page (``agentwatch report --html FILE``).

It renders the same :class:`._model.Report` as the terminal report, with the same formatting
functions, so every number on the page is the one the terminal shows. Nothing is fetched: the CSS
and the script are inline, and a Content-Security-Policy (``default-src 'none'``, the script
allowed by its hash only) keeps it that way and stops any script that escaping might have missed.

Everything that came from the telemetry (span names, attribute values, error messages, routes,
request ids) is attacker-controlled: it goes through :func:`html.escape` in the markup, and
through :func:`_json` (``<``, ``>``, ``&`` as ``\\u`` escapes) in the embedded JSON.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from typing import Any

from agentwatch.report._agents import TOOL_HEADER, TOOL_NOTE, agent_header, agent_rows, tool_rows
from agentwatch.report._model import ROLES, Report, Request, fmt_cost
from agentwatch.report._render import render_agent
from agentwatch.report._text import Style, clean, fmt_clock, fmt_duration, fmt_ms, fmt_num, fmt_value, local_time, plural
from agentwatch.semconv import INVOKE_AGENT

_ATTRIBUTE_WIDTH = 300
_ROLE_LABELS = {"server": "server", "intent": "intent", "rag": "RAG", "planner": "planner", "critic": "critic",
                "model": "model", "db": "db", "http": "http", "other": "span"}


def _e(value: Any) -> str:
    """Escaped for text and quoted attribute values (lone surrogates, which UTF-8 cannot hold, replaced)."""
    text = value if isinstance(value, str) else str(value)
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    return html.escape(text, quote=True)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(key): _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _json(value: Any) -> str:
    """JSON that is safe inside ``<script>``: no ``</script>``, ``<!--`` or entity can form."""
    text = json.dumps(_finite(value), ensure_ascii=True, allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _pct(fraction: float) -> str:
    return f"{min(max(fraction, 0.0), 1.0) * 100:.3f}%"


# --------------------------------------------------------------------------- data (also for the script)


def page_data(report: Report) -> dict[str, Any]:
    """The page's numbers as plain data (embedded as JSON; the tests read it too)."""
    found = report.requests
    return {
        "requests": found.total if found else None,
        "request_errors": found.errors if found else None,
        "routes": [
            {"route": r.route, "count": r.count, "errors": r.errors, "p50": fmt_ms(r.p50), "p95": fmt_ms(r.p95),
             "p99": fmt_ms(r.p99), "mean": fmt_ms(r.mean),
             "histogram": dict(zip(r.histogram.labels, r.histogram.counts)) if r.histogram else {}}
            for r in (found.routes if found else [])
        ],
        "models": [{"model": m.model, "calls": m.calls, "errors": m.errors,
                    "cost": fmt_cost(m.cost, report.cost_unit)} for m in report.models],
        "route_costs": [{"route": route, "requests": t.requests, "cost": fmt_cost(t.cost, report.cost_unit or "USD")}
                        for route, t in report.route_costs if t.priced],
        "errors": [{"trace_id": e.trace_id, "request_id": e.request_id, "route": e.route, "status": e.status}
                   for e in report.errors],
        "agents": [{"agent": a.name, "invocations": a.totals.invocations, "errors": a.totals.errors,
                    "tool_calls": a.totals.tool_calls} for a in report.agents],
        "tools": [{"tool": t.name, "via": t.source, "calls": t.calls, "errors": t.errors, "loops": t.loops,
                   "unknown": t.unknown} for t in report.tools],
        "traces": [{"trace_id": r.trace_id, "request_id": r.request_id, "spans": len(r.rows)} for r in report.recent],
    }


# --------------------------------------------------------------------------- sections


def _table(head: list[str], rows: list[list[str]], right: set[int], cls: str = "") -> str:
    """``rows`` hold markup already escaped by the caller."""
    out = [f'<table class="{cls}"><thead><tr>']
    out += [f'<th{" class=num" if i in right else ""}>{_e(h)}</th>' for i, h in enumerate(head)]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f'<td{" class=num" if i in right else ""}>{cell}</td>'
                                    for i, cell in enumerate(row)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _header(report: Report) -> str:
    traces, window = report.traces, report.window
    items = []
    if report.resources.services:
        services = [name + (f" {version}" if version != "-" else "") + (f" ({distro})" if distro != "-" else "")
                    for name, version, distro in report.resources.services]
        items.append(("services", clean(", ".join(services), 200)))
    if window.first and window.last:
        first = local_time(window.first)
        if first:
            items.append(("time", f"{first.strftime('%Y-%m-%d %H:%M:%S')} + "
                                  f"{fmt_duration((window.last - window.first) / 1e9)}"))
    items.append(("recorded", f"{plural(traces.spans, 'span')} in {plural(len(traces.trace_ids), 'trace')}, "
                              f"{plural(report.metrics.points, 'metric point')}, {plural(report.logs.count, 'log record')}"))
    if traces.errors or report.logs.errors:
        items.append(("errors", f"{plural(traces.errors, 'error span')}, {plural(report.logs.errors, 'error log')}"))
    unreadable = sum(s.unreadable for s in (report.trace_stats, report.metric_stats, report.log_stats))
    if unreadable:
        items.append(("note", f"{unreadable} unreadable lines skipped"))
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items)
    return f'<header><h1>agentwatch report</h1><p class="dir">{_e(report.directory)}</p><dl>{rows}</dl></header>'


def _summary(report: Report) -> str:
    found = report.requests
    cards = []
    if found:
        rate = found.errors / found.total if found.total else 0.0
        cards += [("requests", str(found.total), "requests"), ("errors (5xx)", str(found.errors), "request-errors"),
                  ("error rate", f"{rate:.1%}", "error-rate")]
    priced = [m.cost for m in report.models if m.cost is not None]
    if priced:
        cards.append(("model cost", fmt_cost(sum(priced), report.cost_unit), "cost"))
    cards.append(("error traces", str(report.traces.error_trace_count), "error-traces"))
    return '<section id="summary" class="cards">' + "".join(
        f'<div class="card" id="card-{key}"><div class="v">{_e(value)}</div><div class="k">{_e(label)}</div></div>'
        for label, value, key in cards) + "</section>"


def _routes(report: Report) -> str:
    found = report.requests
    if found is None:
        return '<section id="routes"><h2>Requests</h2><p>no http.server.request.duration recorded</p></section>'
    rows = [[_e(r.route), _e(r.method), _e(r.status), str(r.count), _e(found.rate(r.count))] for r in found.rows]
    by_status = _table(["route", "method", "status", "count", "rate"], rows, {3, 4}, "requests-by-status")
    rows = []
    for r in found.routes:
        rows.append([_e(r.route), f'<span data-k="count">{r.count}</span>', f'<span data-k="errors">{r.errors}</span>',
                     f"{r.errors / r.count:.1%}" if r.count else "-",
                     *(f'<span data-k="{k}">{_e(fmt_ms(v))}</span>' for k, v in
                       (("p50", r.p50), ("p95", r.p95), ("p99", r.p99), ("mean", r.mean)))])
    per_route = _table(["route", "count", "errors", "error %", "p50", "p95", "p99", "mean"], rows,
                       {1, 2, 3, 4, 5, 6, 7}, "route-stats")
    return (f'<section id="routes"><h2>Requests <small>{_e(found.metric)}, {_e(plural(found.series, "series"))} over '
            f'{_e(fmt_duration(found.seconds))}</small></h2>{per_route}{by_status}'
            '<p class="note">latency percentiles are estimated from histogram buckets (linear interpolation)</p>'
            "</section>")


def _histograms(report: Report) -> str:
    found = report.requests
    routes = [r for r in (found.routes if found else []) if r.histogram is not None]
    if not routes:
        return ""
    out = ['<section id="latency"><h2>Latency per route <small>request duration buckets</small></h2><div class="hists">']
    for route in routes:
        histogram = route.histogram
        assert histogram is not None
        top = max(histogram.counts) or 1
        out.append(f'<figure class="histogram" data-route="{_e(route.route)}"><figcaption>{_e(route.route)} '
                   f'<small>{_e(plural(route.count, "request"))}</small></figcaption><div class="cols">')
        for label, count in zip(histogram.labels, histogram.counts):
            out.append(f'<div class="col" data-bucket="{_e(label)}" data-count="{count}" title="{_e(label)}: {count}">'
                       f'<span class="n">{count}</span><div class="fill" style="height:{_pct(count / top)}"></div>'
                       f'<span class="l">{_e(label)}</span></div>')
        out.append("</div></figure>")
    out.append("</div></section>")
    return "".join(out)


def _costs(report: Report) -> str:
    parts = []
    if report.models:
        rows = [[_e(m.model), str(m.calls), str(m.errors), _e(fmt_num(m.input_tokens)), _e(fmt_num(m.output_tokens)),
                 f'<span data-k="cost">{_e(fmt_cost(m.cost, report.cost_unit))}</span>', _e(fmt_ms(m.p50)),
                 _e(fmt_ms(m.p95))] for m in report.models]
        parts.append("<h3>per model</h3>" + _table(
            ["model", "calls", "errors", "input tokens", "output tokens", "cost", "p50", "p95"], rows,
            {1, 2, 3, 4, 5, 6, 7}, "model-costs"))
    priced = [(route, t) for route, t in report.route_costs if t.priced]
    if priced:
        unit = report.cost_unit or "USD"
        tools = any(t.tools for _route, t in priced)  # as the terminal report: the tools column only where tools ran
        rows = [[_e(route), str(t.requests), str(t.calls), *([_e(t.tools_cell())] if tools else []),
                 f'<span data-k="cost">{_e(fmt_cost(t.cost, unit))}</span>',
                 _e(fmt_cost(t.cost / t.requests, unit))] for route, t in priced]
        header = ["route", "requests", "model calls", *(["tool calls"] if tools else []), "cost", "cost/request"]
        parts.append("<h3>per route <small>agentwatch.request.gen_ai.cost on the server spans</small></h3>" + _table(
            header, rows, set(range(1, len(header))), "route-costs"))
    if not parts:
        return ""
    return '<section id="cost"><h2>Cost</h2>' + "".join(parts) + "</section>"


def _errors(report: Report) -> str:
    if not report.traces.error_trace_count:
        return ""
    rows = []
    shown = {request.trace_id for request in report.recent}
    for entry in report.errors:
        request_id = _e(entry.request_id or "-")
        # a link when the page has that request's waterfall
        link = (f'<a class="rid" href="#t-{_e(entry.trace_id)}" data-request-id="{_e(entry.request_id)}">{request_id}</a>'
                if entry.trace_id in shown else
                f'<span class="rid" data-request-id="{_e(entry.request_id)}">{request_id}</span>')
        causes = "<br>".join(f"<b>{_e(name)}</b>: {_e(message)}" if message else f"<b>{_e(name)}</b>"
                             for name, message in entry.spans)
        rows.append([_e(fmt_clock(entry.time)), link, _e(entry.route or "-"), _e(entry.status or "-"), f"<code>{_e(entry.trace_id)}</code>", causes])
    title = plural(report.traces.error_trace_count, "trace") + " with error spans"
    return (f'<section id="errors"><h2>Errors <small>{_e(title)}</small></h2>'
            + _table(["time", "request id", "route", "status", "trace", "error spans (likely cause first)"], rows,
                     set(), "errors") + "</section>")


def _waterfall(request: Request) -> str:
    out = ['<div class="waterfall"><div class="axis"><span>0</span>'
           f'<span>{_e(fmt_ms(request.total_ms / 2 if request.total_ms else None))}</span>'
           f'<span>{_e(fmt_ms(request.total_ms))}</span></div>']
    for row in request.rows:
        span = row.span
        role = row.role if row.role in ROLES else "other"
        error = " error" if span.error else ""
        message = f' <span class="err">{_e(span.status_message or "ERROR")}</span>' if span.error else ""
        orphan = ' <span class="kind">(parent span not recorded)</span>' if row.orphan else ""
        attributes = "".join(f"<dt>{_e(clean(key, 80))}</dt><dd>{_e(fmt_value(value, _ATTRIBUTE_WIDTH))}</dd>"
                             for key, value in sorted(span.attributes.items()))
        out.append(
            f'<details class="span role-{role}{error}" data-role="{role}"><summary>'
            f'<span class="name" style="padding-left:{min(row.depth, 40) * 14}px">'
            f'<span class="badge">{_ROLE_LABELS[role]}</span> {_e(span.name)} <span class="kind">{_e(span.kind)}</span>'
            f"{message}{orphan}</span>"
            f'<span class="track"><span class="bar" style="left:{_pct(row.offset)};width:{_pct(row.length)}">'
            f"</span></span>"
            f'<span class="dur">{_e(fmt_ms(span.duration_ms))}</span></summary>'
            f'<dl class="attrs">{attributes or "<dt>(no attributes shown)</dt><dd></dd>"}</dl></details>')
    if request.hidden:
        out.append(f'<p class="note">… and {_e(plural(request.hidden, "more span"))}</p>')
    out.append("</div>")
    return "".join(out)


def _requests(report: Report) -> str:
    if not report.recent:
        found = plural(len(report.traces.trace_ids), "trace") + " recorded, none requested" if report.traces.spans \
            else "no traces recorded"
        return f'<section id="requests"><h2>Requests, newest last</h2><p>{_e(found)}</p></section>'
    out = [f'<section id="requests"><h2>Requests, newest last <small>last {len(report.recent)} of '
           f'{plural(len(report.traces.trace_ids), "trace")}</small></h2>'
           '<div class="tools"><input id="filter" type="search" placeholder="filter: route, request id, span…">'
           '<button id="expand" type="button">expand all</button><button id="collapse" type="button">collapse all'
           '</button> <span id="js-status"></span></div>']
    # the newest failed request (else the newest one) opens with the page: one waterfall in view
    failed = [request for request in report.recent if request.errors]
    opened = (failed or report.recent)[-1]
    for request in report.recent:
        status = request.status
        bad = status.isdigit() and int(status) >= 500 or bool(request.errors)
        cost = f"{fmt_num(request.cost)} {report.cost_unit or 'USD'}" if request.cost is not None else ""
        out.append(
            f'<details{" open" if request is opened else ""} class="request{" bad" if bad else ""}" '
            f'id="t-{_e(request.trace_id)}" '
            f'data-trace-id="{_e(request.trace_id)}" data-request-id="{_e(request.request_id)}" '
            f'data-route="{_e(request.route)}" data-status="{_e(status)}"><summary>'
            f'<span class="t">{_e(fmt_clock(request.start))}</span>'
            f'<span class="m">{_e(request.method)}</span><span class="r">{_e(request.route)}</span>'
            f'<span class="s">{_e(status or "-")}</span><span class="d">{_e(fmt_ms(request.total_ms))}</span>'
            f'<span class="c">{_e(plural(len(request.rows) + request.hidden, "span"))}'
            f'{", " + _e(plural(request.errors, "error")) if request.errors else ""}</span>'
            f'<span class="id">{_e(request.request_id or request.trace_id)}</span>'
            f'<span class="cost">{_e(cost)}</span></summary>{_waterfall(request)}</details>')
    out.append("</section>")
    return "".join(out)


def _agent(report: Report) -> str:
    lines = render_agent(report, Style(False))
    if not lines:
        return ""
    return f'<section id="agent"><h2>Agent pipeline</h2><pre>{_e(chr(10).join(lines[1:]))}</pre></section>'


def _agents_tools(report: Report) -> str:
    """The Agents and Tools sections: the terminal's rows (``._agents``), as tables."""
    out = []
    if report.agents:
        header = agent_header(report.agents)
        out.append(f'<section id="agents"><h2>Agents <small>{_e(INVOKE_AGENT)} spans</small></h2>'
                   + _table(header, [[_e(cell) for cell in row] for row in agent_rows(report.agents)],
                            set(range(1, len(header))), "agent-stats") + "</section>")
    if report.tools:
        out.append('<section id="tools"><h2>Tools <small>tool durations and tool-call signals</small></h2>'
                   + _table(TOOL_HEADER, [[_e(cell) for cell in row] for row in tool_rows(report.tools)],
                            set(range(2, len(TOOL_HEADER))), "tool-stats")
                   + f'<p class="note">{_e(TOOL_NOTE)}</p></section>')
    return "".join(out)


def _logs(report: Report) -> str:
    records = sorted(report.logs.heap)
    if not records:
        return ""
    rows = [[_e(fmt_clock(r.time or None)), _e(r.severity), f"<code>{_e(r.trace_id)}</code>", _e(r.logger), _e(r.body)]
            for r in records]
    return (f'<section id="logs"><h2>Recent logs <small>last {len(records)} of {report.logs.count}</small></h2>'
            + _table(["time", "severity", "trace", "logger", "message"], rows, set(), "logs") + "</section>")


# --------------------------------------------------------------------------- the page

_CSS = """
:root{--bg:#fff;--fg:#1d2330;--dim:#6a7385;--line:#e3e6ec;--card:#f5f7fa;--bad:#c62828;
--server:#5c6bc0;--intent:#8e24aa;--rag:#2e7d32;--planner:#ef6c00;--critic:#f9a825;--model:#1e88e5;
--db:#00897b;--http:#78909c;--other:#9e9e9e}
*{box-sizing:border-box}body{margin:0;padding:16px 24px;font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;
color:var(--fg);background:var(--bg)}h1{margin:0 0 4px;font-size:22px}h2{font-size:18px;margin:28px 0 8px;
border-bottom:1px solid var(--line);padding-bottom:4px}h2 small,h3 small,figcaption small{color:var(--dim);
font-weight:normal;font-size:12px}.dir{color:var(--dim);margin:0 0 8px;word-break:break-all}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0}dt{color:var(--dim)}dd{margin:0;
word-break:break-word}nav a{margin-right:12px}.cards{display:flex;flex-wrap:wrap;gap:12px;margin-top:16px}
.card{background:var(--card);border-radius:6px;padding:10px 16px;min-width:120px}.card .v{font-size:22px;
font-weight:600}.card .k{color:var(--dim);font-size:12px}table{border-collapse:collapse;margin:8px 0;
max-width:100%}th,td{padding:3px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}th{color:var(--dim);font-weight:600;white-space:nowrap}.num{text-align:right;font-variant-numeric:tabular-nums}
.note{color:var(--dim);font-size:12px}td{overflow-wrap:anywhere;max-width:48ch}td.num,
table.errors td:nth-child(1),table.errors td:nth-child(4),table.logs td:nth-child(-n+2){white-space:nowrap}
table.errors td:nth-child(2),table.errors td:nth-child(5){max-width:34ch}table.errors td:last-child,
table.logs td:last-child{max-width:none;min-width:30ch}.hists{display:flex;flex-wrap:wrap;gap:24px}.histogram{margin:0}
.cols{display:flex;align-items:flex-end;gap:3px;height:160px;padding-top:16px}.col{display:flex;
flex-direction:column;justify-content:flex-end;align-items:center;width:56px;height:100%}.col .fill{width:100%;
background:var(--model);min-height:1px;border-radius:2px 2px 0 0}.col .n{font-size:11px}.col .l{font-size:10px;
color:var(--dim);white-space:nowrap;height:14px}.tools{margin:8px 0}.tools input{width:320px;padding:4px}
details.request{border:1px solid var(--line);border-radius:6px;margin:6px 0}details.request>summary{cursor:pointer;
padding:6px 10px;display:grid;grid-template-columns:100px 50px minmax(120px,1fr) 40px 80px 130px 260px 110px;
gap:8px;font-variant-numeric:tabular-nums}details.request.bad>summary .s,.err{color:var(--bad)}
details.request>summary span{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}.waterfall{padding:4px 10px 10px}
.axis{display:flex;justify-content:space-between;margin-left:40%;margin-right:80px;color:var(--dim);font-size:11px}
details.span>summary{display:grid;grid-template-columns:40% 1fr 80px;gap:8px;align-items:center;cursor:pointer;
list-style:none;padding:1px 0}details.span>summary::-webkit-details-marker{display:none}details.span>summary:hover{
background:var(--card)}.name{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}.kind{color:var(--dim);
font-size:11px}.badge{display:inline-block;min-width:52px;text-align:center;font-size:10px;color:#fff;
border-radius:3px;padding:0 4px;background:var(--other)}.track{position:relative;height:14px;background:var(--card);
border-radius:2px}.bar{position:absolute;top:1px;bottom:1px;min-width:2px;border-radius:2px;background:var(--other)}
.dur{text-align:right;font-variant-numeric:tabular-nums}.attrs{margin:2px 0 6px 40%;font-size:12px}
.attrs dd{font-family:ui-monospace,monospace;word-break:break-all}pre{background:var(--card);padding:8px;
overflow-x:auto}code{font-family:ui-monospace,monospace;font-size:12px}
""" + "".join(f".role-{r} .badge,.role-{r} .bar{{background:var(--{r})}}" for r in ROLES) + """
details.span.error .bar{background:var(--bad)}details.span.error .name{color:var(--bad)}
@media (prefers-color-scheme:dark){:root{--bg:#14171c;--fg:#e4e7ec;--dim:#98a1b2;--line:#2b3038;--card:#1f242c}}
"""

_SCRIPT = """(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("agentwatch-data").textContent);
  var requests = Array.prototype.slice.call(document.querySelectorAll("details.request"));
  var filter = document.getElementById("filter");
  if (filter) {
    filter.addEventListener("input", function () {
      var query = filter.value.toLowerCase();
      requests.forEach(function (item) {
        item.hidden = query !== "" && item.textContent.toLowerCase().indexOf(query) < 0;
      });
    });
  }
  function openAll(open) { requests.forEach(function (item) { item.open = open; }); }
  var expand = document.getElementById("expand"), collapse = document.getElementById("collapse");
  if (expand) { expand.addEventListener("click", function () { openAll(true); }); }
  if (collapse) { collapse.addEventListener("click", function () { openAll(false); }); }
  function openTarget() {
    var target = location.hash ? document.getElementById(location.hash.slice(1)) : null;
    if (target && target.tagName === "DETAILS") { target.open = true; }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
  var status = document.getElementById("js-status");
  if (status) { status.textContent = data.traces.length + " requests loaded"; }
  document.documentElement.setAttribute("data-ready", String(data.traces.length));
})();
"""
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode("utf-8")).digest()).decode("ascii")
#: Nothing may be fetched (no network), only this page's own script may run.
CSP = (f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{_SCRIPT_HASH}'; img-src data:; "
       "base-uri 'none'; form-action 'none'")


def html_page(report: Report) -> str:
    body = [_header(report)]
    if not report.found:
        body.append("<p>nothing recorded yet: no traces.jsonl, metrics.jsonl or logs.jsonl here. Run the app with "
                    "AGENTWATCH_EXPORT=local and AGENTWATCH_FILE_DIR pointing at this directory.</p>")
    else:
        body.append('<nav><a href="#requests">requests</a><a href="#errors">errors</a><a href="#routes">routes</a>'
                    '<a href="#latency">latency</a><a href="#cost">cost</a><a href="#agent">agent pipeline</a>'
                    + "".join(f'<a href="#{key}">{key}</a>' for key, shown in (("agents", report.agents),
                                                                              ("tools", report.tools)) if shown)
                    + '<a href="#logs">logs</a></nav>')
        body += [_summary(report), _errors(report), _routes(report), _histograms(report), _costs(report),
                 _requests(report), _agent(report), _agents_tools(report), _logs(report)]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="referrer" content="no-referrer"><meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>agentwatch report: {_e(report.directory)}</title><style>{_CSS}</style></head>\n<body>"
        + "\n".join(part for part in body if part)
        + f'\n<script type="application/json" id="agentwatch-data">{_json(page_data(report))}</script>'
        + f"\n<script>{_SCRIPT}</script>\n</body></html>\n"
    )
