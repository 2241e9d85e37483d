"""Type-checked with `mypy --strict` by test_install.py: the stubs must describe
the seed's usage precisely enough for strict code to pass without casts."""

from __future__ import annotations

import asyncio
from typing import Any
from pathlib import Path

from py_code_mode import ExecutionResult, FileStorage, Session, SkillNotFoundError
from py_code_mode.backends.in_process import InProcessExecutor
from py_code_mode.backends.subprocess import SubprocessExecutor
from py_code_mode.types import ArtifactInfo, ScoredSkillInfo, ScoredToolInfo, SearchMode, Skill, ToolInfo


async def main(base: Path) -> None:
    storage = FileStorage(base_path=base)
    async with Session(storage=storage, executor=InProcessExecutor()) as session:
        result: ExecutionResult = await session.run("tools.list()", timeout=5.0)
        if result.error is not None:
            print(result.error.type, result.error.message, result.error.traceback)
        print(result.value, result.stdout, result.is_ok, result.duration_ms, result.state_reset)
        tools: list[ToolInfo] = await session.list_tools()
        names: list[str] = [tool["name"] for tool in tools]
        try:
            skill: Skill = await session.get_skill("greet")
            print(skill["source"], names)
        except SkillNotFoundError:
            pass
        info: ArtifactInfo = await session.save_artifact("x", b"data", "bytes")
        print(info["size"], await session.load_artifact("x"))
    async with Session.subprocess(base, embedding_model=base / "model") as other:
        await other.reset()
        hits: list[ScoredToolInfo] = await other.search_tools("count words", limit=3)
        modes: list[SearchMode] = [hit["mode"] for hit in hits]
        print(other.embedding_model, modes, [hit["score"] for hit in hits])
    lexical = Session(storage, InProcessExecutor(), timeout=5.0, embedding_model="bge-small", semantic=False)

    # Python functions as tools (docs/tools.md).
    def add(a: int, b: int = 1) -> int:
        return a + b

    async def fetch(url: str) -> str:
        return url

    with_tools = Session(storage, tools=[add, fetch])
    same: int = with_tools.tool(add)(1, 2)

    @with_tools.tool
    def double(x: float) -> float:
        return 2 * x

    @with_tools.tool(name="triple", description="Three times x", timeout=2.0)
    async def times_three(x: float) -> float:
        return 3 * x

    doubled: float = double(2.0)
    print(same, doubled, times_three)
    found: list[ScoredSkillInfo] = await lexical.search_skills("greet")
    model: str | None = lexical.embedding_model
    print(found[0]["mode"] == "lexical", model)
    await lexical.close()
    Session.from_base(base, semantic=True)
    Session.inprocess(base, embedding_model=None)
    executor = SubprocessExecutor(python=None, timeout=10.0)
    print(executor.timeout, storage.base_path / "tools")
    # 0.10's forms (docs/migrating.md).
    from py_code_mode.execution import Capability, SubprocessConfig

    compat = Session(storage, SubprocessExecutor(config=SubprocessConfig(default_timeout=5.0)), sync_deps_on_start=True)
    supported: bool = compat.supports(Capability.TIMEOUT)
    caps: set[str] = compat.supported_capabilities()
    packages: list[str] = await compat.list_deps()
    report: dict[str, Any] = await compat.add_dep("six")
    failed = await compat.run("1/0")
    if failed.error is not None:
        text: str = failed.error.lower()
        print(text, failed.error == "x", len(failed.error))
    print(supported, caps, packages, report)
    await compat.close()


if __name__ == "__main__":
    asyncio.run(main(Path(".")))
