"""An MCP server for the tool tests, written with the official Python SDK (mcp 2.x).

    python mcp_test_server.py stdio
    python mcp_test_server.py sse PORT              # GET /sse, POST /messages/
    python mcp_test_server.py streamable-http PORT  # /mcp
    python mcp_test_server.py streamable-http-json PORT  # /mcp, answers as plain JSON, not events
"""

from __future__ import annotations

import os
import sys
import time

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolExecution
from pydantic import BaseModel

server = MCPServer("py-code-mode-test-server")


class Sum(BaseModel):
    total: int
    operands: list[int]


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
def add(a: int, b: int = 1) -> Sum:
    """Add two integers and report the operands."""
    return Sum(total=a + b, operands=[a, b])


@server.tool()
def fail(message: str) -> str:
    """Always fail with the given message."""
    # The SDK hides the message of other exceptions from clients.
    raise ToolError(message)


@server.tool()
def sleep_ms(ms: int) -> str:
    """Sleep for `ms` milliseconds, then say so."""
    time.sleep(ms / 1000)
    return f"slept {ms}"


@server.tool()
def server_pid() -> str:
    """The server's process id, to tell one server process from another."""
    return str(os.getpid())


@server.tool()
def env_names() -> list[str]:
    """The names of the server's environment variables, sorted."""
    return sorted(os.environ)


@server.tool()
async def chatty(steps: int, ctx: Context) -> str:
    """Report progress and log a line at each step, then say how many steps."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"step {step}")
        await ctx.info(f"working on step {step}")
    return f"{steps} steps"


@server.tool()
def research(topic: str) -> str:
    """A long job that runs only as an MCP task (listed with `taskSupport: required`)."""
    return f"researched {topic} without a task"


_list_tools = server.list_tools


async def _list_tools_with_execution():  # type: ignore[no-untyped-def]
    # The SDK's decorator has no `execution` argument: set it on the listing.
    tools = await _list_tools()
    required = ToolExecution(task_support="required")
    return [t.model_copy(update={"execution": required}) if t.name == "research" else t for t in tools]


server.list_tools = _list_tools_with_execution  # type: ignore[method-assign]


if __name__ == "__main__":
    transport = sys.argv[1] if len(sys.argv) > 1 else "stdio"
    if transport == "stdio":
        server.run("stdio")
    elif transport == "streamable-http-json":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]), json_response=True)
    else:
        server.run(transport, host="127.0.0.1", port=int(sys.argv[2]))  # type: ignore[call-overload]
