"""An MCP server (stdio) whose tool names are not Python identifiers, and which
asks its client for sampling and elicitation: for the client tests."""

from __future__ import annotations

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel

server = MCPServer("hyphen-test-server")


@server.tool(name="get-sum")
def get_sum(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class Answer(BaseModel):
    name: str


@server.tool(name="ask-user")
async def ask_user(ctx: Context) -> str:
    """Ask the client's user a question (elicitation) and report what came back."""
    result = await ctx.elicit("What is your name?", Answer)
    return f"action={result.action}"


if __name__ == "__main__":
    server.run("stdio")
