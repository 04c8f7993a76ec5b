"""A second demo service: a Google ADK agent team behind FastAPI (needs ``google-adk``: the ``adk`` group).

``concierge`` (an ``LlmAgent``) routes each question to its sub-agent ``weather_agent``, which answers
with its function tool ``get_weather``: three Gemini calls, one transfer and one tool call per request.
The code has no telemetry in it; run it under ``opentelemetry-instrument`` and agentwatch traces it:
ADK's ``invoke_agent`` / ``execute_tool`` spans, one agentwatch span per Gemini call (ADK's own model-call
telemetry stands down), the request's roll-up on the server span.

With ``--mcp-stdio COMMAND`` or ``--mcp-url URL``, ``get_weather`` is an MCP server's tool instead (ADK's
``McpToolset``): a server process ADK starts and talks to over stdio (it inherits this process's environment,
its OTEL_* settings included, so a server run under ``opentelemetry-instrument`` exports too), or a Streamable
HTTP server. agentwatch's MCP instrumentation adds ``initialize`` / ``tools/list`` client spans, makes the
``tools/call`` part of ADK's ``execute_tool get_weather`` span, and carries the trace into the server's spans
through the requests' ``params._meta``: one trace across both processes.

Environment:
    GEMINI_BASE_URL   the Gemini server (examples/fake_gemini.py in the demo and tests)
    GEMINI_API_KEY    its key

Run:  opentelemetry-instrument python app.py --port 8001
      [--mcp-stdio "opentelemetry-instrument python ../../tests/mcp_app/server.py stdio" | --mcp-url http://127.0.0.1:8002/mcp]
Ask:  curl -s localhost:8001/chat -H 'content-type: application/json' -d '{"message": "Weather in Paris?"}'
"""

from __future__ import annotations

import argparse
import os
import shlex
import uuid
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, HTTPException
from google.adk.agents import LlmAgent
from google.adk.runners import Runner
from google.adk.sessions import InMemorySessionService
from google.adk.tools import ToolContext
from google.adk.tools.mcp_tool import McpToolset, StdioConnectionParams, StreamableHTTPConnectionParams
from google.genai import types
from mcp import StdioServerParameters
from pydantic import BaseModel

if os.environ.get("GEMINI_BASE_URL"):  # google-genai reads these when ADK builds its client
    os.environ.setdefault("GOOGLE_GEMINI_BASE_URL", os.environ["GEMINI_BASE_URL"])
if os.environ.get("GEMINI_API_KEY"):
    os.environ.setdefault("GOOGLE_API_KEY", os.environ["GEMINI_API_KEY"])

MODEL = "gemini-2.5-flash"
APP_NAME = "adk-demo"
# A thinking budget, so the billed usage has thinking tokens the roll-up must count.
CONFIG = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=64))


def get_weather(city: str, tool_context: ToolContext) -> dict:
    """The current weather of a city."""
    asked = " ".join(part.text or "" for part in (tool_context.user_content.parts or [])) if tool_context.user_content else ""
    if "#fail-tool" in asked:  # the demo's way to show a failing tool
        raise ConnectionError(f"the weather station of {city} does not answer")
    return {"city": city, "forecast": "sunny", "celsius": 21}


def build(tools: list) -> tuple[LlmAgent, Runner]:
    """The agent team (``concierge`` -> ``weather_agent`` with ``tools``) and its runner."""
    weather_agent = LlmAgent(
        name="weather_agent",
        model=MODEL,
        instruction="Answer weather questions with the get_weather tool.",
        tools=tools,
        generate_content_config=CONFIG,
        disallow_transfer_to_parent=True,
        disallow_transfer_to_peers=True,
    )
    concierge = LlmAgent(
        name="concierge",
        model=MODEL,
        instruction="Route each question to the agent that can answer it.",
        sub_agents=[weather_agent],
        generate_content_config=CONFIG,
    )
    return concierge, Runner(agent=concierge, app_name=APP_NAME, session_service=sessions)


def mcp_weather(stdio: str | None, url: str | None) -> McpToolset:
    """The MCP server's ``get_weather`` (tests/mcp_app/server.py serves one) as ADK tools."""
    if url:
        connection: StdioConnectionParams | StreamableHTTPConnectionParams = StreamableHTTPConnectionParams(url=url, timeout=30)
    else:
        command, *args = shlex.split(stdio or "")
        # env: the server gets this process's environment (by default the SDK passes only HOME, PATH, ...)
        connection = StdioConnectionParams(server_params=StdioServerParameters(command=command, args=args, env=dict(os.environ)),
                                           timeout=30)
    return McpToolset(connection_params=connection, tool_filter=["get_weather"])


sessions = InMemorySessionService()
concierge, runner = build([get_weather])


@asynccontextmanager
async def lifespan(_: FastAPI):
    yield
    await runner.close()  # closes the MCP sessions (a stdio server process ends with its session)


app = FastAPI(title="ADK demo", lifespan=lifespan)


class Chat(BaseModel):
    message: str
    user_id: str = "demo-user"
    session_id: str | None = None


@app.get("/")
def index() -> dict:
    return {"service": "adk-demo", "agent": concierge.name}


@app.post("/chat")
async def chat(body: Chat) -> dict:
    session_id = body.session_id or uuid.uuid4().hex
    if await sessions.get_session(app_name=APP_NAME, user_id=body.user_id, session_id=session_id) is None:
        await sessions.create_session(app_name=APP_NAME, user_id=body.user_id, session_id=session_id)
    message = types.Content(role="user", parts=[types.Part(text=body.message)])
    answer, authors = "", []
    try:
        async for event in runner.run_async(user_id=body.user_id, session_id=session_id, new_message=message):
            authors.append(event.author)
            for part in (event.content.parts or []) if event.content else []:
                if part.text and not part.thought:
                    answer = part.text
    except Exception as error:  # noqa: BLE001 - the demo answers 502 with the error's type
        raise HTTPException(502, f"agent failed: {type(error).__name__}") from error
    return {"answer": answer, "session_id": session_id, "agents": sorted(set(authors))}


def main() -> None:
    parser = argparse.ArgumentParser(description="ADK agent team demo (FastAPI)")
    parser.add_argument("--port", type=int, default=8001)
    mcp = parser.add_mutually_exclusive_group()
    mcp.add_argument("--mcp-stdio", metavar="COMMAND", help="get_weather from this MCP server, started over stdio")
    mcp.add_argument("--mcp-url", metavar="URL", help="get_weather from this Streamable HTTP MCP server")
    args = parser.parse_args()
    if args.mcp_stdio or args.mcp_url:
        global concierge, runner
        concierge, runner = build([mcp_weather(args.mcp_stdio, args.mcp_url)])
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
