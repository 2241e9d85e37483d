"""The real `py-code-mode` binary over stdio, driven by the official MCP Python SDK."""

from __future__ import annotations

import asyncio
import json
import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import anyio
import pytest
from mcp import ClientSession
from mcp.shared.exceptions import MCPError
from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client

EXPECTED_TOOLS = {
    "run_code",
    "list_tools",
    "search_tools",
    "list_skills",
    "search_skills",
    "create_skill",
    "delete_skill",
    "list_artifacts",
    "reset",
    # A skill's versions and recorded tests (docs/skills.md).
    "skill_history",
    "get_skill",
    "rollback_skill",
    "test_skill",
    # Served unless `--no-runtime-deps`.
    "list_deps",
    "add_dep",
    "remove_dep",
}


@asynccontextmanager
async def connect(binary: str, *args: str, cwd: Path) -> AsyncIterator[ClientSession]:
    """The server in `cwd` (a temp folder: with `--tools`/`--skills` and no
    `--base`, the library root is the working directory and must not be the
    repository), offline: a model is only ever the test model's directory."""
    env = {**get_default_environment(), "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cwd / "hf-cache")}
    params = StdioServerParameters(command=binary, args=list(args), cwd=cwd, env=env)
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session


def text(result) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


async def run(session: ClientSession, code: str, **extra) -> tuple[str, bool]:
    result = await session.call_tool("run_code", {"code": code, **extra})
    return text(result), bool(result.is_error)


def test_agent_workflow_survives_a_restart(binary: str, library: Path) -> None:
    async def first_session() -> None:
        async with connect(binary, "--base", str(library), cwd=library.parent) as session:
            listed = await session.list_tools()
            assert {t.name for t in listed.tools} == EXPECTED_TOOLS
            run_code = next(t for t in listed.tools if t.name == "run_code")
            assert set(run_code.input_schema["properties"]) == {"code", "timeout"}

            out, failed = await run(session, 'tools.echo(text="from a CLI tool")')
            assert (out, failed) == ("'from a CLI tool\\n'", False)

            out, failed = await run(
                session,
                "skills.create(name='loud', code='def run(text: str):\\n"
                "    return tools.echo(text=text).strip().upper()', description='Say text loudly')\n"
                "skills.loud(text='quiet')",
            )
            assert (out, failed) == ("'QUIET'", False)

            out, failed = await run(session, "artifacts.save('report.json', {'ok': True}, description='a report')")
            assert not failed, out

    async def second_session() -> None:
        async with connect(binary, "--base", str(library), cwd=library.parent) as session:
            skills = json.loads(text(await session.call_tool("list_skills", {})))
            loud = next(s for s in skills if s["name"] == "loud")
            assert loud["description"] == "Say text loudly"
            found = json.loads(text(await session.call_tool("search_skills", {"query": "loudly"})))
            assert found[0]["name"] == "loud"

            artifacts = json.loads(text(await session.call_tool("list_artifacts", {})))
            assert [(a["name"], a["description"]) for a in artifacts] == [("report.json", "a report")]
            out, failed = await run(session, "artifacts.load('report.json'), skills.loud(text='again')")
            assert (out, failed) == ("({'ok': True}, 'AGAIN')", False)

    asyncio.run(first_session())
    asyncio.run(second_session())


def test_seed_flags_and_the_mcp_alias(binary: str, library: Path) -> None:
    alias = str(Path(binary).with_name("py-code-mode-mcp"))

    async def check() -> None:
        async with connect(alias, "--tools", str(library / "tools"), "--skills", str(library / "skills"), cwd=library.parent) as session:
            tools = json.loads(text(await session.call_tool("list_tools", {})))
            assert "echo" in {t["name"] for t in tools}
            found = json.loads(text(await session.call_tool("search_tools", {"query": "count words lines"})))
            assert found[0]["name"] == "word_count"
            out, failed = await run(session, "skills.greet(name='MCP')")
            assert (out, failed) == ("'Hello, MCP!'", False)

    asyncio.run(check())


def test_errors_timeouts_and_reset(binary: str, library: Path) -> None:
    async def check() -> None:
        async with connect(binary, "--base", str(library), cwd=library.parent) as session:
            out, failed = await run(session, "x = 41")
            assert not failed
            out, failed = await run(session, "while True: pass", timeout=0.5)
            assert failed and "TimeoutError" in out and "reset" in out, out
            out, failed = await run(session, "1 + 1")
            assert (out, failed) == ("2", False)

            out, failed = await run(session, "raise ValueError('bad input')")
            assert failed and out.endswith("ValueError: bad input"), out

            result = await session.call_tool("create_skill", {"name": "broken", "source": "def run(:\n  pass"})
            assert result.is_error and "syntax error at line 1" in text(result)
            assert not (library / "skills" / "broken.py").exists()

            # A bad name is a bad argument: a protocol-level invalid-params error.
            with pytest.raises(MCPError, match="skill name `../escape` is not allowed"):
                await session.call_tool("create_skill", {"name": "../escape", "source": "def run(): pass"})

            out, failed = await run(session, "y = 1")
            await session.call_tool("reset", {})
            out, failed = await run(session, "y")
            assert failed and "NameError" in out

    asyncio.run(check())


def test_hybrid_search_over_mcp_with_a_chosen_model(binary: str, library: Path) -> None:
    """`--embedding-model` (the seed's flag): tools/list answers while the model
    loads, and search_tools finds a paraphrase that shares no word with the tool."""
    model = os.environ.get("PY_CODE_MODE_TEST_MODEL_DIR")
    if not model:
        pytest.fail("PY_CODE_MODE_TEST_MODEL_DIR is not set (scripts/test sets it)")
    alias = str(Path(binary).with_name("py-code-mode-mcp"))

    async def check() -> None:
        flags = ["--tools", str(library / "tools"), "--skills", str(library / "skills")]
        async with connect(alias, *flags, "--embedding-model", model, cwd=library.parent) as session:
            listed = await session.list_tools()
            assert EXPECTED_TOOLS <= {t.name for t in listed.tools}
            query = {"query": "enumerate folder contents", "limit": 1}
            found = json.loads(text(await session.call_tool("search_tools", query)))
            assert [(f["name"], f["mode"]) for f in found] == [("list_files", "hybrid")]
            out, failed = await run(session, "[s['name'] for s in skills.search('say hello to a person', limit=1)]")
            assert (out, failed) == ("['greet']", False)

    asyncio.run(check())


def test_a_call_the_client_abandons_stops_its_run(binary: str, library: Path) -> None:
    """The SDK cancels a call it gives up on (`notifications/cancelled`): the
    server stops the spinning run at once, so the next call is answered
    instead of queuing behind the 60 s default timeout."""

    async def check() -> None:
        async with connect(binary, "--base", str(library), "--no-semantic", cwd=library.parent) as session:
            with anyio.move_on_after(1.0):
                await session.call_tool("run_code", {"code": "while True: pass"})
            with anyio.fail_after(15.0):
                out, failed = await run(session, "1 + 1")
            assert (out, failed) == ("2", False)

    asyncio.run(check())
