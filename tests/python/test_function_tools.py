"""Python functions as tools: registered on the session, called from agent code
on every executor, run on the host in this interpreter."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from py_code_mode import FileStorage, Session

# What the functions saw, per test: the process, and the loop of async calls.
SEEN: dict[str, Any] = {}


def add(a: int, b: int = 1) -> int:
    """Add two integers: the sum of a and b.

    Args:
        a: the first addend
        b: the second addend
    """
    return a + b


async def shout(text: str, times: int = 1) -> str:
    """Upper-case text, awaited on the application's loop."""
    SEEN["loop"] = asyncio.get_running_loop()
    await asyncio.sleep(0)
    return " ".join([text.upper()] * times)


def fail(reason: str) -> None:
    """Always raises."""
    raise ValueError(f"cannot do it: {reason}")


async def afail() -> None:
    """Always raises, asynchronously."""
    await asyncio.sleep(0)
    raise PermissionError("not allowed")


def whereami() -> dict[str, int]:
    """The process and thread the function runs in."""
    SEEN["pid"] = os.getpid()
    return {"pid": os.getpid(), "thread": threading.get_ident()}


def tagged(**options: Any) -> dict[str, Any]:
    """Takes any keyword."""
    return options


FUNCTIONS = [add, shout, fail, afail, whereami, tagged]


async def test_functions_are_tools_on_every_executor(library: Path, make_executor: Callable[[], Any]) -> None:
    SEEN.clear()
    session = Session(storage=FileStorage(base_path=library), executor=make_executor(), tools=FUNCTIONS)
    async with session:
        # Keyword arguments and defaults, sync and async.
        result = await session.run("tools.add(a=2), tools.add(a=2, b=40), tools.shout(text='hi', times=2)")
        assert result.error is None, result.error
        assert result.value == [3, 42, "HI HI"]
        # The async function ran on this test's event loop.
        assert SEEN["loop"] is asyncio.get_running_loop()
        # The awaitable form, several calls in flight at once.
        result = await session.run(
            "import asyncio\nawait asyncio.gather(tools.add.acall(a=1), tools.shout.acall(text='x'), tools.add.acall(a=5, b=5))"
        )
        assert result.error is None, result.error
        assert result.value == [2, "X", 10]

        # An exception reaches agent code as ToolError with its message.
        result = await session.run(
            "out = []\n"
            "for call in (lambda: tools.fail(reason='disk full'), tools.afail):\n"
            "    try:\n"
            "        call()\n"
            "    except ToolError as e:\n"
            "        out.append((type(e).__name__, str(e)))\n"
            "out"
        )
        assert result.value == [
            ["ToolError", "tools.call: tool `fail` failed: ValueError: cannot do it: disk full"],
            ["ToolError", "tools.call: tool `afail` failed: PermissionError: not allowed"],
        ]

        # Arguments are checked before the function runs; **kwargs takes any.
        result = await session.run(
            "out = []\n"
            "for kw in ({'a': 1, 'c': 2}, {'b': 2}):\n"
            "    try:\n"
            "        tools.add(**kw)\n"
            "    except TypeError as e:\n"
            "        out.append(str(e))\n"
            "out, tools.tagged(x=1, y=[2])"
        )
        assert result.error is None, result.error
        (unknown, missing), options = result.value
        assert "unexpected keyword argument `c`" in unknown
        assert "missing required argument `a`" in missing
        assert options == {"x": 1, "y": [2]}

        # It runs here, in the application's process, whatever the executor.
        result = await session.run("import os\ntools.whereami()['pid'], os.getpid()")
        host_pid, worker_pid = result.value
        assert host_pid == os.getpid() == SEEN["pid"]
        if make_executor.__name__ != "InProcessExecutor":
            assert worker_pid != os.getpid()

        # Listed and searched like any tool, from agent code and from the API.
        result = await session.run(
            "[t for t in tools.list() if t.name == 'add'][0], [t.name for t in tools.search('sum of two integers', limit=1)]"
        )
        listing, found = result.value
        assert listing == {
            "name": "add",
            "type": "function",
            "description": "Add two integers: the sum of a and b.",
            "tags": [],
            "callables": [
                {
                    "name": "add",
                    "description": "Add two integers: the sum of a and b.",
                    "parameters": [
                        {"name": "a", "type": "int", "required": True, "description": "the first addend"},
                        {"name": "b", "type": "int", "required": False, "default": 1, "description": "the second addend"},
                    ],
                }
            ],
        }
        assert found == ["add"]
        assert listing in await session.list_tools()
        # The library's YAML tools are still there beside the functions.
        names = {t["name"] for t in await session.list_tools()}
        assert {"echo", "add", "shout", "fail", "whereami"} <= names


async def test_the_decorator_and_the_call_register_and_return_the_function(tmp_path: Path) -> None:
    session = Session(storage=FileStorage(base_path=tmp_path))

    @session.tool
    def double(x: float) -> float:
        """Twice x."""
        return 2 * x

    @session.tool(name="triple", description="Three times x")
    async def times_three(x: float) -> float:
        return 3 * x

    assert session.tool(add) is add
    assert double(2) == 4  # still the plain function
    async with session:
        result = await session.run("tools.double(x=1.5), tools.triple(x=2), tools.add(a=1)")
        assert result.value == [3.0, 6, 2]
        listed = {t["name"]: t["description"] for t in await session.list_tools()}
        assert listed["double"] == "Twice x."
        assert listed["triple"] == "Three times x"
        # Once started, the tool set is fixed: saying so beats a tool that
        # silently never appears.
        with pytest.raises(RuntimeError, match="has started"):
            session.tool(fail)


async def test_functions_agent_code_could_not_call_are_refused(tmp_path: Path) -> None:
    session = Session(storage=FileStorage(base_path=tmp_path))

    def positional_only(a: int, /) -> int:
        return a

    def list() -> None:  # noqa: A001 - the point of the test
        """Would hide `tools.list()`."""

    with pytest.raises(TypeError, match="positional-only"):
        session.tool(positional_only)
    with pytest.raises(TypeError, match="name"):
        session.tool(lambda: 1)
    with pytest.raises(ValueError, match="method of the `tools` namespace"):
        session.tool(list)
    with pytest.raises(ValueError, match="Python identifier"):
        session.tool(add, name="not valid")
    with pytest.raises(TypeError, match="must be a function"):
        Session(storage=FileStorage(base_path=tmp_path), tools=[42])


async def test_a_result_json_cannot_hold_is_a_tool_error(tmp_path: Path) -> None:
    def opaque() -> object:
        return object()

    async with Session(storage=FileStorage(base_path=tmp_path), tools=[opaque]) as session:
        result = await session.run(
            "try:\n    tools.opaque()\nexcept ToolError as e:\n    r = str(e)\nr"
        )
        assert "returned a value JSON cannot hold" in result.value
        assert "hint:" in result.value


async def test_results_and_artifacts_keep_every_integer_exact(tmp_path: Path) -> None:
    # The host reads integers within 64 bits exactly; past them, a value
    # would arrive rounded (2**64 as 1.8446744073709552e+19): refused instead.
    def widest() -> list:
        return [2**64 - 1, -(2**63), {7: True, 1.5: None}]

    def too_wide() -> int:
        return 2**64

    async with Session(storage=FileStorage(base_path=tmp_path), tools=[widest, too_wide]) as session:
        result = await session.run("tools.widest()")
        assert result.value == [2**64 - 1, -(2**63), {"7": True, "1.5": None}], result
        result = await session.run("try:\n    tools.too_wide()\nexcept ToolError as e:\n    r = str(e)\nr")
        assert "beyond 64 bits" in result.value, result
        await session.save_artifact("exact", {"n": 2**64 - 1})
        assert await session.load_artifact("exact") == {"n": 2**64 - 1}
        with pytest.raises(TypeError, match="beyond 64 bits"):
            await session.save_artifact("wide", {"n": 2**64})


async def test_a_slow_sync_function_leaves_the_event_loop_free(tmp_path: Path) -> None:
    import time

    def slow() -> str:
        time.sleep(0.5)
        return "done"

    async with Session(storage=FileStorage(base_path=tmp_path), tools=[slow]) as session:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        result = await session.run("tools.slow()")
        ticker.cancel()
        assert result.value == "done"
        # The loop kept running while the function slept on another thread.
        assert ticks >= 10


async def test_an_async_call_is_cancelled_when_its_run_times_out(tmp_path: Path) -> None:
    from py_code_mode import SubprocessExecutor

    import sys

    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def wait_forever() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    session = Session(
        storage=FileStorage(base_path=tmp_path),
        executor=SubprocessExecutor(python=sys.executable),
        tools=[wait_forever],
    )
    async with session:
        result = await session.run("tools.wait_forever()", timeout=1)
        assert result.error is not None and result.error.type == "TimeoutError"
        assert started.is_set()
        await asyncio.wait_for(cancelled.wait(), timeout=10)
        # The session goes on.
        assert (await session.run("1 + 1")).value == 2


async def test_a_call_past_the_tool_timeout_is_a_tool_error_and_the_session_goes_on(
    tmp_path: Path, make_executor: Callable[[], Any]
) -> None:
    """An async function that never returns cannot wedge a session: an
    in-process run waiting on it waits outside Python, where no interrupt
    reaches it. A sync one that overruns is answered with the same error (in
    process, once it returns: it runs on the run's own thread)."""
    import time

    cancelled = asyncio.Event()

    async def hang() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def block() -> str:
        time.sleep(1.5)
        return "late"

    session = Session(storage=FileStorage(base_path=tmp_path), executor=make_executor())
    session.tool(hang, timeout=0.3)
    session.tool(block, timeout=0.3)
    async with session:
        started = time.monotonic()
        result = await session.run(
            "out = []\n"
            "for call in (tools.hang, tools.block):\n"
            "    try:\n"
            "        call()\n"
            "    except ToolError as e:\n"
            "        out.append(str(e))\n"
            "out",
            timeout=20,
        )
        assert result.value == [
            "tools.call: tool `hang` timed out after 0.3s and was stopped",
            "tools.call: tool `block` timed out after 0.3s and was stopped",
        ]
        assert time.monotonic() - started < 5
        await asyncio.wait_for(cancelled.wait(), timeout=5)
        assert (await session.run("1 + 1")).value == 2


async def test_a_sync_function_keeps_its_thread_local_state_between_calls(tmp_path: Path) -> None:
    # A sync function called from a worker runs on a thread of the host's pool;
    # what it keeps per thread (`threading.local`: a database connection bound
    # to its thread) is still there at its next call on that thread.
    from py_code_mode import SubprocessExecutor

    local = threading.local()
    made: list[int] = []

    def connection() -> list[int]:
        """The calling thread's connection: made once per thread."""
        if not hasattr(local, "number"):
            made.append(len(made))
            local.number = made[-1]
        return [threading.get_ident(), local.number]

    executor = SubprocessExecutor(python=sys.executable)
    async with Session(storage=FileStorage(base_path=tmp_path), executor=executor, tools=[connection]) as session:
        result = await session.run("[tools.connection() for _ in range(30)]")
    assert result.error is None, result.error
    numbers: dict[int, set[int]] = {}
    for ident, number in result.value:
        numbers.setdefault(ident, set()).add(number)
    # One connection per thread that served a call, however many calls it served.
    assert all(len(seen) == 1 for seen in numbers.values()), numbers
    assert len(made) == len(numbers)
