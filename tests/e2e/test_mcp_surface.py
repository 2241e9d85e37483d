"""The MCP surface beyond tools (resources, prompts, logging, progress, parse
errors), over streamable HTTP with the official SDK; the same server code
serves stdio."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import httpx2
import pytest
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from test_mcp_http import ACCEPT, http_server, run, text


@asynccontextmanager
async def connect(url: str, **callbacks) -> AsyncIterator[ClientSession]:
    async with streamable_http_client(url) as (read, write):
        async with ClientSession(read, write, **callbacks) as session:
            await session.initialize()
            yield session


async def eventually(condition, what: str, deadline: float = 10.0) -> None:
    end = asyncio.get_running_loop().time() + deadline
    while not condition():
        if asyncio.get_running_loop().time() > end:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def test_skills_and_artifacts_are_resources(binary: str, library: Path) -> None:
    changes: list[object] = []

    async def on_message(message) -> None:
        if isinstance(message, types.ResourceListChangedNotification):
            changes.append(message)

    async def scenario(url: str) -> None:
        async with connect(url, message_handler=on_message) as session:
            listed = await session.list_resources()
            uris = {str(r.uri) for r in listed.resources}
            assert uris, "the bundled library has skills"
            assert all(u.startswith(("skill://", "artifact://")) for u in uris), uris

            out, failed = await run(
                session,
                "skills.create(name='shout', source='def run(text: str):\\n    return text.upper()', "
                "description='Say it loud')\n"
                "artifacts.save('notes/today.txt', 'hello', description='a note')\n"
                "artifacts.save('blob.bin', b'\\x00\\x01')",
            )
            assert not failed, out
            await eventually(lambda: changes, "a resources/list_changed notification")

            listed = {str(r.uri): r for r in (await session.list_resources()).resources}
            assert listed["skill://shout"].description == "Say it loud"
            assert listed["artifact://notes/today.txt"].mime_type == "text/plain"

            skill = await session.read_resource("skill://shout")
            assert "def run(text: str)" in skill.contents[0].text
            note = await session.read_resource("artifact://notes/today.txt")
            assert note.contents[0].text == "hello"
            blob = await session.read_resource("artifact://blob.bin")
            assert blob.contents[0].blob == "AAE="

            templates = await session.list_resource_templates()
            assert {t.uri_template for t in templates.resource_templates} == {"skill://{name}", "artifact://{name}"}

            with pytest.raises(MCPError) as missing:
                await session.read_resource("skill://no_such_skill")
            assert missing.value.error.code == -32002

            # A skill created through the tool is a change too.
            before = len(changes)
            await session.call_tool("delete_skill", {"name": "shout"})
            await eventually(lambda: len(changes) > before, "a second list_changed notification")

    with http_server(binary, library) as server:
        asyncio.run(scenario(server.url))


def test_the_code_mode_prompt(binary: str, library: Path) -> None:
    async def scenario(url: str) -> None:
        async with connect(url) as session:
            prompts = (await session.list_prompts()).prompts
            assert [p.name for p in prompts] == ["code_mode"]
            assert prompts[0].description
            got = await session.get_prompt("code_mode", {"task": "count the primes below 100"})
            body = got.messages[0].content.text
            assert "run_code" in body and "skills.create" in body
            assert body.endswith("Your task: count the primes below 100")
            with pytest.raises(MCPError):
                await session.get_prompt("nope")

    with http_server(binary, library) as server:
        asyncio.run(scenario(server.url))


def test_run_output_comes_as_log_messages_once_a_level_is_set(binary: str, library: Path) -> None:
    logs: list[types.LoggingMessageNotificationParams] = []

    async def on_log(params) -> None:
        logs.append(params)

    async def scenario(url: str) -> None:
        async with connect(url, logging_callback=on_log) as session:
            assert await run(session, "print('before')") == ("before", False)
            await session.set_logging_level("info")
            out, _ = await run(session, "import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)")
            await eventually(lambda: len(logs) >= 2, "two log messages")
            by_logger = {entry.logger: entry for entry in logs}
            assert by_logger["stdout"].data == "to stdout\n"
            assert by_logger["stdout"].level == "info"
            assert by_logger["stderr"].level == "warning"
            assert all("before" not in str(entry.data) for entry in logs)
            await session.set_logging_level("error")
            count = len(logs)
            await run(session, "print('quiet now')")
            await asyncio.sleep(0.2)  # nothing may arrive; a later message would show up here
            assert len(logs) == count

    with http_server(binary, library) as server:
        asyncio.run(scenario(server.url))


def test_a_long_run_reports_progress(binary: str, library: Path) -> None:
    progress: list[tuple[float, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message))

    async def scenario(url: str) -> None:
        async with connect(url) as session:
            code = "import os, time\nprint('step one', flush=True)\nos.system('echo from a child')\ntime.sleep(2.5)\n'done'"
            result = await session.call_tool("run_code", {"code": code}, progress_callback=on_progress)
            assert "'done'" in text(result)
            assert len(progress) >= 2, progress
            assert progress[0][1].startswith("running for")
            values = [value for value, _ in progress]
            assert values == sorted(values)
            # The output so far comes with the progress, before the result,
            # once: what was printed since the last notification.
            said = "".join(message or "" for _, message in progress)
            assert said.count("step one\n") == 1, progress
            assert said.count("from a child\n") == 1, progress

    with http_server(binary, library) as server:
        asyncio.run(scenario(server.url))


def test_malformed_json_gets_a_parse_error(binary: str, library: Path) -> None:
    with http_server(binary, library) as server:
        broken = httpx2.post(server.url, content=b'{"jsonrpc": "2.0", "id": 1, "meth', headers=ACCEPT)
        assert broken.status_code == 400
        assert broken.json()["error"]["code"] == -32700
        not_a_message = httpx2.post(server.url, json={"hello": 1}, headers=ACCEPT)
        assert not_a_message.status_code == 400
        assert not_a_message.json()["error"]["code"] == -32600


def test_optional_parameters_have_one_type(binary: str, library: Path) -> None:
    async def scenario(url: str) -> None:
        async with connect(url) as session:
            tools = {t.name: t for t in (await session.list_tools()).tools}
            timeout = tools["run_code"].input_schema["properties"]["timeout"]
            assert timeout["type"] == "number"
            assert tools["run_code"].input_schema.get("required") == ["code"]
            limit = tools["search_tools"].input_schema["properties"]["limit"]
            assert limit["type"] == "integer"

    with http_server(binary, library) as server:
        asyncio.run(scenario(server.url))
