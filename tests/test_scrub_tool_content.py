"""Gemini tool calls and results in captured content are scrubbed as structures, before JSON encoding.

``agentwatch/instrumentors/gemini/content.py``: a function call's arguments and a function
response (in ``gen_ai.input.messages`` / ``gen_ai.output.messages``) and a tool span's
``gen_ai.tool.call.arguments`` / ``gen_ai.tool.call.result`` go through the scrubber as the
dicts they are (keys and values, a value redacted by its key), not only as the JSON text, where
a sensitive key is just a quoted word and a key holding personal data is not a key at all.
"""

from __future__ import annotations

import json

from google.genai import types

from agentwatch.instrumentors import _genai_common as g
from agentwatch.instrumentors.gemini import content

CAPTURE = g.CaptureSettings(mode="SPAN_ONLY", max_chars=10_000)
RESULT = {
    "card": {"cvv": "737", "holder": "Ana"},
    "jane.roe@example.com": {"orders": 3},
    "note": "call +1 415 555 0134",
}


def _check(text: str) -> None:
    assert "737" not in text  # under a sensitive key: its value goes
    assert "jane.roe@example.com" not in text and "[REDACTED:email]" in text  # a key that is personal data
    assert "+1 415 555 0134" not in text
    decoded = json.loads(text)
    assert decoded["card"]["holder"] == "Ana" and decoded["[REDACTED:email]"] == {"orders": 3}


def test_a_tool_result_is_scrubbed_as_a_structure():
    _check(content.json_text(RESULT, CAPTURE))


def test_function_responses_and_calls_in_messages_are_scrubbed_as_structures():
    parts = content.parts(
        [
            types.Part(function_response=types.FunctionResponse(name="lookup", response=RESULT)),
            types.Part(function_call=types.FunctionCall(name="pay", args=RESULT)),
        ],
        CAPTURE,
    )
    assert [p["type"] for p in parts] == ["tool_call_response", "tool_call"]
    _check(parts[0]["response"])
    _check(parts[1]["arguments"])


def test_a_pydantic_result_is_scrubbed_too():
    text = content.json_text(types.FunctionResponse(name="lookup", response=RESULT), CAPTURE)
    _check(json.dumps(json.loads(text)["response"]))
