"""The AutoGen examples with AutoGen's replaying model client: no network model."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType

import pytest
from autogen_agentchat.messages import ToolCallExecutionEvent
from autogen_core import FunctionCall
from autogen_core.models import CreateResult, RequestUsage
from autogen_ext.models.replay import ReplayChatCompletionClient
from py_code_mode import Session

ROOT = Path(__file__).resolve().parents[2]
MODEL_INFO = {
    "vision": False,
    "function_calling": True,
    "json_output": False,
    "structured_output": False,
    "family": "unknown",
}


def load(example: str) -> ModuleType:
    path = ROOT / "examples" / example / "agent.py"
    spec = importlib.util.spec_from_file_location(f"example_{example.replace('-', '_')}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def library(example: str, tmp_path: Path) -> Path:
    """A copy of the example's library (its tools and skills)."""
    base = tmp_path / "library"
    for part in ("tools", "skills"):
        shutil.copytree(ROOT / "examples" / example / part, base / part)
    return base


def replay(*turns: str | list[tuple[str, str]]) -> ReplayChatCompletionClient:
    """A model that plays `turns`: text answers, or lists of (tool, code) calls."""
    results: list[str | CreateResult] = []
    for n, turn in enumerate(turns):
        if isinstance(turn, str):
            results.append(turn)
            continue
        calls = [
            FunctionCall(id=f"call_{n}_{i}", name=tool, arguments=json.dumps({"code": code}))
            for i, (tool, code) in enumerate(turn)
        ]
        results.append(
            CreateResult(
                finish_reason="function_calls",
                content=calls,
                usage=RequestUsage(prompt_tokens=0, completion_tokens=0),
                cached=False,
            )
        )
    return ReplayChatCompletionClient(results, model_info=MODEL_INFO)


def tool_outputs(result) -> list[str]:
    return [
        r.content
        for m in result.messages
        if isinstance(m, ToolCallExecutionEvent)
        for r in m.content
    ]


CODE = "greeting = skills.greet(name='Ada')\nartifacts.save('greeting.txt', greeting)\ngreeting"


@pytest.mark.parametrize("example", ["autogen-direct", "autogen-mcp"])
async def test_the_agent_runs_code_through_py_code_mode(example: str, tmp_path: Path) -> None:
    module = load(example)
    base = library(example, tmp_path)
    client = replay([("run_code", CODE)], [("run_code", "greeting.upper()")], "Done: Hello, Ada!")
    result = await module.solve("Greet Ada and keep the greeting", base, client)
    outputs = tool_outputs(result)
    # Variables persist between calls; the second call sees the first's.
    assert outputs[0].startswith("'Hello, Ada!'"), outputs
    assert outputs[1].startswith("'HELLO, ADA!'"), outputs
    assert result.messages[-1].content == "Done: Hello, Ada!"
    async with Session.from_base(base, semantic=False) as session:
        assert await session.load_artifact("greeting.txt") == "Hello, Ada!"


async def test_an_error_in_agent_code_reaches_the_model_as_a_traceback(tmp_path: Path) -> None:
    module = load("autogen-direct")
    client = replay([("run_code", "1/0")], "It failed.")
    result = await module.solve("divide", library("autogen-direct", tmp_path), client)
    (output,) = tool_outputs(result)
    assert output.endswith("ZeroDivisionError: division by zero"), output
