"""The resilience signals end to end: a real app under ``opentelemetry-instrument`` with agentwatch (the
entry points load the retry, breaker and rate-limit instrumentors), exporting through the real SDK to a
local OTLP receiver (tests/otlp_receiver.py). A Gemini 429 then a successful retry, a tenacity target, a
pybreaker and an aiobreaker opening and refusing, slowapi rejecting: what arrives is exactly the catalogue
(agentwatch/semconv.py RESILIENCE_*), and docs/telemetry.md's table is generated from it."""

from __future__ import annotations

import re
import subprocess
import textwrap
from pathlib import Path

import pytest
from _service import BIN, FAST_EXPORT, clean_env
from otlp_receiver import OTLPReceiver

from agentwatch import catalogue_md
from agentwatch import semconv as sc

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

FLAKY_JOB = '''
import tenacity

attempts = {"n": 0}

@tenacity.retry(wait=tenacity.wait_fixed(0.001), stop=tenacity.stop_after_attempt(3))
def refresh_rates():
    attempts["n"] += 1
    if attempts["n"] < 3:
        raise ConnectionError("rates service down")
    return 1.08
'''

APP = r'''
import asyncio, os, sys
from datetime import timedelta
sys.path.insert(0, os.environ["EXAMPLES_DIR"])
from fake_gemini import start_fake_gemini
from google import genai
from google.genai import types
from opentelemetry import trace
import aiobreaker, pybreaker
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from slowapi import Limiter, _rate_limit_exceeded_handler
from slowapi.errors import RateLimitExceeded
from slowapi.util import get_remote_address
import flaky_job

server, url = start_fake_gemini(port=0)
retry = types.HttpRetryOptions(attempts=3, initial_delay=0.01, max_delay=0.02, jitter=0.0)
client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=url, retry_options=retry))
assert client.models.generate_content(model="gemini-2.5-flash", contents="rate me #flaky-429-1").text

assert flaky_job.refresh_rates() == 1.08

tracer = trace.get_tracer("app")
def boom():
    raise ConnectionError("down")
breaker = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=60, name="payments")
try:
    breaker.call(boom)
except pybreaker.CircuitBreakerError:
    pass
with tracer.start_as_current_span("pay"):
    try:
        breaker.call(lambda: None)
    except pybreaker.CircuitBreakerError:
        pass

async def fail():
    raise ConnectionError("down")
async def use_aiobreaker():
    ab = aiobreaker.CircuitBreaker(fail_max=1, timeout_duration=timedelta(seconds=60), name="search")
    for _ in range(2):
        try:
            await ab.call_async(fail)
        except aiobreaker.CircuitBreakerError:
            pass
    return ab
kept = asyncio.run(use_aiobreaker())

limiter = Limiter(key_func=get_remote_address)
app = FastAPI()
app.state.limiter = limiter
app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)

@app.get("/chat")
@limiter.limit("1/minute")
def chat(request: Request):
    return {"ok": True}

with TestClient(app) as http:
    assert [http.get("/chat").status_code for _ in range(2)] == [200, 429]
server.shutdown()
'''


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resilience")
    (tmp / "app.py").write_text(APP)
    (tmp / "flaky_job.py").write_text(textwrap.dedent(FLAKY_JOB))
    with OTLPReceiver(protocol="grpc") as rx:
        env = clean_env(
            **rx.env(), **FAST_EXPORT, OTEL_SERVICE_NAME="resilience-app", EXAMPLES_DIR=str(ROOT / "examples"),
            PYTHONPATH=str(tmp), AGENTWATCH_RETRY_TARGETS="flaky_job:refresh_rates=rates",
        )
        proc = subprocess.run([str(BIN / "opentelemetry-instrument"), str(BIN / "python"), str(tmp / "app.py")],
                              env=env, cwd=tmp, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "agentwatch WARNING" not in proc.stderr, proc.stderr[-3000:]
        rx.wait_for(lambda r: any(m["name"] == sc.RATE_LIMIT_REJECTIONS_METRIC for m in r.metrics()), timeout=10)
        yield rx.spans(), rx.metrics()


def _latest(metrics: list[dict], name: str, scope: str | None = None) -> list[dict]:
    """The data points of the last export of ``name`` (cumulative: the last one has everything)."""
    found = [m for m in metrics if m["name"] == name and scope in (None, m["scope"])]
    return found[-1]["data_points"] if found else []


def test_one_gemini_call_span_with_its_attempts_and_the_retry_counter(exported):
    spans, metrics = exported
    calls = [s for s in spans if s["name"] == "generate_content gemini-2.5-flash"]
    assert len(calls) == 1, [s["name"] for s in spans]
    call = calls[0]
    assert call["attributes"][sc.RETRY_ATTEMPTS] == 2 and call["status"] != "ERROR"
    (event,) = call["events"]
    assert event["name"] == sc.RETRY_EVENT
    assert event["attributes"][sc.ERROR_TYPE] == "429" and event["attributes"][sc.RETRY_ADVISED_DELAY] == 2.0
    # each attempt is its own HTTP client span under the one call span
    http = [s for s in spans if s["parent_span_id"] == call["span_id"] and s["kind"] == "CLIENT"]
    assert len(http) == 2, [s["name"] for s in spans if s["parent_span_id"] == call["span_id"]]
    retried = {(p["attributes"].get(sc.RETRY_SOURCE), p["attributes"].get(sc.ERROR_TYPE)): p["value"]
               for p in _latest(metrics, sc.RETRY_FAILED_ATTEMPTS_METRIC)}
    assert retried == {("gemini", "429"): 1, ("tenacity", "ConnectionError"): 2}
    (limited,) = _latest(metrics, sc.GENAI_RATE_LIMIT_DELAY_METRIC)
    assert limited["count"] == 1 and limited["sum"] == 2.0


def test_breakers_and_rejections_arrive(exported):
    spans, metrics = exported
    for library, name in (("pybreaker", "payments"), ("aiobreaker", "search")):
        scope = f"agentwatch.instrumentors.breakers.{library}"
        state = {p["attributes"][sc.BREAKER_NAME]: p["value"] for p in _latest(metrics, sc.BREAKER_STATE_METRIC, scope)}
        refused = {p["attributes"][sc.BREAKER_NAME]: p["value"] for p in _latest(metrics, sc.BREAKER_REJECTED_METRIC, scope)}
        assert (state, refused) == ({name: 2}, {name: 1}), library
    (pay,) = [s for s in spans if s["name"] == "pay"]
    assert pay["attributes"][sc.BREAKER_STATE] == "open"
    (limited,) = _latest(metrics, sc.RATE_LIMIT_REJECTIONS_METRIC)
    assert limited["attributes"] == {sc.RATE_LIMIT_LIMIT: "1 per 1 minute"} and limited["value"] == 1
    server = [s for s in spans if s["kind"] == "SERVER" and s["attributes"].get(sc.RATE_LIMIT_LIMIT)]
    assert len(server) == 1 and server[0]["attributes"]["http.response.status_code"] == 429


def test_what_arrives_is_exactly_the_catalogue(exported):
    spans, metrics = exported
    scopes = {"agentwatch.instrumentors.retries", "agentwatch.instrumentors.breakers.pybreaker",
              "agentwatch.instrumentors.breakers.aiobreaker", "agentwatch.instrumentors.ratelimit"}
    emitted = {m["name"]: m for m in metrics if m["scope"] in scopes}
    assert set(emitted) == set(sc.RESILIENCE_METRICS_BY_NAME)
    for name, metric in emitted.items():
        entry = sc.RESILIENCE_METRICS_BY_NAME[name]
        assert (metric["unit"], metric["description"]) == (entry.unit, entry.description), name
        for point in metric["data_points"]:
            assert set(point["attributes"]) <= set(entry.attributes), (name, point["attributes"])
    (target,) = [s for s in spans if s["name"] == "rates"]
    entry = next(s for s in sc.RESILIENCE_SPANS if s.role == "retry target")
    assert set(target["attributes"]) <= set(entry.attributes) and target["attributes"][sc.RETRY_ATTEMPTS] == 3
    for event in target["events"]:
        assert event["name"] == sc.RETRY_EVENT and set(event["attributes"]) <= set(entry.event_attributes)
    gemini = next(s for s in sc.GENAI_SPANS if s.role == "gemini")
    for span in spans:
        for event in span["events"]:
            if event["name"] == sc.RETRY_EVENT:
                assert set(event["attributes"]) <= set(gemini.event_attributes)


def test_docs_table_is_generated_from_the_catalogue():
    text = (ROOT / "docs" / "telemetry.md").read_text()
    match = re.search(r"<!-- resilience-catalogue:start[^>]*-->\n(.*?)<!-- resilience-catalogue:end -->", text, re.S)
    assert match and match.group(1).strip() == catalogue_md.resilience_markdown().strip()
