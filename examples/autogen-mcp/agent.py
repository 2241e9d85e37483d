#!/usr/bin/env python3
"""AutoGen AgentChat connected to py-code-mode over MCP (stdio).

AutoGen starts `py-code-mode` as an MCP server and offers its tools
(`run_code`, `search_tools`, `list_skills`, ...) to the agent through an
`McpWorkbench`: the simplest setup, and the same server Claude Code uses.

    export OPENAI_BASE_URL=https://api.openai.com/v1 OPENAI_API_KEY=... OPENAI_MODEL=gpt-4o-mini
    python examples/autogen-mcp/agent.py "Greet Ada with the greet skill" [--base DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from pathlib import Path

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import TaskResult
from autogen_core.models import ChatCompletionClient
from autogen_ext.tools.mcp import McpWorkbench, StdioServerParams

SYSTEM = """You solve tasks by writing Python and running it with the `run_code` tool.
`search_tools` and `search_skills` find what the library offers; inside code,
`tools`, `skills` and `artifacts` are bound. When the task is done, answer in plain text."""

MAX_TOOL_ITERATIONS = 10  # tool calls per task before the agent must answer
SERVER_TIMEOUT = 120  # seconds one MCP request may take (a long run_code)
EXAMPLE = Path(__file__).resolve().parent
PASSED_ENV = ("PATH", "HOME", "LANG")
PASSED_PREFIXES = ("PY_CODE_MODE_", "HF_")


def server(base: Path) -> StdioServerParams:
    """py-code-mode as an MCP server over stdio, on the library at `base`."""
    command = os.environ.get("PY_CODE_MODE_BIN") or shutil.which("py-code-mode")
    if not command:
        sys.exit("`py-code-mode` is not on PATH: install py-code-mode from this repository")
    return StdioServerParams(
        command=command,
        args=["--base", str(base)],
        # The server gets its own settings, never this process's API keys.
        env={k: v for k, v in os.environ.items() if k in PASSED_ENV or k.startswith(PASSED_PREFIXES)},
        read_timeout_seconds=SERVER_TIMEOUT,
    )


async def solve(task: str, base: Path, model_client: ChatCompletionClient) -> TaskResult:
    """Runs `task` with an agent whose tools are the py-code-mode MCP server's."""
    async with McpWorkbench(server_params=server(base)) as workbench:
        agent = AssistantAgent(
            "coder",
            model_client=model_client,
            workbench=workbench,
            system_message=SYSTEM,
            max_tool_iterations=MAX_TOOL_ITERATIONS,
        )
        return await agent.run(task=task)


def openai_client() -> ChatCompletionClient:
    """Any OpenAI-compatible endpoint, from OPENAI_BASE_URL / OPENAI_API_KEY / OPENAI_MODEL."""
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    model = os.environ.get("OPENAI_MODEL")
    if not model:
        sys.exit("set OPENAI_MODEL (and OPENAI_BASE_URL, OPENAI_API_KEY)")
    return OpenAIChatCompletionClient(
        model=model,
        base_url=os.environ.get("OPENAI_BASE_URL"),
        model_info={
            "vision": False,
            "function_calling": True,
            "json_output": False,
            "structured_output": False,
            "family": "unknown",
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task")
    parser.add_argument("--base", type=Path, default=EXAMPLE,
                        help="library folder with tools/, skills/, artifacts/ (default: this example's)")
    args = parser.parse_args()
    result = asyncio.run(solve(args.task, args.base, openai_client()))
    print(result.messages[-1].content)


if __name__ == "__main__":
    main()
