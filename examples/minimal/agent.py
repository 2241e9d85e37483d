#!/usr/bin/env python3
"""A minimal agent, no framework: a chat model with one tool, `run_code`.

The model writes Python; py-code-mode runs it with `tools`, `skills` and
`artifacts` bound, and the output goes back to the model until it answers.

    export OPENAI_BASE_URL=https://api.openai.com/v1 OPENAI_API_KEY=... OPENAI_MODEL=gpt-4o-mini
    python examples/minimal/agent.py "Greet Ada with the greet skill" [--base DIR]

Any OpenAI-compatible chat-completions endpoint works (vLLM, Ollama, LM Studio,
llama.cpp's server): point `OPENAI_BASE_URL` at its `/v1`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from openai import AsyncOpenAI
from py_code_mode import Session

SYSTEM = """You solve tasks by writing Python and running it with the `run_code` tool.
Variables persist between calls; the value of the last expression is shown.
Bound in every run:
- tools: tools.list(), tools.search("what you need"), tools.NAME(arg=...)
- skills: skills.list(), skills.search("..."), skills.NAME(arg=...),
  skills.create(name=..., source="def run(...): ...", description=...)
- artifacts: artifacts.save(name, data, description=...), artifacts.load(name), artifacts.list()
Search before you write something new. When the task is done, answer in plain text."""

RUN_CODE = {
    "type": "function",
    "function": {
        "name": "run_code",
        "description": "Run Python with `tools`, `skills` and `artifacts` bound; "
        "returns stdout, the last expression's value and any traceback.",
        "parameters": {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "Python source"}},
            "required": ["code"],
        },
    },
}

MAX_TURNS = 20  # model replies before the agent gives up
MAX_OUTPUT = 20_000  # characters of one run's output sent back to the model


async def run_code(session: Session, arguments: str) -> str:
    """Runs one `run_code` call; whatever happens, the model gets text back."""
    try:
        code = json.loads(arguments)["code"]
    except (ValueError, KeyError, TypeError):
        return 'error: arguments must be JSON like {"code": "print(1)"}'
    result = await session.run(code)
    text = result.to_text() or "(no output)"
    if len(text) > MAX_OUTPUT:
        text = text[:MAX_OUTPUT] + f"\n[... {len(text) - MAX_OUTPUT} characters cut]"
    return text


async def solve(task: str, base: Path, model: str) -> str:
    client = AsyncOpenAI()  # reads OPENAI_BASE_URL and OPENAI_API_KEY
    messages: list[dict] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": task},
    ]
    async with Session.from_base(base) as session:
        for _ in range(MAX_TURNS):
            reply = await client.chat.completions.create(
                model=model, messages=messages, tools=[RUN_CODE]
            )
            message = reply.choices[0].message
            messages.append(message.model_dump(exclude_none=True))
            if not message.tool_calls:
                return message.content or ""
            for call in message.tool_calls:
                if call.function.name == "run_code":
                    output = await run_code(session, call.function.arguments)
                else:
                    output = f"error: no tool `{call.function.name}`; use `run_code`"
                messages.append({"role": "tool", "tool_call_id": call.id, "content": output})
    raise SystemExit(f"no answer after {MAX_TURNS} turns")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", help="what the agent should do")
    parser.add_argument(
        "--base",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="library folder with tools/, skills/, artifacts/ (default: this example's)",
    )
    args = parser.parse_args()
    model = os.environ.get("OPENAI_MODEL")
    if not model:
        sys.exit("set OPENAI_MODEL (and OPENAI_BASE_URL, OPENAI_API_KEY)")
    print(asyncio.run(solve(args.task, args.base, model)))


if __name__ == "__main__":
    main()
