"""A small MCP server for tests/test_mcp.py: MCPServer (the SDK's FastMCP) with one tool that succeeds and one whose
result is an error (``isError``). ``python server.py stdio`` or ``python server.py http PORT`` (Streamable HTTP)."""

from __future__ import annotations

import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("weather")


@server.tool()
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@server.tool()
def broken(city: str) -> str:
    """A tool that fails: the client gets a result with isError."""
    raise ValueError(f"no station near {city}")


if __name__ == "__main__":
    if sys.argv[1] == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
