"""The MCP client of tests/test_mcp.py: a ClientSession that initializes, lists tools and calls both tools of
server.py inside an application span, and prints what it saw as JSON.

``python client.py stdio CITY`` starts server.py itself (under ``opentelemetry-instrument``, with this process's
telemetry settings); ``python client.py http URL CITY`` connects over Streamable HTTP. ``--inside-tool`` makes
the ``get_weather`` call from inside an ``execute_tool get_weather`` span, as an agent framework would."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path

from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from opentelemetry import trace

HERE = Path(__file__).resolve().parent
tracer = trace.get_tracer("mcp-test-client")


async def session_calls(read, write, args: argparse.Namespace) -> dict:
    async with ClientSession(read, write) as session:
        await session.initialize()
        tools = await session.list_tools()
        inside = tracer.start_as_current_span("execute_tool get_weather") if args.inside_tool else contextlib.nullcontext()
        with inside:
            ok = await session.call_tool("get_weather", {"city": args.city})
        bad = await session.call_tool("broken", {"city": args.city})
        try:  # a JSON-RPC error: the server has no prompts
            await session.get_prompt("missing")
            error = None
        except MCPError as exc:
            error = exc.error.code
        return {"tools": sorted(t.name for t in tools.tools), "ok": ok.is_error, "bad": bad.is_error, "error": error}


async def main(args: argparse.Namespace) -> dict:
    with tracer.start_as_current_span("agent turn") as span:
        if args.transport == "stdio":
            # stdio_client passes only a safe default environment on its own.
            env = {k: v for k, v in os.environ.items() if k.startswith(("OTEL_", "AGENTWATCH_", "PYDANTIC_"))}
            env["OTEL_SERVICE_NAME"] = "mcp-server"
            command = str(Path(sys.executable).parent / "opentelemetry-instrument")
            params = StdioServerParameters(command=command, args=[sys.executable, str(HERE / "server.py"), "stdio"], env=env)
            async with stdio_client(params) as (read, write):
                result = await session_calls(read, write, args)
        else:
            async with streamable_http_client(args.url) as (read, write):
                result = await session_calls(read, write, args)
        result["trace_id"] = format(span.get_span_context().trace_id, "032x")
        return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("transport", choices=("stdio", "http"))
    parser.add_argument("--url")
    parser.add_argument("--inside-tool", action="store_true")
    parser.add_argument("city")
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
