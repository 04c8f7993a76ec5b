"""A hand-written function-calling loop: the model asks for a tool, the app runs it, the model answers.

Plain google-genai, no framework and no observability import: ``AGENTWATCH_TOOL_TARGETS`` and
``AGENTWATCH_AGENT_TARGETS`` (see examples/run_demo.py) make ``get_order_status`` an ``execute_tool``
span and ``answer_with_tools`` an ``invoke_agent`` span with the model and tool calls under it.
"""

from __future__ import annotations

from typing import Any

from google.genai import types

_ORDERS = {"Paris": {"order_id": "Paris", "status": "shipped", "carrier": "ACME"}}


def get_order_status(order_id: str) -> dict:
    """Status and carrier of a customer's order."""
    return _ORDERS.get(order_id, {"order_id": order_id, "status": "unknown"})


_DECLARATION = types.FunctionDeclaration(
    name="get_order_status",
    description="Status and carrier of a customer's order.",
    parameters=types.Schema(type="OBJECT", properties={"order_id": types.Schema(type="STRING")}, required=["order_id"]),
)


async def answer_with_tools(client: Any, model: str, message: str, max_turns: int = 4) -> dict:
    """Ask the model; run each function it calls and send the result back, until it answers in text."""
    # Looked up at call time, so the instrumented function is the one that runs.
    tools = {"get_order_status": get_order_status}
    config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[_DECLARATION])], temperature=0.0)
    contents: list[types.Content] = [types.Content(role="user", parts=[types.Part(text=message)])]
    calls_made = 0
    for _ in range(max_turns):
        response = await client.aio.models.generate_content(model=model, contents=contents, config=config)
        calls = response.function_calls or []
        if not calls:
            return {"answer": response.text or "", "tool_calls": calls_made}
        contents.append(response.candidates[0].content)
        parts = []
        for call in calls:
            function = tools.get(call.name or "")
            result = function(**(call.args or {})) if function else {"error": f"unknown tool {call.name}"}
            calls_made += 1
            parts.append(types.Part.from_function_response(name=call.name or "", response=result))
        contents.append(types.Content(role="user", parts=parts))
    return {"answer": "", "tool_calls": calls_made}
