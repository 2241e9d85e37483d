"""The upstream project's defects that concern this API (reference/upstream-notes.md),
each as a test that fails if it comes back."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from py_code_mode import FileStorage, InProcessExecutor, Session, SubprocessExecutor

ASK_SKILL = '''
"""Ask the echo tool, asynchronously."""


async def run(text: str) -> str:
    first = tools.echo(text=text).strip()
    second = (await tools.echo.acall(text=first)).strip()
    return second
'''


async def test_1_async_skill_calling_a_tool_does_not_deadlock(session: Session) -> None:
    await session.add_skill("ask", ASK_SKILL, "ask the echo tool")
    code = """
    async def main():
        inside_loop = skills.ask(text="from a coroutine")
        together = await asyncio.gather(tools.echo.acall(text="a"), tools.echo.acall(text="b"))
        return inside_loop, [t.strip() for t in together]
    import asyncio
    outside_loop = skills.ask(text="plain")
    (outside_loop, await main())
    """
    result = await asyncio.wait_for(session.run(code, timeout=20), timeout=30)

    assert result.is_ok, result.error
    assert result.value == ["plain", ["from a coroutine", ["a", "b"]]]


async def test_2_skill_description_persists_after_reload(library: Path, make_executor: Any) -> None:
    code = """
    skills.create(
        name="forecast",
        code="def run(city: str):\\n    return city\\n",
        description="Fetches weather forecasts for a city",
    )
    """
    async with Session(storage=FileStorage(base_path=library), executor=make_executor()) as first:
        assert (await first.run(code)).is_ok

    async with Session(storage=FileStorage(base_path=library), executor=make_executor()) as second:
        listed = {s["name"]: s["description"] for s in await second.list_skills()}
        hits = await second.search_skills("weather forecast")
        in_code = await second.run('skills.get("forecast").description')

    assert listed["forecast"] == "Fetches weather forecasts for a city"
    assert hits[0]["name"] == "forecast"
    assert in_code.value == "Fetches weather forecasts for a city"


async def test_3_timeout_stops_the_code_and_the_next_run_works(
    session: Session, executor_kind: str
) -> None:
    await session.run("counter = 0")
    started = time.monotonic()
    result = await session.run("while True:\n    counter += 1", timeout=0.5)
    elapsed = time.monotonic() - started

    assert result.error is not None and result.error.type == "TimeoutError"
    assert "0.5s timeout" in result.error.message
    assert elapsed < 5
    after = await session.run("1 + 1", timeout=5)
    assert (after.value, after.error) == (2, None)
    if executor_kind == "inprocess":
        # Variables survive, and the loop really stopped: the counter is still.
        assert not result.state_reset
        first = (await session.run("counter")).value
        await asyncio.sleep(0.2)
        second = (await session.run("counter")).value
        assert isinstance(first, int) and first > 0
        assert first == second
    else:
        assert result.state_reset
        assert (await session.run("counter")).error.type == "NameError"  # type: ignore[union-attr]


async def test_3_timeout_does_not_swallow_the_hosts_prints(library: Path) -> None:
    printed = threading.Event()
    stop = threading.Event()

    def host_thread() -> None:
        while not stop.is_set():
            print("host line", file=sys.stdout)
            printed.set()
            time.sleep(0.01)

    async with Session(storage=FileStorage(base_path=library), executor=InProcessExecutor()) as s:
        thread = threading.Thread(target=host_thread)
        thread.start()
        try:
            during = await s.run(
                "import time\nprint('agent line')\ntime.sleep(0.3)\nprint('agent again')"
            )
            timed_out = await s.run("while True:\n    pass", timeout=0.3)
        finally:
            stop.set()
            thread.join()

    assert printed.is_set()
    assert during.stdout == "agent line\nagent again\n"
    assert "host line" not in timed_out.stdout
    # The host's prints still work after the timeout: the router is intact.
    print("host after", file=sys.stdout)


async def test_4_values_have_identical_shapes_across_executors(tmp_path: Path, library: Path) -> None:
    codes = [
        "tools.list()",
        'tools.search("count words")',
        "skills.list()",
        'skills.get("greet")',
        'skills.search("greeting")',
        'artifacts.save("blob", b"\\x00\\xffdata", description="raw bytes")',
        'artifacts.load("blob")',
        'artifacts.save("doc", {"a": [1, 2.5, None, True]})',
        'artifacts.load("doc")',
        "artifacts.list()",
        "print('out'); import sys; print('err', file=sys.stderr)",
        "{1, 2}",
        "1 / 0",
        "skills.nope()",
    ]

    async def outcomes(executor: Any) -> tuple[list[Any], Any]:
        import shutil

        base = tmp_path / type(executor).__name__
        shutil.copytree(library, base)
        async with Session(storage=FileStorage(base_path=base), executor=executor) as s:
            results = [await s.run(code) for code in codes]
            loaded = await s.load_artifact("blob")
        return [
            (
                _without_times(r.value),
                r.repr if "_at" not in (r.repr or "") else None,
                r.stdout,
                r.stderr,
                r.error and (r.error.type, r.error.message, r.error.traceback),
                r.state_reset,
            )
            for r in results
        ], loaded

    in_process, loaded_in = await outcomes(InProcessExecutor())
    subprocess, loaded_sub = await outcomes(SubprocessExecutor())

    for code, a, b in zip(codes, in_process, subprocess, strict=True):
        assert a == b, code
    assert loaded_in == loaded_sub == b"\x00\xffdata"
    blob = in_process[codes.index('artifacts.load("blob")')]
    assert blob[:2] == (None, "b'\\x00\\xffdata'")


def _without_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("<time>" if k.endswith("_at") else _without_times(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


async def test_6_creating_a_skill_never_executes_it_on_the_host(
    session: Session, tmp_path: Path, executor_kind: str
) -> None:
    if executor_kind == "sandbox":
        # The marker would be written to the host's `tmp_path`, outside the
        # sandbox's view: the sandbox cannot take part in this check.
        pytest.skip("agent code cannot write the host's tmp_path from the sandbox")
    marker = tmp_path / "executed"
    source = f'''
"""Writes a marker when its module runs."""
import os, pathlib
pathlib.Path({str(marker)!r}).parent.mkdir(parents=True, exist_ok=True)
pathlib.Path({str(marker)!r}).write_text(str(os.getpid()))


def run() -> str:
    return "ran"
'''
    await session.add_skill("side_effect", source, "from the host API")
    created = await session.run(f"skills.create(name='side_effect_2', code={source!r})")
    await session.list_skills()
    await session.search_skills("marker")
    await session.get_skill("side_effect")

    assert created.is_ok, created.error
    assert not marker.exists()

    invoked = await session.run("skills.side_effect()")
    assert invoked.value == "ran"
    if executor_kind == "container":
        # It ran in the container, whose files the host does not see.
        assert not marker.exists()
        seen = await session.run(f"import pathlib; pathlib.Path({str(marker)!r}).exists()")
        assert seen.value is True
    if executor_kind == "subprocess":
        assert marker.read_text() != str(os.getpid())
