"""GeminiInstrumentor: the real google-genai SDK against examples/fake_gemini.py.

Real SDK TracerProvider / MeterProvider / LoggerProvider with in-memory readers, the
stock httpx and httpx2 instrumentations underneath (as under opentelemetry-instrument: google-genai 3.x
sends through httpx2, 2.x through httpx), and the
distro's GenAI roll-up processor. No mock of the SDK or of the instrumentor.
"""

# No `from __future__ import annotations` here: google-genai 2.x checks the tools' arguments against
# their annotations with isinstance(), which fails on postponed (string) annotations (3.x resolves them).
import asyncio
import gc
import json
import logging
from pathlib import Path

import pytest
from _fake_gemini import start_fake_gemini  # a fake of their own for two tests
from _telemetry import Telemetry
from google import genai
from google.genai import errors, types
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor, HTTPXClientInstrumentor
from opentelemetry.trace import SpanKind, StatusCode

from agentwatch import catalogue_md
from agentwatch.distro import _diagnostics, genai_choice
from agentwatch.distro.rollup import GenAIRollupSpanProcessor
from agentwatch.instrumentors import _genai_common
from agentwatch.instrumentors.gemini import GeminiInstrumentor, extract, generate_content
from agentwatch.instrumentors.gemini import call as gemini_call

KEY = "AIzaSy-test-SECRET-key-0123456789"
MODEL = "gemini-2.5-flash"
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
FLASH = _genai_common.Price(0.30, 2.50, 0.03)


@pytest.fixture
def fake(fake_gemini, monkeypatch) -> str:
    """The session's fake Gemini, taking any key (the tests send their own, KEY)."""
    return fake_gemini.require_key(None, monkeypatch)


class GeminiTelemetry(Telemetry):
    """The shared in-memory telemetry, with the distro's GenAI roll-up processor ahead of the exporter."""

    def __init__(self) -> None:
        super().__init__(GenAIRollupSpanProcessor())

    def gemini_spans(self):
        return self.spans("agentwatch.instrumentors.gemini")

    def calls(self):
        return [
            s for s in self.gemini_spans()
            if "agentwatch.gen_ai.round_trip" not in s.attributes and s.attributes["gen_ai.operation.name"] != "execute_tool"
        ]

    def round_trips(self):
        spans = [s for s in self.gemini_spans() if "agentwatch.gen_ai.round_trip" in s.attributes]
        return sorted(spans, key=lambda s: s.attributes["agentwatch.gen_ai.round_trip"])

    def tools(self):
        return [s for s in self.gemini_spans() if s.attributes["gen_ai.operation.name"] == "execute_tool"]


@pytest.fixture
def tel(monkeypatch):
    for var in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GEMINI_BASE_URL",
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "AGENTWATCH_GENAI_PRICES"):
        monkeypatch.delenv(var, raising=False)
    telemetry = GeminiTelemetry()
    yield telemetry
    telemetry.shutdown()


@pytest.fixture
def instrument(tel):
    """Instrument gemini (+ httpx2 and httpx) with ``tel``'s providers; undone at teardown."""
    done = []

    def _instrument():
        http = [HTTPX2ClientInstrumentor(), HTTPXClientInstrumentor()]
        for instrumentor in http:
            instrumentor.instrument(tracer_provider=tel.tracer_provider, meter_provider=tel.meter_provider)
        inst = GeminiInstrumentor()
        inst.instrument(
            tracer_provider=tel.tracer_provider, meter_provider=tel.meter_provider, logger_provider=tel.logger_provider
        )
        done.extend([inst, *http])
        return tel

    yield _instrument
    for inst in done:
        inst.uninstrument()


@pytest.fixture
def client(fake):
    c = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=fake))
    yield c
    c.close()


def weather(city: str) -> str:
    """Get the weather of a city."""
    return f"sunny in {city}"


def _cost(price, input_tokens, output_tokens, cached=0):
    return _genai_common.call_cost(price, input_tokens, output_tokens, cached)


# --------------------------------------------------------------------------- basics
def test_entry_point_and_dependencies():
    from importlib.metadata import version

    from opentelemetry.util._importlib_metadata import entry_points
    from packaging.requirements import Requirement

    (ep,) = [ep for ep in entry_points(group="opentelemetry_instrumentor") if ep.name == "gemini"]
    assert ep.load() is GeminiInstrumentor
    (requirement,) = [Requirement(d) for d in GeminiInstrumentor().instrumentation_dependencies()]
    assert requirement.name == "google-genai"
    # bounded above the newest tested major: the private SDK methods it wraps may change in the next one
    assert requirement.specifier.contains(version("google-genai"))
    assert not requirement.specifier.contains("4.0.0")


def test_sync_generate_content(instrument, client, fake):
    tel = instrument()
    config = types.GenerateContentConfig(
        temperature=0.2, top_p=0.9, top_k=20, max_output_tokens=64, stop_sequences=["END"], seed=7,
        candidate_count=1, thinking_config=types.ThinkingConfig(thinking_budget=128),
    )
    with tel.tracer_provider.get_tracer("t").start_as_current_span("parent"):
        response = client.models.generate_content(model=MODEL, contents="Say hi", config=config)
    usage = response.usage_metadata
    assert usage.thoughts_token_count == 32

    (span,) = tel.gemini_spans()
    a = dict(span.attributes)
    assert span.name == f"generate_content {MODEL}" and span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert a["gen_ai.operation.name"] == "generate_content"
    assert a["gen_ai.provider.name"] == "gcp.gemini" and "gen_ai.system" not in a
    assert a["gen_ai.request.model"] == MODEL
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == int(fake.rsplit(":", 1)[1])
    assert (a["gen_ai.request.temperature"], a["gen_ai.request.top_p"], a["gen_ai.request.top_k"]) == (0.2, 0.9, 20)
    assert a["gen_ai.request.max_tokens"] == 64 and a["gen_ai.request.seed"] == 7
    assert a["gen_ai.request.stop_sequences"] == ("END",)
    assert "gen_ai.request.choice.count" not in a  # only when != 1
    assert a["gen_ai.response.id"] == response.response_id and a["gen_ai.response.model"] == MODEL
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    # thinking tokens are output tokens (and billed)
    assert a["gen_ai.usage.input_tokens"] == usage.prompt_token_count
    assert a["gen_ai.usage.output_tokens"] == usage.candidates_token_count + 32
    assert a["gen_ai.usage.reasoning.output_tokens"] == 32
    assert a["agentwatch.gen_ai.usage.cost"] == pytest.approx(
        _cost(FLASH, usage.prompt_token_count, usage.candidates_token_count + 32)
    )
    # the httpx2 CLIENT span of the request is a child of the Gemini span
    (http,) = [s for s in tel.spans() if s.name == "POST"]
    assert http.parent.span_id == span.context.span_id
    parent = next(s for s in tel.spans() if s.name == "parent")
    assert span.parent.span_id == parent.context.span_id


def test_cached_tokens_priced_as_cached(instrument, client):
    tel = instrument()
    response = client.models.generate_content(
        model=MODEL, contents="a longer prompt with several words in it",
        config=types.GenerateContentConfig(cached_content="cachedContents/abc"),
    )
    usage = response.usage_metadata
    (span,) = tel.gemini_spans()
    assert span.attributes["gen_ai.usage.cache_read.input_tokens"] == usage.cached_content_token_count > 0
    assert span.attributes["agentwatch.gen_ai.usage.cost"] == pytest.approx(
        _cost(FLASH, usage.prompt_token_count, usage.candidates_token_count, usage.cached_content_token_count)
    )


def test_async_generate_content(instrument, client):
    tel = instrument()

    async def run():
        with tel.tracer_provider.get_tracer("t").start_as_current_span("parent"):
            first, second = await asyncio.gather(
                client.aio.models.generate_content(model=MODEL, contents="one"),
                client.aio.models.generate_content(model=MODEL, contents="two"),
            )
        await client.aio.aclose()
        return first, second

    first, second = asyncio.run(run())
    spans = tel.gemini_spans()
    parent = next(s for s in tel.spans() if s.name == "parent")
    assert len(spans) == 2 and all(s.parent.span_id == parent.context.span_id for s in spans)
    assert {s.attributes["gen_ai.response.id"] for s in spans} == {first.response_id, second.response_id}
    for http in [s for s in tel.spans() if s.name == "POST"]:
        assert http.parent.span_id in {s.context.span_id for s in spans}


# --------------------------------------------------------------------------- streams
def _stream_span(tel):
    (span,) = tel.gemini_spans()
    assert span.end_time is not None
    return span


def test_stream_exhausted(instrument, client):
    tel = instrument()
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="tell me about streams please"))
    assert len(chunks) > 2
    span = _stream_span(tel)
    a = span.attributes
    assert a["gen_ai.request.stream"] is True
    assert a["agentwatch.gen_ai.stream.outcome"] == "completed"
    assert 0 < a["gen_ai.response.time_to_first_chunk"] < 5
    last = chunks[-1].usage_metadata
    assert a["gen_ai.usage.output_tokens"] == last.candidates_token_count  # from the final chunk
    assert a["gen_ai.usage.input_tokens"] == last.prompt_token_count
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    m = tel.metrics()
    assert m["gen_ai.client.operation.time_to_first_chunk"].data.data_points[0].count == 1
    tpoc = m["gen_ai.client.operation.time_per_output_chunk"].data.data_points[0]
    assert tpoc.count == len(chunks) - 1 and tuple(tpoc.explicit_bounds) == DURATION_BUCKETS


def test_stream_broken_early_and_garbage_collected(instrument, client):
    tel = instrument()
    for chunk in client.models.generate_content_stream(model=MODEL, contents="tell me about streams please"):
        break
    gc.collect()
    span = _stream_span(tel)
    assert span.attributes["agentwatch.gen_ai.stream.outcome"] == "abandoned"
    assert span.status.status_code is StatusCode.UNSET


def test_stream_closed_ends_once(instrument, client):
    tel = instrument()
    stream = client.models.generate_content_stream(model=MODEL, contents="tell me about streams please")
    next(stream)
    stream.close()
    stream.close()
    del stream
    gc.collect()
    span = _stream_span(tel)
    assert span.attributes["agentwatch.gen_ai.stream.outcome"] == "closed_early"
    assert len(tel.metrics()["gen_ai.client.operation.duration"].data.data_points) == 1
    assert tel.metrics()["gen_ai.client.operation.duration"].data.data_points[0].count == 1


@pytest.mark.parametrize("marker", ["#fail-stream", "#cut-stream"])
def test_stream_error_mid_stream(instrument, client, marker):
    def consume():
        got = []
        try:
            for chunk in client.models.generate_content_stream(model=MODEL, contents=f"tell me more {marker}"):
                got.append(chunk.text)
        except Exception as error:  # noqa: BLE001
            return got, error
        return got, None

    plain_chunks, plain_error = consume()  # uninstrumented: what the app sees
    tel = instrument()
    chunks, error = consume()
    assert chunks == plain_chunks and len(chunks) == 1
    assert type(error) is type(plain_error) and str(error) == str(plain_error)
    span = _stream_span(tel)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["agentwatch.gen_ai.stream.outcome"] == "error"
    expected = "500" if marker == "#fail-stream" else type(error).__qualname__
    assert span.attributes["error.type"] == expected


def test_async_stream_exhausted_and_closed(instrument, client):
    tel = instrument()

    async def run():
        got = [c async for c in await client.aio.models.generate_content_stream(model=MODEL, contents="stream it")]
        stream = await client.aio.models.generate_content_stream(model=MODEL, contents="stream it again")
        await stream.__anext__()
        await stream.aclose()
        try:
            async for _ in await client.aio.models.generate_content_stream(model=MODEL, contents="x #fail-stream"):
                pass
        except errors.ServerError:
            pass
        await client.aio.aclose()
        return got

    assert len(asyncio.run(run())) > 1
    outcomes = sorted(s.attributes["agentwatch.gen_ai.stream.outcome"] for s in tel.gemini_spans())
    assert outcomes == ["closed_early", "completed", "error"]


# --------------------------------------------------------------------------- other operations
def test_embed_content(instrument, client):
    tel = instrument()
    response = client.models.embed_content(model="gemini-embedding-001", contents=["a", "b"])
    (span,) = tel.gemini_spans()
    assert span.name == "embeddings gemini-embedding-001"
    assert span.attributes["gen_ai.operation.name"] == "embeddings"
    assert span.attributes["gen_ai.embeddings.dimension.count"] == len(response.embeddings[0].values)
    (http,) = [s for s in tel.spans() if s.name == "POST"]
    url = http.attributes.get("url.full") or http.attributes.get("http.url")  # whichever HTTP conventions are on
    assert url.endswith(":batchEmbedContents") and http.parent.span_id == span.context.span_id


def test_count_tokens(instrument, client):
    tel = instrument()
    response = client.models.count_tokens(model=MODEL, contents="how many tokens is this")
    (span,) = tel.gemini_spans()
    assert span.name == f"count_tokens {MODEL}"
    assert span.attributes["agentwatch.gen_ai.count_tokens.total_tokens"] == response.total_tokens
    assert "gen_ai.usage.input_tokens" not in span.attributes  # not billed: no usage, no cost
    assert "gen_ai.client.token.usage" not in tel.metrics()


def test_chat_one_span_per_message(instrument, client):
    tel = instrument()
    chat = client.chats.create(model=MODEL)
    chat.send_message("hello")
    list(chat.send_message_stream("and again"))
    spans = tel.gemini_spans()
    assert [s.name for s in spans] == [f"generate_content {MODEL}"] * 2
    assert len([s for s in tel.spans() if s.name == "POST"]) == 2


def test_vertex_client_provider(instrument, fake):
    tel = instrument()
    vertex = genai.Client(vertexai=True, api_key=KEY, http_options=types.HttpOptions(base_url=fake))
    vertex.models.generate_content(model=MODEL, contents="hi")
    (span,) = tel.gemini_spans()
    assert span.attributes["gen_ai.provider.name"] == "gcp.vertex_ai"
    vertex.close()


# --------------------------------------------------------------------------- function calling
def test_automatic_function_calling_round_trips(instrument, client):
    tel = instrument()
    response = client.models.generate_content(
        model=MODEL, contents="What is the weather in Paris?", config=types.GenerateContentConfig(tools=[weather])
    )
    assert "sunny in Paris" in response.text
    (call,) = tel.calls()
    hops = tel.round_trips()
    assert [h.attributes["agentwatch.gen_ai.round_trip"] for h in hops] == [1, 2]
    assert all(h.parent.span_id == call.context.span_id for h in hops)
    assert hops[0].attributes["agentwatch.gen_ai.response.tool_calls"] == ("weather",)
    assert call.attributes["agentwatch.gen_ai.request.tools"] == ("weather",)
    # each round trip's HTTP span sits under its own round-trip span
    https = [s for s in tel.spans() if s.name == "POST"]
    assert sorted(h.parent.span_id for h in https) == sorted(h.context.span_id for h in hops)
    # the call carries what was billed: the sum over both requests (anchors report only the last)
    for key in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"):
        assert call.attributes[key] == sum(h.attributes[key] for h in hops)
    assert call.attributes[key] > response.usage_metadata.candidates_token_count
    assert call.attributes["agentwatch.gen_ai.round_trips"] == 2
    assert call.attributes["agentwatch.gen_ai.usage.cost"] == pytest.approx(
        sum(h.attributes["agentwatch.gen_ai.usage.cost"] for h in hops)
    )
    points = {p.attributes["gen_ai.token.type"]: p for p in tel.metrics()["gen_ai.client.token.usage"].data.data_points}
    assert points["input"].sum == call.attributes["gen_ai.usage.input_tokens"] and points["input"].count == 1


def test_streamed_function_calling_round_trips(instrument, client):
    tel = instrument()
    chunks = list(
        client.models.generate_content_stream(
            model=MODEL, contents="What is the weather in Paris?", config=types.GenerateContentConfig(tools=[weather])
        )
    )
    assert "sunny in Paris" in "".join(c.text or "" for c in chunks)
    (call,) = tel.calls()
    hops = tel.round_trips()
    assert len(hops) == 2 and all(h.parent.span_id == call.context.span_id for h in hops)
    assert all(call.start_time <= h.start_time <= h.end_time <= call.end_time for h in hops)
    assert call.attributes["gen_ai.usage.input_tokens"] == sum(h.attributes["gen_ai.usage.input_tokens"] for h in hops)


# --------------------------------------------------------------------------- execute_tool (automatic function calling)
def _one_tool(tel, name="weather"):
    (tool,) = tel.tools()
    assert tool.name == f"execute_tool {name}" and tool.kind is SpanKind.INTERNAL
    return tool


def test_afc_tool_run_is_an_execute_tool_span_under_the_call(instrument, client):
    tel = instrument()
    client.models.generate_content(
        model=MODEL, contents="What is the weather in Paris?", config=types.GenerateContentConfig(tools=[weather])
    )
    (call,) = tel.calls()
    first, second = tel.round_trips()
    tool = _one_tool(tel)
    assert dict(tool.attributes) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "weather",
        "gen_ai.tool.type": "function",
        "gen_ai.tool.description": "Get the weather of a city.",
    }  # no call id (the fake's function calls carry none), no arguments/result (content is off)
    assert tool.parent.span_id == call.context.span_id and tool.status.status_code is StatusCode.UNSET
    assert first.end_time <= tool.start_time <= tool.end_time <= second.start_time  # between the two requests
    metric = tel.metrics()["gen_ai.execute_tool.duration"]
    (point,) = metric.data.data_points
    assert metric.unit == "s" and point.count == 1 and tuple(point.explicit_bounds) == DURATION_BUCKETS
    assert dict(point.attributes) == {
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "weather", "gen_ai.tool.type": "function",
    }


def test_tool_call_id_from_the_model(instrument, fake):
    import fake_gemini

    class WithIds(fake_gemini._Handler):  # the same fake, with ids on its function calls (as Vertex sends)
        @staticmethod
        def _function_call(body):
            call = fake_gemini._Handler._function_call(body)
            if call is not None:
                call["functionCall"]["id"] = "call-" + call["functionCall"]["name"] + "-1"
            return call

    server, url = start_fake_gemini(port=0)
    server.RequestHandlerClass = WithIds
    c = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=url))
    tel = instrument()
    c.models.generate_content(model=MODEL, contents="weather?", config=types.GenerateContentConfig(tools=[weather]))
    assert _one_tool(tel).attributes["gen_ai.tool.call.id"] == "call-weather-1"
    c.close()
    server.shutdown()


def test_async_afc_sync_and_async_tools(instrument, client):
    async def forecast(city: str) -> str:
        """Forecast for a city."""
        await asyncio.sleep(0)
        return f"rain in {city}"

    tel = instrument()

    async def run():
        for tool in (weather, forecast):  # a sync function runs in a thread, a coroutine is awaited
            await client.aio.models.generate_content(
                model=MODEL, contents="weather in Paris?", config=types.GenerateContentConfig(tools=[tool])
            )
        await client.aio.aclose()

    asyncio.run(run())
    calls = {s.context.span_id for s in tel.calls()}
    tools = tel.tools()
    assert sorted(t.name for t in tools) == ["execute_tool forecast", "execute_tool weather"]
    assert all(t.parent.span_id in calls for t in tools)


def test_streamed_afc_tool_span(instrument, client):
    tel = instrument()
    list(client.models.generate_content_stream(
        model=MODEL, contents="What is the weather in Paris?", config=types.GenerateContentConfig(tools=[weather])
    ))
    (call,) = tel.calls()
    assert _one_tool(tel).parent.span_id == call.context.span_id


def test_chat_afc_tool_span(instrument, client):
    tel = instrument()
    parent = tel.tracer_provider.get_tracer("t").start_span("chat turn")
    from opentelemetry import trace as api

    with api.use_span(parent, end_on_exit=True):
        chat = client.chats.create(model=MODEL, config=types.GenerateContentConfig(tools=[weather]))
        chat.send_message("What is the weather in Paris?")
    # the chat runs its own loop: two generate_content calls, the tool between them, all under the turn
    assert len(tel.calls()) == 2
    assert _one_tool(tel).parent.span_id == parent.context.span_id


def test_failing_tool_is_an_error_span_and_the_app_gets_the_same_answer(instrument, client):
    def lookup(city: str) -> str:
        """Look a city up."""
        raise ValueError(f"no data for {city}")

    def ask():
        return client.models.generate_content(
            model=MODEL, contents="weather in Paris?", config=types.GenerateContentConfig(tools=[lookup])
        )

    plain = ask()
    tel = instrument()
    got = ask()
    assert got.text == plain.text and "no data for Paris" in got.text  # the SDK sent the model the error
    tool = _one_tool(tel, "lookup")
    assert tool.status.status_code is StatusCode.ERROR and tool.attributes["error.type"] == "ValueError"
    (event,) = tool.events
    assert event.attributes["exception.type"] == "ValueError"
    (call,) = tel.calls()
    assert call.status.status_code is StatusCode.UNSET  # the call itself succeeded
    (point,) = tel.metrics()["gen_ai.execute_tool.duration"].data.data_points
    assert point.attributes["error.type"] == "ValueError"


def test_tool_arguments_and_result_only_with_content_capture(instrument, client, monkeypatch):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    tel = instrument()
    client.models.generate_content(
        model=MODEL, contents="weather in Paris?", config=types.GenerateContentConfig(tools=[weather])
    )
    tool = _one_tool(tel)
    assert json.loads(tool.attributes["gen_ai.tool.call.arguments"]) == {"city": "Paris"}
    assert json.loads(tool.attributes["gen_ai.tool.call.result"]) == "sunny in Paris"


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("code", [400, 403, 404, 429, 500, 503, 504])
def test_error_status(instrument, client, code):
    def call():
        try:
            client.models.generate_content(model=MODEL, contents=f"break #fail-{code}")
        except errors.APIError as error:
            return error
        raise AssertionError("no error")

    plain = call()
    tel = instrument()
    error = call()
    assert type(error) is type(plain) and str(error) == str(plain) and error.code == code
    (span,) = tel.gemini_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == str(code)
    assert "gen_ai.usage.input_tokens" not in span.attributes
    (event,) = [e for e in span.events if e.name == "exception"]
    assert event.attributes["exception.type"].endswith("ClientError" if code < 500 else "ServerError")
    (point,) = tel.metrics()["gen_ai.client.operation.duration"].data.data_points
    assert point.attributes["error.type"] == str(code)
    assert "gen_ai.client.token.usage" not in tel.metrics()
    if code == 429:
        assert "RetryInfo" in str(error.details)


# --------------------------------------------------------------------------- metrics and cost
def test_metrics_buckets_and_bounded_attributes(instrument, client):
    tel = instrument()
    for text in ("one", "two", "three"):
        client.models.generate_content(model=MODEL, contents=text)
    m = tel.metrics()
    (duration,) = m["gen_ai.client.operation.duration"].data.data_points
    assert m["gen_ai.client.operation.duration"].unit == "s"
    assert duration.count == 3 and tuple(duration.explicit_bounds) == DURATION_BUCKETS
    assert set(duration.attributes) == {
        "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model",
        "server.address", "server.port",
    }
    tokens = m["gen_ai.client.token.usage"]
    assert tokens.unit == "{token}"
    by_type = {p.attributes["gen_ai.token.type"]: p for p in tokens.data.data_points}
    assert set(by_type) == {"input", "output"}
    assert all(tuple(p.explicit_bounds) == TOKEN_BUCKETS and p.count == 3 for p in by_type.values())
    spans = tel.gemini_spans()
    assert by_type["output"].sum == sum(s.attributes["gen_ai.usage.output_tokens"] for s in spans)
    (cost,) = m["agentwatch.gen_ai.client.cost"].data.data_points
    assert m["agentwatch.gen_ai.client.cost"].unit == "USD"
    assert cost.value == pytest.approx(sum(s.attributes["agentwatch.gen_ai.usage.cost"] for s in spans))


def test_price_table_lookup_override_and_unknown(tmp_path, monkeypatch):
    table = _genai_common.PriceTable.load({})
    assert table.as_of and table.price("gemini-2.5-flash") == FLASH
    assert table.price("gemini-2.5-flash-001") == FLASH  # versioned name -> base price
    assert table.price("gemini-2.5-flash-lite").input == 0.10  # longest match, not a prefix
    assert table.price("gemini-2.5-flash-weird") is None and table.price("nope") is None
    pro = table.price("gemini-2.5-pro")
    assert _genai_common.call_cost(pro, 300_000, 1000) == pytest.approx((300_000 * 2.5 + 1000 * 15.0) / 1e6)
    override = tmp_path / "prices.json"
    override.write_text(json.dumps({"my-model": {"input": 1.0, "output": 2.0}, "gemini-2.5-flash": {"input": 9, "output": 9}}))
    table = _genai_common.PriceTable.load({"AGENTWATCH_GENAI_PRICES": str(override)})
    assert table.price("my-model").output == 2.0 and table.price("gemini-2.5-flash").input == 9
    _diagnostics.reset()
    table = _genai_common.PriceTable.load({"AGENTWATCH_GENAI_PRICES": str(tmp_path / "missing.json")})
    assert table.price("gemini-2.5-flash") == FLASH
    assert any("AGENTWATCH_GENAI_PRICES" in line for line in _diagnostics.messages())


def test_unknown_model_no_cost_one_debug_line(instrument, client):
    tel = instrument()
    client.models.generate_content(model="gemini-unknown-9", contents="hi")
    client.models.generate_content(model="gemini-unknown-9", contents="hi again")
    assert all("agentwatch.gen_ai.usage.cost" not in s.attributes for s in tel.gemini_spans())
    assert len([m for m in _diagnostics.messages() if "gemini-unknown-9" in m]) == 1
    assert "agentwatch.gen_ai.client.cost" not in tel.metrics()


def test_request_rollup_on_server_span(instrument, client):
    tel = instrument()
    tracer = tel.tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("POST /chat", kind=SpanKind.SERVER):
        client.models.generate_content(model=MODEL, contents="first")
        client.models.generate_content(
            model=MODEL, contents="What is the weather in Paris?", config=types.GenerateContentConfig(tools=[weather])
        )
        client.models.count_tokens(model=MODEL, contents="x")
    with tracer.start_as_current_span("GET /other", kind=SpanKind.SERVER):
        pass
    server = next(s for s in tel.spans() if s.name == "POST /chat")
    calls = [s for s in tel.calls() if s.attributes["gen_ai.operation.name"] == "generate_content"]
    assert len(calls) == 2  # + 2 round-trip children, not counted twice
    a = server.attributes
    assert a["agentwatch.request.gen_ai.calls"] == 3  # count_tokens counted as a call, with no tokens
    assert a["agentwatch.request.gen_ai.input_tokens"] == sum(c.attributes["gen_ai.usage.input_tokens"] for c in calls)
    assert a["agentwatch.request.gen_ai.output_tokens"] == sum(c.attributes["gen_ai.usage.output_tokens"] for c in calls)
    assert a["agentwatch.request.gen_ai.cost"] == pytest.approx(
        sum(c.attributes["agentwatch.gen_ai.usage.cost"] for c in calls)
    )
    other = next(s for s in tel.spans() if s.name == "GET /other")
    assert not any(k.startswith("agentwatch.request.gen_ai") for k in other.attributes)


# --------------------------------------------------------------------------- content capture
def test_content_off_by_default(instrument, client):
    tel = instrument()
    client.models.generate_content(
        model=MODEL, contents="my email is bob@example.com",
        config=types.GenerateContentConfig(system_instruction="Be terse."),
    )
    (span,) = tel.gemini_spans()
    assert not [k for k in span.attributes if k.startswith(("gen_ai.input", "gen_ai.output", "gen_ai.system_inst"))]
    assert "bob@example.com" not in span.to_json()
    assert tel.logs() == []


def test_content_span_only(instrument, client, monkeypatch):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
    monkeypatch.setenv("AGENTWATCH_GENAI_CONTENT_MAX_CHARS", "40")
    tel = instrument()
    client.models.generate_content(
        model=MODEL, contents="Say hi " + "x" * 100, config=types.GenerateContentConfig(system_instruction="Be terse.", tools=[weather]),
    )
    (call,) = tel.calls()
    inputs = json.loads(call.attributes["gen_ai.input.messages"])
    assert inputs[0]["role"] == "user" and inputs[0]["parts"][0]["type"] == "text"
    assert inputs[0]["parts"][0]["content"].endswith("...[truncated 67 chars]")
    assert json.loads(call.attributes["gen_ai.system_instructions"]) == [{"type": "text", "content": "Be terse."}]
    assert json.loads(call.attributes["gen_ai.tool.definitions"])[0]["name"] == "weather"
    outputs = json.loads(call.attributes["gen_ai.output.messages"])
    assert outputs[0]["role"] == "assistant" and outputs[0]["finish_reason"] == "stop"
    assert outputs[0]["parts"][0]["content"].startswith("The weather tool says: {\"result\": \"sunny")
    assert tel.logs() == []


def test_content_event_only(instrument, client, monkeypatch):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "EVENT_ONLY")
    tel = instrument()
    client.models.generate_content(model=MODEL, contents="Say hi")
    (span,) = tel.gemini_spans()
    assert "gen_ai.input.messages" not in span.attributes and "gen_ai.output.messages" not in span.attributes
    (log,) = tel.logs()
    record = log.log_record
    assert record.event_name == "gen_ai.client.inference.operation.details"
    assert record.span_id == span.context.span_id
    assert record.attributes["gen_ai.input.messages"][0]["parts"][0]["content"] == "Say hi"
    assert record.attributes["gen_ai.output.messages"][0]["role"] == "assistant"
    assert record.attributes["gen_ai.request.model"] == MODEL


def test_instrumentation_choice_values():
    choice = genai_choice.instrumentation_choice
    assert choice({}) == "agentwatch" and choice({"AGENTWATCH_GENAI_INSTRUMENTATION": " Official "}) == "official"
    assert choice({"AGENTWATCH_GENAI_INSTRUMENTATION": "both"}) == "agentwatch"
    (line,) = [m for m in _diagnostics.messages() if "AGENTWATCH_GENAI_INSTRUMENTATION" in m]
    assert "'both'" in line and "using 'agentwatch' instead" in line
    status = genai_choice.instrumentation_status({})  # the official one is not installed in the project venv
    assert status.official is None and status.used == "agentwatch" and not status.skip_official
    assert status.describe() is None
    level, line = genai_choice.instrumentation_status({"AGENTWATCH_GENAI_INSTRUMENTATION": "official"}).describe()
    assert level == logging.WARNING and "is not installed: agentwatch's Gemini instrumentor is used" in line


def test_content_true_means_span_only_with_a_note(monkeypatch):
    settings = _genai_common.capture_settings({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"})
    assert settings.mode == "SPAN_ONLY"
    assert any("SPAN_ONLY" in m for m in _diagnostics.messages())
    assert _genai_common.capture_settings({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false"}).mode == "NO_CONTENT"
    _diagnostics.reset()
    assert _genai_common.capture_settings({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "loud"}).mode == "NO_CONTENT"
    assert any("'loud'" in m and "NO_CONTENT" in m for m in _diagnostics.messages())


# --------------------------------------------------------------------------- secrets
@pytest.mark.parametrize("how", ["argument", "GEMINI_API_KEY", "GOOGLE_API_KEY"])
def test_api_key_in_no_exported_byte(instrument, fake, monkeypatch, how, capfd):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_AND_EVENT")
    options = types.HttpOptions(base_url=fake)
    if how == "argument":
        c = genai.Client(api_key=KEY, http_options=options)
    else:
        monkeypatch.setenv(how, KEY)
        c = genai.Client(http_options=options)
    assert c._api_client.api_key == KEY
    tel = instrument()
    logging.getLogger("google_genai").setLevel(logging.DEBUG)
    c.models.generate_content(model=MODEL, contents=f"hello (my key is not {KEY[:6]})")
    list(c.models.generate_content_stream(model=MODEL, contents="stream"))
    c.models.embed_content(model="gemini-embedding-001", contents=["a"])
    c.models.count_tokens(model=MODEL, contents="a")
    for bad in ("#fail-400", "#fail-429", "#fail-stream", "#cut-stream"):
        try:
            list(c.models.generate_content_stream(model=MODEL, contents=bad))
        except Exception:  # noqa: BLE001
            pass
    # a wrong key the server rejects (the error must not echo the key either)
    other, _ = start_fake_gemini(port=0, api_key="the-right-key")
    wrong = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=other.url))
    with pytest.raises(errors.ClientError):
        wrong.models.generate_content(model=MODEL, contents="hi")
    other.shutdown()
    spans = tel.spans()
    assert len(spans) >= 12
    exported = encode_spans(spans).SerializeToString()
    exported += encode_metrics(tel.metrics_data()).SerializeToString()
    exported += encode_logs(tel.logs()).SerializeToString()
    assert b"gen_ai" in exported and b"batchEmbedContents" in exported  # the HTTP spans' URLs are in there
    assert KEY.encode() not in exported
    assert b"x-goog-api-key" not in exported.lower()
    out, err = capfd.readouterr()
    assert KEY not in out + err
    c.close()
    wrong.close()


# --------------------------------------------------------------------------- never break the app
def test_extraction_failures_do_not_change_what_the_app_gets(instrument, client, monkeypatch, lenient):
    plain = client.models.generate_content(model=MODEL, contents="same answer please")
    plain_stream = [c.text for c in client.models.generate_content_stream(model=MODEL, contents="same stream")]
    tel = instrument()

    def boom(*args, **kwargs):
        raise RuntimeError("instrumentation bug")

    monkeypatch.setattr(extract, "response_attributes", boom)
    monkeypatch.setattr(extract.Usage, "of", classmethod(lambda cls, m: boom()))
    monkeypatch.setattr(gemini_call.Call, "_request_attributes", boom)
    monkeypatch.setattr(generate_content.GenerateContentCall, "observe_chunk", boom)
    _diagnostics.reset()
    got = client.models.generate_content(model=MODEL, contents="same answer please")
    assert got.model_dump(exclude={"sdk_http_response"}) == plain.model_dump(exclude={"sdk_http_response"})
    assert [c.text for c in client.models.generate_content_stream(model=MODEL, contents="same stream")] == plain_stream
    with pytest.raises(errors.ClientError):
        client.models.generate_content(model=MODEL, contents="#fail-429")
    assert len(tel.gemini_spans()) == 3 and all(s.end_time for s in tel.gemini_spans())
    assert any("instrumentation bug" in m for m in _diagnostics.messages())


def test_span_start_failure_passes_through(instrument, client, monkeypatch, lenient):
    tel = instrument()
    monkeypatch.setattr(gemini_call.Call, "__init__", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("bug")))
    assert client.models.generate_content(model=MODEL, contents="still works").text
    assert tel.gemini_spans() == []


def test_uninstrument_restores_everything(tel, client):
    import google.genai._extra_utils as tools
    import google.genai.models as models

    originals = {name: getattr(models.Models, name) for name in ("generate_content", "_generate_content", "count_tokens")}
    tool_functions = {name: getattr(tools, name) for name in ("invoke_function_from_dict_args", "get_function_response_parts")}
    inst = GeminiInstrumentor()
    inst.instrument(tracer_provider=tel.tracer_provider, meter_provider=tel.meter_provider)
    assert models.Models.generate_content is not originals["generate_content"]
    assert tools.invoke_function_from_dict_args is not tool_functions["invoke_function_from_dict_args"]
    inst.uninstrument()
    for name, function in originals.items():
        assert getattr(models.Models, name) is function
    for name, function in tool_functions.items():
        assert getattr(tools, name) is function
    client.models.generate_content(model=MODEL, contents="hi")
    assert tel.gemini_spans() == []


def test_captured_content_goes_through_the_scrubber(instrument, client, monkeypatch):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    tel = instrument()
    client.models.generate_content(model=MODEL, contents="My email is bob@example.com, say hi")
    (span,) = tel.gemini_spans()
    assert "bob@example.com" not in span.attributes["gen_ai.input.messages"]
    assert "[REDACTED:email]" in span.attributes["gen_ai.input.messages"]


# --------------------------------------------------------------------------- the catalogue (agentwatch/semconv.py)
def test_docs_gemini_tables_are_generated_from_the_catalogue():
    import re

    from agentwatch import semconv

    text = (Path(__file__).resolve().parents[1] / "docs" / "telemetry.md").read_text()
    match = re.search(r"<!-- genai-catalogue:start[^>]*-->\n(.*?)<!-- genai-catalogue:end -->", text, re.S)
    assert match, "genai-catalogue markers missing from docs/telemetry.md"
    assert match.group(1).strip() == catalogue_md.genai_markdown(), (
        "regenerate: python -m agentwatch._docs"
    )


def test_emitted_gemini_telemetry_matches_the_catalogue(instrument, client, monkeypatch):
    """Every span attribute and metric a varied run emits is catalogued, and every catalogued metric is emitted."""
    import re

    from agentwatch import semconv

    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http,gen_ai/dup")
    tel = instrument()
    config = types.GenerateContentConfig(
        temperature=0.2, top_p=0.9, top_k=20, max_output_tokens=64, stop_sequences=["END"], seed=7, candidate_count=2,
        presence_penalty=0.1, frequency_penalty=0.1, response_mime_type="application/json", system_instruction="terse",
    )
    with tel.tracer_provider.get_tracer("t").start_as_current_span("POST /chat", kind=SpanKind.SERVER):
        client.models.generate_content(model=MODEL, contents="hi", config=config)
        client.models.generate_content(
            model=MODEL, contents="weather in Paris?", config=types.GenerateContentConfig(tools=[weather])
        )
        list(client.models.generate_content_stream(model=MODEL, contents="stream a few words please"))
        # the tool-call signals: the same call three times in one request, and an undeclared function
        declared = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[types.FunctionDeclaration(
            name="get_weather", parameters=types.Schema(type="OBJECT", properties={"city": types.Schema(type="STRING")}))])])
        for _ in range(3):
            client.models.generate_content(model=MODEL, contents="weather?", config=declared)
        client.models.generate_content(model=MODEL, contents="#call-delete_account", config=declared)
        # safety blocks (tests/test_gemini_guardrails.py): a refused prompt, a candidate stopped mid-stream
        client.models.generate_content(model=MODEL, contents="#blocked-SAFETY")
        list(client.models.generate_content_stream(model=MODEL, contents="#unsafe-HARM_CATEGORY_HARASSMENT"))
        client.models.embed_content(model="gemini-embedding-001", contents=["a"])
        client.models.count_tokens(model=MODEL, contents="a")
        with pytest.raises(errors.ClientError):
            client.models.generate_content(model=MODEL, contents="#fail-429")
    spans = {entry.role: entry for entry in semconv.GENAI_SPANS}
    seen = set()
    for span in tel.gemini_spans():
        if span.attributes["gen_ai.operation.name"] == "execute_tool":
            entry = spans["gemini tool"]
        elif "agentwatch.gen_ai.round_trip" in span.attributes:
            entry = spans["gemini round trip"]
        else:
            entry = spans["gemini"]
        seen.add(entry.role)
        pattern = "^" + re.sub(r"\\\{[^}]*\\\}", ".+", re.escape(entry.name)) + "$"
        assert re.match(pattern, span.name) and span.kind.name == entry.kind, span.name
        assert set(span.attributes) <= set(entry.attributes) | set(entry.content_attributes), (
            span.name, set(span.attributes) - set(entry.attributes) - set(entry.content_attributes)
        )
    assert seen == {"gemini", "gemini round trip", "gemini tool"}
    server = next(s for s in tel.spans() if s.name == "POST /chat")
    rollup = {k for k in server.attributes if k.startswith("agentwatch.request.")}
    # a failed tool and an agent transfer are counted only when a request has one (tests/test_adk.py)
    assert rollup == set(spans["request roll-up"].attributes) - {"agentwatch.request.gen_ai.tool_errors", "agentwatch.request.gen_ai.transfers"}

    metrics = {
        metric.name: metric
        for rm in tel.metrics_data().resource_metrics
        for sm in rm.scope_metrics if sm.scope.name == "agentwatch.instrumentors.gemini"
        for metric in sm.metrics
    }
    assert set(metrics) == set(semconv.GENAI_METRICS_BY_NAME), "every catalogued metric is emitted, nothing else"
    for name, metric in metrics.items():
        entry = semconv.GENAI_METRICS_BY_NAME[name]
        assert metric.unit == entry.unit, name
        for point in metric.data.data_points:
            assert set(point.attributes) <= set(entry.attributes), (name, dict(point.attributes))
            if entry.instrument == "histogram":
                assert tuple(point.explicit_bounds) == tuple(float(b) for b in entry.buckets), name
            else:
                assert not hasattr(point, "explicit_bounds"), name
