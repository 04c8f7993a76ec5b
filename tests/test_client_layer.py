"""agentwatch's HTTP client layer (agentwatch/web/client.py) records what the contrib httpx instrumentation recorded.

Each case runs in a fresh process (``_client_layer_run.py``: the stability mode is read once per process) with
real ``httpx``/``httpx2`` clients, sync and async, against a local server: known, lower-case and unknown
methods, 2xx/3xx/4xx/5xx answers, credentials and signed query parameters in the URL, non-ASCII paths and
queries, a refused connection. The spans (names, kinds, attributes in order, status, exception events), the
metric points (names, units, descriptions, bucket boundaries, attribute sets, counts) and the trace headers
the server received must be equal once the ports are normalised; only the instrumentation scope differs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).with_name("_client_layer_run.py")
LIBRARIES = [lib for lib in ("httpx", "httpx2") if importlib.util.find_spec(lib) is not None]


def _run(library: str, layer: str, **env: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_"))}
    environment.update({"OTEL_SEMCONV_STABILITY_OPT_IN": "http", **env})
    done = subprocess.run([sys.executable, str(RUN), library, layer], env=environment, capture_output=True,
                          text=True, timeout=120, cwd=str(RUN.parent))
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    names = {port: f"<port{n}>" for n, port in enumerate(out.pop("ports"))}

    def normal(value):
        if isinstance(value, list):
            return [normal(v) for v in value]
        if isinstance(value, dict):
            return {k: normal(v) for k, v in value.items()}
        if isinstance(value, int) and value in names:
            return names[value]
        if isinstance(value, str):
            for port, name in names.items():
                value = value.replace(f":{port}/", f":{name}/")
        return value

    return {k: (v if k == "received" else normal(v)) for k, v in out.items()}


def _comparable(out: dict) -> dict:
    spans = [{k: v for k, v in s.items() if k not in ("scope", "trace_id", "span_id")} for s in out["spans"]]
    points = sorted(({k: v for k, v in p.items() if k != "scope"} for p in out["points"]), key=json.dumps)
    return {"outcomes": out["outcomes"], "spans": spans, "points": points}


@pytest.mark.parametrize("library", LIBRARIES)
def test_same_spans_metrics_and_headers_as_the_contrib_instrumentation(library):
    contrib = _run(library, "contrib")
    ours = _run(library, "agentwatch")
    assert {s["scope"] for s in contrib["spans"]} == {"opentelemetry.instrumentation.httpx"}
    assert {s["scope"] for s in ours["spans"]} == {"agentwatch.web"}
    assert {p["scope"] for p in ours["points"]} == {"agentwatch.web"}
    assert {s["schema_url"] for s in ours["spans"]} == {s["schema_url"] for s in contrib["spans"]}
    assert _comparable(ours) == _comparable(contrib)
    # Every case was a request (22: 11 cases x sync/async), the refused ones included, with an exception event.
    assert len(ours["spans"]) == 22
    refused = [s for s in ours["spans"] if any(k == "url.full" and v.endswith("/refused") for k, v in s["attributes"])]
    assert len(refused) == 2
    assert all(s["status"][0] == "ERROR" and s["events"][0][0] == "exception" for s in refused)
    # What each layer recorded, it also propagated: the server saw each client span as the parent.
    for out in (contrib, ours):
        sent = {s["trace_id"] + s["span_id"] for s in out["spans"]}
        seen = {h["traceparent"][3:52].replace("-", "") for h in out["received"]}
        assert len(out["received"]) == 20  # 10 reachable cases x 2 clients (the redirect is not followed)
        assert seen <= sent and len(seen) == 20


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("layer", ["both", "client"])
def test_one_client_span_when_the_app_instruments_with_the_contrib_instrumentation_too(library, layer):
    out = _run(library, layer)
    assert len(out["spans"]) == 22
    assert {s["scope"] for s in out["spans"]} == {"opentelemetry.instrumentation.httpx"}
    assert len(out["points"]) == len(_run(library, "contrib")["points"])


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST": "user-agent"},
        {"OTEL_SEMCONV_STABILITY_OPT_IN": "http/dup"},
        {"AGENTWATCH_CLIENT_LAYER": "contrib"},
    ],
    ids=["captured-headers", "dup-conventions", "chosen"],
)
def test_the_contrib_wrappers_where_the_layer_would_not_give_their_output(env):
    library = LIBRARIES[-1]
    out = _run(library, "agentwatch", **env)
    assert {s["scope"] for s in out["spans"]} == {"opentelemetry.instrumentation.httpx"}
    if "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST" in env:
        assert all(any(k.startswith("http.request.header.user") for k, _ in s["attributes"]) for s in out["spans"])


def test_a_fault_inside_the_layer_costs_the_app_nothing():
    library = LIBRARIES[-1]
    faulty, plain = _run(library, "faulty"), _run(library, "contrib")
    assert faulty["outcomes"] == plain["outcomes"]  # every request answered (or refused) as without the fault
    traced = [s for s in faulty["spans"] if "/ok" in dict(map(tuple, s["attributes"]))["url.full"]]
    assert traced and len(traced) == len(faulty["spans"])  # the unreadable requests went out untraced
    assert faulty["received"] and not any(faulty["received"])  # no trace headers: the propagator broke


def test_the_distro_loads_the_layer_for_the_contrib_entry_points():
    from importlib.metadata import EntryPoint

    from agentwatch.distro.distro import AgentwatchDistro
    from agentwatch.web.client import AgentwatchHTTPX2ClientInstrumentor, AgentwatchHTTPXClientInstrumentor

    group = "opentelemetry_instrumentor"
    httpx_ep = EntryPoint("httpx", "opentelemetry.instrumentation.httpx:HTTPXClientInstrumentor", group)
    httpx2_ep = EntryPoint("httpx2", "opentelemetry.instrumentation.httpx:HTTPX2ClientInstrumentor", group)
    assert AgentwatchDistro._instrumentor_class(httpx_ep) is AgentwatchHTTPXClientInstrumentor
    assert AgentwatchDistro._instrumentor_class(httpx2_ep) is AgentwatchHTTPX2ClientInstrumentor
    # Their own singletons: instrumenting one never marks the contrib instrumentor as instrumented.
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    assert AgentwatchHTTPXClientInstrumentor() is not HTTPXClientInstrumentor()
    assert AgentwatchHTTPXClientInstrumentor().instrumentation_dependencies() == \
        HTTPXClientInstrumentor().instrumentation_dependencies()


def test_the_url_cache_stays_bounded_and_redacts_like_the_contrib_function():
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.util.http import redact_url

    from agentwatch.web import client

    layer = client._Layer(importlib.import_module("httpx"), HTTPXClientInstrumentor, None, None)
    for i in range(3 * client._URL_CACHE_SIZE):
        url = f"https://user:secret@api.example.com/v1/items/{i}?sig=abc{i}&page=2"
        assert layer.redacted(url) == redact_url(url)
        assert len(layer.urls) <= client._URL_CACHE_SIZE
    long_url = "https://api.example.com/?X-Goog-Signature=s&q=" + "x" * (client._URL_CACHE_MAX_CHARS + 1)
    assert layer.redacted(long_url) == redact_url(long_url)
    assert long_url not in layer.urls
