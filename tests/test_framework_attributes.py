"""What an agent framework hands agentwatch's model-call span (agentwatch/instrumentors/_framework_attributes.py).

Google ADK passes the calling agent's name and ids to the instrumentation that records its model calls;
the ADK instrumentor carries them under agentwatch's context key and the Gemini span sets them at its
start (end to end with real ADK: tests/test_adk.py). Here: the real google-genai SDK against the fake
Gemini, and the mapping treated as input -- wrong types, too many, too long, a mapping that raises --
never costs the call and never overrides agentwatch's own attributes.
"""

import asyncio
from collections.abc import Iterator, Mapping

import pytest
from google import genai
from google.genai import types
from test_gemini import MODEL, client, fake, instrument, tel  # noqa: F401 - fixtures

from agentwatch.instrumentors._framework_attributes import MAX_ATTRIBUTES, MAX_CHARS, carrying, framework_attributes

ADK = {
    "gen_ai.agent.name": "weather_agent",
    "gen_ai.conversation.id": "sess-42",
    "gcp.vertex.agent.invocation_id": "e-7f1c",
    "gcp.vertex.agent.event_id": "ev-1",
}


def test_the_model_span_carries_the_agent_that_called(instrument, client: genai.Client) -> None:
    tel = instrument()
    with carrying(ADK):
        client.models.generate_content(model=MODEL, contents="Say hi")
    client.models.generate_content(model=MODEL, contents="Say hi")  # outside: none of them
    inside, outside = sorted(tel.gemini_spans(), key=lambda s: s.start_time)
    for key, value in ADK.items():
        assert inside.attributes[key] == value
        assert key not in outside.attributes
    assert framework_attributes() is None  # the block's value is gone after it


def test_async_and_nested_calls(instrument, client: genai.Client) -> None:
    tel = instrument()

    async def run() -> None:
        with carrying(ADK):
            with carrying({**ADK, "gen_ai.agent.name": "concierge"}):
                await client.aio.models.generate_content(model=MODEL, contents="Say hi")
            await client.aio.models.generate_content(model=MODEL, contents="Say hi")
        await client.aio.aclose()

    asyncio.run(run())
    names = [s.attributes["gen_ai.agent.name"] for s in sorted(tel.gemini_spans(), key=lambda s: s.start_time)]
    assert names == ["concierge", "weather_agent"]


def test_agentwatchs_own_attributes_are_never_overridden(instrument, client: genai.Client) -> None:
    tel = instrument()
    hostile = {"gen_ai.request.model": "gemini-free", "gen_ai.operation.name": "nothing",
               "gen_ai.provider.name": "elsewhere", "server.address": "evil.example", "gen_ai.agent.name": "a"}
    with carrying(hostile):
        client.models.generate_content(model=MODEL, contents="Say hi")
    (span,) = tel.gemini_spans()
    assert span.attributes["gen_ai.request.model"] == MODEL
    assert span.attributes["gen_ai.operation.name"] == "generate_content"
    assert span.attributes["gen_ai.provider.name"] == "gcp.gemini"
    assert span.attributes["server.address"] == "127.0.0.1"
    assert span.attributes["gen_ai.agent.name"] == "a"


def test_only_string_keys_and_scalar_values_bounded(instrument, client: genai.Client) -> None:
    tel = instrument()
    odd = {
        1: "int key", None: "none key", "": "empty key", ("t",): "tuple key",
        "nested": {"a": 1}, "listed": ["a", "b"], "bytes": b"\x00\xff", "none": None, "object": object(),
        "long": "é" * 10_000, "flag": True, "count": 3, "ratio": 0.5, "nul\x00key": "ok\u202e\x00",
    }
    many = {f"k{i}": str(i) for i in range(200)}
    with carrying(odd):
        client.models.generate_content(model=MODEL, contents="Say hi")
    with carrying(many):
        client.models.generate_content(model=MODEL, contents="Say hi")
    first, second = sorted(tel.gemini_spans(), key=lambda s: s.start_time)
    kept = {k: v for k, v in first.attributes.items() if k in odd}
    assert kept == {"long": "é" * MAX_CHARS, "flag": True, "count": 3, "ratio": 0.5, "nul\x00key": "ok\u202e\x00"}
    assert sum(1 for k in second.attributes if k.startswith("k") and k[1:].isdigit()) == MAX_ATTRIBUTES


class Exploding(Mapping):
    """A mapping whose every read raises (what a framework bug could hand over)."""

    def __getitem__(self, key: str) -> str:
        raise RuntimeError("boom")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("boom")

    def __len__(self) -> int:
        return 1


@pytest.mark.parametrize("given", [Exploding(), "not a mapping", None, 42, ["gen_ai.agent.name", "x"]])
def test_what_cannot_be_read_costs_the_attributes_never_the_call(instrument, client: genai.Client, lenient,
                                                                 given) -> None:
    tel = instrument()
    with carrying(given):
        response = client.models.generate_content(model=MODEL, contents="Say hi")
    assert response.text
    (span,) = tel.gemini_spans()
    assert "gen_ai.agent.name" not in span.attributes


def test_config_on_the_request_still_read(instrument, client: genai.Client) -> None:
    tel = instrument()
    with carrying(ADK):
        client.models.generate_content(model=MODEL, contents="Say hi",
                                       config=types.GenerateContentConfig(temperature=0.3))
    (span,) = tel.gemini_spans()
    assert span.attributes["gen_ai.request.temperature"] == 0.3 and span.attributes["gen_ai.agent.name"] == "weather_agent"
