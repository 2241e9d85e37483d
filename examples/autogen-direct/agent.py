#!/usr/bin/env python3
"""AutoGen AgentChat with py-code-mode wired in directly.

The agent gets one tool, `run_code`, a plain async function over a
py-code-mode `Session` in this process: the most control (you choose the
executor, the timeout, what the tool returns) and no server to run.

    export OPENAI_BASE_URL=https://api.openai.com/v1 OPENAI_API_KEY=... OPENAI_MODEL=gpt-4o-mini
    python examples/autogen-direct/agent.py "Greet Ada with the greet skill" [--base DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import TaskResult
from autogen_core.models import ChatCompletionClient
from py_code_mode import Session

SYSTEM = """You solve tasks by writing Python and running it with the `run_code` tool.
Variables persist between calls; the value of the last expression is shown.
Bound in every run: `tools` (tools.search("..."), tools.NAME(arg=...)), `skills`
(skills.search("..."), skills.NAME(...), skills.create(...)) and `artifacts`
(artifacts.save(name, data), artifacts.load(name)). Search before you write
something new. When the task is done, answer in plain text."""

MAX_TOOL_ITERATIONS = 10  # run_code calls per task before the agent must answer
EXAMPLE = Path(__file__).resolve().parent


async def solve(task: str, base: Path, model_client: ChatCompletionClient) -> TaskResult:
    """Runs `task` with an agent whose one tool runs code in a session over `base`."""
    async with Session.from_base(base) as session:

        async def run_code(code: str) -> str:
            """Run Python with `tools`, `skills` and `artifacts` bound; returns
            stdout, the last expression's value and any traceback."""
            result = await session.run(code)
            return result.to_text() or "(no output)"

        agent = AssistantAgent(
            "coder",
            model_client=model_client,
            tools=[run_code],
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
