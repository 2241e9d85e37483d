"""The Session API beyond the seed: facade methods, errors, concurrency, lifecycle."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import py_code_mode
from py_code_mode import (
    ArtifactNotFoundError,
    CodeExecutionError,
    CodeModeError,
    ExecutionTimeoutError,
    ExecutorError,
    FileStorage,
    InProcessExecutor,
    InvalidNameError,
    Session,
    SkillError,
    SkillNotFoundError,
    SubprocessExecutor,
)
from py_code_mode.backends.in_process import InProcessExecutor as SeedInProcess
from py_code_mode.backends.subprocess import SubprocessExecutor as SeedSubprocess


def test_executors_are_importable_from_the_seed_paths() -> None:
    assert SeedInProcess is InProcessExecutor
    assert SeedSubprocess is SubprocessExecutor


async def test_artifacts_round_trip_with_their_type(session: Session) -> None:
    saved = await session.save_artifact("b", b"\x00\x01", description="bytes", metadata={"k": 1})
    await session.save_artifact("t", "text")
    await session.save_artifact("j", {"a": [1, None]})

    assert (saved["name"], saved["type"], saved["size"], saved["metadata"]) == ("b", "bytes", 2, {"k": 1})
    assert await session.load_artifact("b") == b"\x00\x01"
    assert await session.load_artifact("t") == "text"
    assert await session.load_artifact("j") == {"a": [1, None]}
    assert sorted(a["name"] for a in await session.list_artifacts()) == ["b", "j", "t"]
    in_code = await session.run('(artifacts.load("t"), artifacts.load("j"))')
    assert in_code.value == ["text", {"a": [1, None]}]
    assert await session.delete_artifact("b") is True
    assert await session.delete_artifact("b") is False


async def test_skills_through_the_facade(session: Session) -> None:
    added = await session.add_skill("double", "def run(x: int) -> int:\n    return 2 * x\n", "Doubles")

    assert (added["name"], added["description"], added["parameters"][0]["name"]) == ("double", "Doubles", "x")
    assert (await session.run("skills.double(x=21)")).value == 42
    assert (await session.search_skills("doubles a number"))[0]["name"] == "double"
    assert (await session.get_skill("double"))["source"].startswith("def run")
    assert await session.remove_skill("double") is True
    assert "double" not in [s["name"] for s in await session.list_skills()]


async def test_tools_through_the_facade(session: Session) -> None:
    tools = await session.list_tools()
    hits = await session.search_tools("count lines words bytes", limit=1)

    assert [t["name"] for t in tools] == ["echo", "list_files", "word_count"]
    assert tools[0]["callables"][0]["parameters"][0]["name"] == "text"
    assert [(h["name"], h["score"] > 0) for h in hits] == [("word_count", True)]


async def test_errors_map_to_the_exception_hierarchy(session: Session) -> None:
    with pytest.raises(SkillNotFoundError, match="no skill named `nope`"):
        await session.get_skill("nope")
    with pytest.raises(ArtifactNotFoundError) as missing:
        await session.load_artifact("nope")
    with pytest.raises(InvalidNameError):
        await session.add_skill("../escape", "def run(): pass")
    with pytest.raises(SkillError, match="run"):
        await session.add_skill("no_run", "def other(): pass")

    assert isinstance(missing.value, KeyError) and isinstance(missing.value, CodeModeError)
    assert str(missing.value).startswith("no artifact named `nope`")


async def test_raise_for_error(session: Session) -> None:
    failed = await session.run("1 / 0")
    timed_out = await session.run("while True:\n    pass", timeout=0.3)
    ok = await session.run("1")

    ok.raise_for_error()
    with pytest.raises(CodeExecutionError) as error:
        failed.raise_for_error()
    assert error.value.error_type == "ZeroDivisionError"
    assert "1 / 0" in error.value.traceback
    with pytest.raises(ExecutionTimeoutError):
        timed_out.raise_for_error()
    with pytest.raises(TimeoutError):
        timed_out.raise_for_error()


async def test_integers_past_64_bits_keep_their_repr_on_every_executor(session: Session) -> None:
    # Never a rounded float (2**64 as 1.8446744073709552e+19), never a run
    # the host cannot read (10**400): the value is left out, the repr exact.
    assert (await session.run("2**64 - 1")).value == 2**64 - 1
    for code, value in (("2**64", 2**64), ("[1, -2**63 - 1]", [1, -(2**63) - 1]), ("10**400", 10**400)):
        result = await session.run(code)
        assert (result.error, result.value, result.repr) == (None, None, repr(value)), code
    refused = await session.run("artifacts.save('n', {'n': 2**64})")
    assert refused.error is not None and refused.error.type == "ValueError", refused
    assert "beyond 64 bits" in refused.error.message


async def test_a_lone_surrogate_reads_the_same_from_every_executor(session: Session) -> None:
    # UTF-8 cannot hold '\ud800': the value and the message get `?` (the
    # protocol's replacement), the output its escape (the streams' own).
    value = await session.run("'a\\ud800b'")
    assert (value.error, value.value, value.repr) == (None, "a?b", "'a\\ud800b'")
    printed = await session.run("import sys; print('a\\ud800b'); print('c\\udfffd', file=sys.stderr)")
    assert (printed.error, printed.stdout, printed.stderr) == (None, "a\\ud800b\n", "c\\udfffd\n")
    raised = await session.run("raise ValueError('x\\ud800')")
    assert raised.error is not None and raised.error.message == "x?"
    assert (await session.run("{'k\\ud800': 1}")).value == {"k?": 1}


async def test_output_is_captured_per_run(session: Session) -> None:
    first = await session.run("print('one')")
    second = await session.run("import sys; print('two'); print('warn', file=sys.stderr)")

    assert (first.stdout, second.stdout, second.stderr) == ("one\n", "two\n", "warn\n")


async def test_output_is_capped_with_a_visible_marker(library: Path, make_executor: object) -> None:
    executor = (
        InProcessExecutor(output_limit=100)
        if isinstance(make_executor(), InProcessExecutor)  # type: ignore[operator]
        else SubprocessExecutor(output_limit=100)
    )
    async with Session(storage=FileStorage(base_path=library), executor=executor) as s:
        result = await s.run("print('x' * 1000)")

    assert result.stdout.startswith("x" * 100)
    assert "[... output truncated: 901 more bytes]" in result.stdout


async def test_a_run_does_not_block_the_event_loop(session: Session) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    result = await session.run("import time; time.sleep(0.5)")
    task.cancel()

    assert result.is_ok, result.error
    assert ticks >= 10


async def test_a_cancelled_wait_lets_the_run_finish_and_the_session_go_on(session: Session) -> None:
    # The caller stops waiting (its task is cancelled); the cell still runs to
    # its end, and the next run sees what it did.
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(session.run("import time\ntime.sleep(0.3)\ny = 5"), 0.05)

    assert (await session.run("y")).value == 5
    assert (await session.run("y + 1")).value == 6


async def test_a_worker_that_died_is_replaced(session: Session, executor_kind: str) -> None:
    if executor_kind == "inprocess":
        pytest.skip("no worker process")
    crashed = await session.run("x = 1\nimport os\nos._exit(3)")
    # The crashed run moved onto the runtime to start the replacement.
    replaced = await session.run("'x' in globals()")
    again = await session.run("1 + 1")

    assert crashed.error is not None and crashed.error.type == "WorkerCrashed", crashed.error
    assert replaced.error is None, replaced.error
    assert (replaced.value, again.value) == (False, 2)


async def test_reset_forgets_variables_but_not_the_library(session: Session) -> None:
    await session.run("x = 1; artifacts.save('kept', 'yes')")
    await session.reset()

    assert (await session.run("x")).error.type == "NameError"  # type: ignore[union-attr]
    assert (await session.run("artifacts.load('kept')")).value == "yes"


async def test_a_closed_session_refuses_work(library: Path) -> None:
    session = Session(storage=FileStorage(base_path=library))
    assert (await session.run("1")).value == 1  # starts on first use, without `async with`
    await session.close()
    await session.close()

    with pytest.raises(ExecutorError, match="closed"):
        await session.run("1")


@pytest.mark.parametrize("constructor", ["from_base", "inprocess", "subprocess"])
async def test_constructors_from_a_base_folder(library: Path, constructor: str) -> None:
    make = getattr(Session, constructor)
    async with make(library, timeout=30) as session:
        result = await session.run("skills.greet(name='base')")

    assert result.value == "Hello, base!"
    assert session.timeout == 30
    assert session.storage.base_path == library


def test_bad_arguments_are_type_errors(library: Path) -> None:
    with pytest.raises(TypeError, match="FileStorage"):
        Session(storage=str(library))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="executor"):
        Session(storage=FileStorage(base_path=library), executor="subprocess")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        InProcessExecutor(timeout=-1)


def test_the_package_exports_what_it_documents() -> None:
    for name in py_code_mode.__all__:
        assert hasattr(py_code_mode, name), name


async def test_reset_undoes_patched_builtins_and_a_patched_runtime(session: Session) -> None:
    # In-process the attack patches this very interpreter, so it must be undone
    # for the rest of the suite too; the subprocess executor replaces its worker.
    patch = """
import builtins, sys
builtins.sorted = lambda *args, **kwargs: "hijacked"
_f = sys._getframe()
while not (isinstance(_f.f_locals.get("self"), object) and type(_f.f_locals.get("self")).__name__ == "Runtime"):
    _f = _f.f_back
type(_f.f_locals["self"]).execute = lambda self, code: {"value": "hijacked", "repr": "'hijacked'"}
"""
    try:
        assert (await session.run(patch)).is_ok
        assert (await session.run("1+1")).value == "hijacked"
    finally:
        await session.reset()

    assert (await session.run("sorted([2, 1])")).value == [1, 2]
    assert sorted([2, 1]) == [1, 2]
